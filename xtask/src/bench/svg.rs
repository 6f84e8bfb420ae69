//! Hand-written SVG line charts and the HTML page that shows them with the table.
//!
//! Four small charts need axes, ticks, polylines and a legend; that is less code than a
//! plotting crate's setup and adds no dependency (plotters would bring a font stack or a
//! bitmap backend we do not need).

use std::fmt::Write as _;

use super::render::Report;

/// How an axis maps values to positions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scale {
    Linear,
    /// log10: only positive values.
    Log,
    /// log10(1 + v): for counts that start at zero.
    SymLog,
}

impl Scale {
    fn map(self, v: f64) -> f64 {
        match self {
            Scale::Linear => v,
            Scale::Log => v.max(f64::MIN_POSITIVE).log10(),
            Scale::SymLog => (1.0 + v.max(0.0)).log10(),
        }
    }
}

pub(crate) struct Axis {
    pub(crate) label: String,
    pub(crate) scale: Scale,
    /// (value, label)
    pub(crate) ticks: Vec<(f64, String)>,
}

pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) color: &'static str,
    pub(crate) dash: Dash,
    pub(crate) points: Vec<(f64, f64)>,
}

/// How a line is drawn, to tell apart the sides that share a colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dash {
    Solid,
    Dashed,
    Dotted,
}

impl Dash {
    fn attribute(self) -> &'static str {
        match self {
            Dash::Solid => "",
            Dash::Dashed => r#" stroke-dasharray="6 4""#,
            Dash::Dotted => r#" stroke-dasharray="2 3""#,
        }
    }
}

const OURS: &str = "#1f77b4";
const FLOOR: &str = "#2ca02c";
const PRE_FIX: &str = "#d62728";
const PALETTE: [&str; 3] = ["#1f77b4", "#ff7f0e", "#9467bd"];

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 55.0;

/// One chart as a standalone SVG document.
pub(crate) fn chart(title: &str, x: &Axis, y: &Axis, series: &[Series]) -> String {
    let values = |pick: fn(&(f64, f64)) -> f64, axis: &Axis| {
        series
            .iter()
            .flat_map(|s| s.points.iter().map(pick))
            .chain(axis.ticks.iter().map(|(v, _)| *v))
            .filter(|v| v.is_finite())
            .map(|v| axis.scale.map(v))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            })
    };
    let (x_lo, x_hi) = widen(values(|p| p.0, x));
    let (y_lo, y_hi) = widen(values(|p| p.1, y));
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let px = |v: f64| LEFT + (x.scale.map(v) - x_lo) / (x_hi - x_lo) * plot_w;
    let py = |v: f64| TOP + plot_h - (y.scale.map(v) - y_lo) / (y_hi - y_lo) * plot_h;

    let mut svg = String::new();
    let s = &mut svg;
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/><text x="{}" y="22" font-size="15" font-weight="bold">{}</text>"#,
        LEFT,
        escape(title)
    );
    for (v, label) in &y.ticks {
        let y = py(*v);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            escape(label)
        );
    }
    for (v, label) in &x.ticks {
        let x = px(*v);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 16.0,
            escape(label)
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 12.0,
        escape(&x.label)
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + plot_h / 2.0,
        escape(&y.label)
    );
    for (i, series) in series.iter().enumerate() {
        let dash = series.dash.attribute();
        let points: Vec<String> = series
            .points
            .iter()
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .map(|&(a, b)| format!("{:.1},{:.1}", px(a), py(b)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
            points.join(" "),
            series.color
        );
        // Markers only where there are few points (a CDF has a hundred).
        for point in points.iter().filter(|_| series.points.len() <= 20) {
            let (cx, cy) = point.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(
                s,
                r#"<circle cx="{cx}" cy="{cy}" r="3" fill="{}"/>"#,
                series.color
            );
        }
        let ly = TOP + 10.0 + i as f64 * 20.0;
        let lx = LEFT + plot_w + 12.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" x2="{:.1}" y1="{ly}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 24.0,
            series.color,
            lx + 30.0,
            ly + 4.0,
            escape(&series.name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Pads a range a little (and makes an empty one usable).
fn widen((lo, hi): (f64, f64)) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    (lo - pad, hi + pad)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Decade ticks covering `values` (µs), labelled in the unit that reads best.
fn time_ticks(values: impl Iterator<Item = f64>) -> Vec<(f64, String)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return Vec::new();
    }
    let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    (first..=last)
        .map(|e| {
            let v = 10f64.powi(e);
            let label = match e {
                ..=2 => format!("{v} µs"),
                3..=5 => format!("{} ms", v / 1e3),
                _ => format!("{} s", v / 1e6),
            };
            (v, label)
        })
        .collect()
}

fn count_ticks(values: &[u64]) -> Vec<(f64, String)> {
    values.iter().map(|&v| (v as f64, v.to_string())).collect()
}

/// Every plot of the report: (file name, SVG).
pub(crate) fn plots(report: &Report) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let held: Vec<u64> = report.held.iter().map(|row| row.held).collect();
    if !held.is_empty() {
        let line =
            |name: &str, color, dashed: bool, pick: fn(&super::render::HeldRow) -> f64| Series {
                name: name.to_owned(),
                color,
                dash: if dashed { Dash::Dashed } else { Dash::Solid },
                points: report
                    .held
                    .iter()
                    .map(|row| (row.held as f64, pick(row)))
                    .collect(),
            };
        let series = [
            line("acquire+release: ours", OURS, false, |r| r.ours.best),
            line("… the floor", FLOOR, false, |r| r.floor.best),
            line("… the pre-fix port", PRE_FIX, false, |r| r.pre_fix.best),
            line("list_locks: ours", OURS, true, |r| r.list_ours.best),
            line("… the floor", FLOOR, true, |r| r.list_floor.best),
        ];
        let y_ticks = time_ticks(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
        out.push((
            "latency.svg".to_owned(),
            chart(
                "Latency against live locks held by another process (best of rounds)",
                &Axis {
                    label: "live locks held".into(),
                    scale: Scale::SymLog,
                    ticks: count_ticks(&held),
                },
                &Axis {
                    label: "time per operation".into(),
                    scale: Scale::Log,
                    ticks: y_ticks,
                },
                &series,
            ),
        ));
    }
    if !report.contended.is_empty() {
        let processes: Vec<u64> = report.contended.iter().map(|row| row.processes).collect();
        let line =
            |name: &str, color, dash, pick: fn(&super::render::ContendedRow) -> f64| Series {
                name: name.to_owned(),
                color,
                dash,
                points: report
                    .contended
                    .iter()
                    .map(|row| (row.processes as f64, pick(row)))
                    .collect(),
            };
        let mut series = vec![
            line("ours (waiting acquire)", OURS, Dash::Solid, |r| r.ours.0),
            line("fair floor (FIFO ring)", FLOOR, Dash::Solid, |r| r.ring.0),
            line("flock mutex, one file", PRE_FIX, Dash::Dashed, |r| {
                r.mutex.0
            }),
        ];
        // Reports from before the protocol floor have none to draw.
        if report.contended.iter().all(|row| row.protocol.is_some()) {
            series.push(line("protocol floor", FLOOR, Dash::Dotted, |r| {
                r.protocol.map_or(0.0, |rate| rate.0)
            }));
        }
        let top = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max);
        let step = nice_step(top / 5.0);
        let y_ticks = (0..=((top / step).ceil() as u64))
            .map(|k| (k as f64 * step, format!("{}", k as f64 * step)))
            .collect();
        out.push((
            "throughput.svg".to_owned(),
            chart(
                "Contended throughput: 1 ms of work per hold (best of rounds)",
                &Axis {
                    label: "processes hammering one scope".into(),
                    scale: Scale::Log,
                    ticks: count_ticks(&processes),
                },
                &Axis {
                    label: "holds per second".into(),
                    scale: Scale::Linear,
                    ticks: y_ticks,
                },
                &series,
            ),
        ));
    }
    if !report.scope_size.is_empty() {
        let mut ours_sizes: Vec<u64> = report.scope_size.iter().map(|r| r.ours_paths).collect();
        ours_sizes.dedup();
        ours_sizes.sort_unstable();
        ours_sizes.dedup();
        let mut holder_sizes: Vec<u64> = report.scope_size.iter().map(|r| r.holder_paths).collect();
        holder_sizes.sort_unstable();
        holder_sizes.dedup();
        let mut series = Vec::new();
        for (k, &ours_paths) in ours_sizes.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            for (floor, suffix) in [(false, "ours"), (true, "floor")] {
                series.push(Series {
                    name: format!("our {ours_paths} paths: {suffix}"),
                    color,
                    dash: if floor { Dash::Dashed } else { Dash::Solid },
                    points: report
                        .scope_size
                        .iter()
                        .filter(|r| r.ours_paths == ours_paths)
                        .map(|r| {
                            let t = if floor { r.floor.best } else { r.ours.best };
                            (r.holder_paths as f64, t)
                        })
                        .collect(),
                });
            }
        }
        let holders = report.scope_size[0].holders;
        let y_ticks = time_ticks(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
        out.push((
            "scope-size.svg".to_owned(),
            chart(
                &format!("Acquire+release by scope size, {holders} holders (best of rounds)"),
                &Axis {
                    label: "paths in each holder's scope".into(),
                    scale: Scale::Log,
                    ticks: count_ticks(&holder_sizes),
                },
                &Axis {
                    label: "time per acquire+release".into(),
                    scale: Scale::Log,
                    ticks: y_ticks,
                },
                &series,
            ),
        ));
    }
    if !report.handoff.is_empty() {
        let mut series = Vec::new();
        for (k, row) in report.handoff.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            for (side, dash, name) in [
                (&row.ours, Dash::Solid, "ours"),
                (&row.ring, Dash::Dotted, "fair floor"),
                (&row.mutex, Dash::Dashed, "mutex"),
            ] {
                series.push(Series {
                    name: format!("{} waiters: {name}", row.waiters),
                    color,
                    dash,
                    points: side
                        .cdf
                        .iter()
                        .enumerate()
                        .map(|(p, &us)| (us, p as f64 / 100.0))
                        .collect(),
                });
            }
        }
        let x_ticks = time_ticks(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
        out.push((
            "handoff.svg".to_owned(),
            chart(
                "Handoff: release to the next process holding the lock (CDF)",
                &Axis {
                    label: "handoff time".into(),
                    scale: Scale::Log,
                    ticks: x_ticks,
                },
                &Axis {
                    label: "fraction of handoffs".into(),
                    scale: Scale::Linear,
                    ticks: (0..=4)
                        .map(|k| (f64::from(k) / 4.0, format!("{}", f64::from(k) / 4.0)))
                        .collect(),
                },
                &series,
            ),
        ));
    }
    out
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * power)
}

/// The HTML page: the table and every plot, self-contained.
pub(crate) fn html(report: &Report, plots: &[(String, String)]) -> String {
    let mut page = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>scope-lock bench</title></head>\n<body style=\"font-family: sans-serif; max-width: 60em; margin: 2em auto\">\n<h1>scope-lock bench</h1>\n",
    );
    let _ = writeln!(page, "<pre>{}</pre>", escape(&report.table()));
    for (_, svg) in plots {
        let _ = writeln!(page, "<p>{svg}</p>");
    }
    page.push_str("</body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::super::render::tests::report;
    use super::*;

    #[test]
    fn every_plot_is_drawn_with_every_series() {
        let plots = plots(&report());
        let names: Vec<&str> = plots.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "latency.svg",
                "throughput.svg",
                "scope-size.svg",
                "handoff.svg"
            ]
        );
        let (_, latency) = &plots[0];
        assert!(latency.starts_with("<svg"));
        assert!(latency.trim_end().ends_with("</svg>"));
        assert_eq!(latency.matches("<polyline").count(), 5);
        // Three counts of held locks, so three points on each line.
        assert_eq!(latency.matches("<circle").count(), 15);
        for label in [
            "the pre-fix port",
            "list_locks: ours",
            ">10 µs<",
            ">10 ms<",
            ">1000<",
        ] {
            assert!(latency.contains(label), "latency.svg lacks {label}");
        }
        assert_eq!(plots[2].1.matches("<polyline").count(), 4);
        // Ours, the fair floor and the mutex at two counts of waiters, 101 points each.
        assert_eq!(plots[3].1.matches("<polyline").count(), 6);
        assert!(plots[3].1.contains("8 waiters: fair floor"));
        assert!(plots[1].1.contains("fair floor (FIFO ring)"));
        assert!(plots[1].1.contains("protocol floor"));
        assert_eq!(plots[1].1.matches("<polyline").count(), 4);
        assert_eq!(plots[3].1.matches("<circle").count(), 0);
    }

    #[test]
    fn points_land_inside_the_plot_area() {
        let svg = chart(
            "t",
            &Axis {
                label: "x".into(),
                scale: Scale::SymLog,
                ticks: vec![(0.0, "0".into()), (100.0, "100".into())],
            },
            &Axis {
                label: "y".into(),
                scale: Scale::Log,
                ticks: vec![(1.0, "1".into()), (1000.0, "1000".into())],
            },
            &[Series {
                name: "s".into(),
                color: OURS,
                dash: Dash::Solid,
                points: vec![(0.0, 1.0), (100.0, 1000.0)],
            }],
        );
        for circle in svg.lines().filter(|l| l.starts_with("<circle")) {
            let number = |key: &str| -> f64 {
                let at = circle.find(key).map_or(0, |i| i + key.len());
                circle[at..]
                    .split('"')
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(-1.0)
            };
            let (cx, cy) = (number("cx=\""), number("cy=\""));
            assert!((LEFT..=WIDTH - RIGHT).contains(&cx), "{circle}");
            assert!((TOP..=HEIGHT - BOTTOM).contains(&cy), "{circle}");
        }
    }

    #[test]
    fn steps_are_round_numbers() {
        assert_eq!(nice_step(180.0), 200.0);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(1000.0), 1000.0);
    }
}
