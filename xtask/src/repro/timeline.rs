//! BUG-423 drawn: the workers' holds on a time line, the pre-fix port above the fix, with
//! every moment of two holders at once marked.
//!
//! The input is the witness log each `repro` run keeps (`enter|exit <worker> <cycle> <ns>`,
//! one line per event, `CLOCK_MONOTONIC` nanoseconds; see `tests/src/witness.rs`). A whole run
//! has some 20,000 holds, far too many to draw, so each panel shows two milliseconds of it:
//! where moments of two holders are densest, or where there are none (the fix), where holds
//! are densest.

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::{Context, bail};

/// How much of each run one panel shows, in nanoseconds.
const WINDOW_NS: u64 = 2_000_000;

/// One hold: worker, start, end (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hold {
    pub(crate) worker: u32,
    pub(crate) start: u64,
    pub(crate) end: u64,
}

/// A run's holds, sorted by start, and the spans during which two or more were open.
#[derive(Debug, Default)]
pub(crate) struct Run {
    pub(crate) holds: Vec<Hold>,
    pub(crate) doubles: Vec<(u64, u64)>,
    pub(crate) workers: u32,
}

impl Run {
    /// Parses a witness log. Holds never exited (a killed holder) are left out.
    pub(crate) fn parse(log: &str) -> anyhow::Result<Self> {
        let mut open: HashMap<(u32, u64), u64> = HashMap::new();
        let mut holds = Vec::new();
        let mut workers = 0;
        for (number, line) in log.lines().enumerate() {
            let fields: Vec<&str> = line.split(' ').collect();
            let bad = || format!("witness log line {}: {line:?}", number + 1);
            // Fields after the fourth (a reader's `shared`, a hold's `token=N`) are not drawn.
            let [kind, worker, cycle, ns, ..] = fields[..] else {
                bail!(bad());
            };
            let worker: u32 = worker.parse().with_context(bad)?;
            let cycle: u64 = cycle.parse().with_context(bad)?;
            let ns: u64 = ns.parse().with_context(bad)?;
            workers = workers.max(worker + 1);
            match kind {
                "enter" => {
                    open.insert((worker, cycle), ns);
                }
                "exit" => {
                    if let Some(start) = open.remove(&(worker, cycle)) {
                        holds.push(Hold {
                            worker,
                            start,
                            end: ns.max(start),
                        });
                    }
                }
                _ => bail!(bad()),
            }
        }
        holds.sort_by_key(|hold| (hold.start, hold.worker));
        let doubles = spans_of_two_or_more(&holds);
        Ok(Self {
            holds,
            doubles,
            workers,
        })
    }

    fn first_start(&self) -> u64 {
        self.holds.first().map_or(0, |hold| hold.start)
    }

    /// Where the drawn window opens, in ns from the first hold: a little before the densest
    /// run of moments with two holders, or of holds when there are none.
    fn window_offset(&self) -> u64 {
        let starts: Vec<u64> = if self.doubles.is_empty() {
            self.holds.iter().map(|hold| hold.start).collect()
        } else {
            self.doubles.iter().map(|(start, _)| *start).collect()
        };
        densest(&starts, WINDOW_NS * 4 / 5)
            .saturating_sub(WINDOW_NS / 10)
            .saturating_sub(self.first_start())
    }
}

/// The start of the `width`-long window (beginning at one of `starts`, which are sorted) that
/// holds the most of them.
fn densest(starts: &[u64], width: u64) -> u64 {
    let mut best = (0, starts.first().copied().unwrap_or(0));
    let mut end = 0;
    for (i, &start) in starts.iter().enumerate() {
        while end < starts.len() && starts[end] < start + width {
            end += 1;
        }
        if end - i > best.0 {
            best = (end - i, start);
        }
    }
    best.1
}

/// The time spans during which at least two holds were open at once.
fn spans_of_two_or_more(holds: &[Hold]) -> Vec<(u64, u64)> {
    // Ends sort before starts at the same instant: touching holds are not overlapping.
    let mut events: Vec<(u64, i32)> = holds
        .iter()
        .flat_map(|hold| [(hold.start, 1), (hold.end, -1)])
        .collect();
    events.sort_unstable();
    let mut spans = Vec::new();
    let mut open = 0;
    let mut since = 0;
    for (at, delta) in events {
        let before = open;
        open += delta;
        if before < 2 && open >= 2 {
            since = at;
        } else if before >= 2 && open < 2 && at > since {
            spans.push((since, at));
        }
    }
    spans
}

/// The SVG: one panel per run, the pre-fix port first.
pub(crate) fn svg(pre_fix: &Run, fixed: &Run) -> String {
    let lanes = pre_fix.workers.max(fixed.workers).max(1);
    let lane_h = 14.0;
    let panel_h = 50.0 + f64::from(lanes) * lane_h;
    let (width, left, right) = (900.0, 80.0, 20.0);
    let height = 30.0 + 2.0 * panel_h + 20.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="{width}" height="{height}" fill="white"/><text x="{left}" y="20" font-size="15" font-weight="bold">BUG-423: {lanes} processes acquiring and releasing one scope; who holds it, {} ms of each run</text>"#,
        WINDOW_NS as f64 / 1e6
    );
    for (k, (title, run)) in [("pre-fix port", pre_fix), ("fix", fixed)]
        .into_iter()
        .enumerate()
    {
        let top = 30.0 + k as f64 * panel_h;
        let offset = run.window_offset();
        let from = run.first_start() + offset;
        let to = from + WINDOW_NS;
        let plot_w = width - left - right;
        let x = |ns: u64| left + (ns.clamp(from, to) - from) as f64 / WINDOW_NS as f64 * plot_w;
        let in_window = |start: u64, end: u64| end > from && start < to;
        let shown_doubles = run
            .doubles
            .iter()
            .filter(|(s, e)| in_window(*s, *e))
            .count();
        let shown_holds = run
            .holds
            .iter()
            .filter(|h| in_window(h.start, h.end))
            .count();
        let _ = writeln!(
            out,
            r#"<text x="{left}" y="{:.1}" font-weight="bold">{title}: {} spans with two or more holders in the whole run of {} holds ({shown_doubles} of them here, among {shown_holds} holds)</text>"#,
            top + 16.0,
            run.doubles.len(),
            run.holds.len(),
        );
        let lanes_top = top + 26.0;
        for lane in 0..lanes {
            let y = lanes_top + f64::from(lane) * lane_h;
            let _ = writeln!(
                out,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10">worker {lane}</text><line x1="{left}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#eee"/>"##,
                left - 6.0,
                y + 10.0,
                left + plot_w,
                y + lane_h / 2.0,
                y + lane_h / 2.0
            );
        }
        let lanes_h = f64::from(lanes) * lane_h;
        for (start, end) in run.doubles.iter().filter(|(s, e)| in_window(*s, *e)) {
            let (x0, x1) = (x(*start), x(*end));
            let _ = writeln!(
                out,
                r##"<rect x="{x0:.2}" y="{lanes_top:.1}" width="{:.2}" height="{lanes_h:.1}" fill="#d62728" fill-opacity="0.35"/>"##,
                (x1 - x0).max(1.5)
            );
        }
        for hold in run.holds.iter().filter(|h| in_window(h.start, h.end)) {
            let (x0, x1) = (x(hold.start), x(hold.end));
            let y = lanes_top + f64::from(hold.worker) * lane_h + 2.0;
            let _ = writeln!(
                out,
                r##"<rect x="{x0:.2}" y="{y:.1}" width="{:.2}" height="{:.1}" fill="#1f77b4"/>"##,
                (x1 - x0).max(0.8),
                lane_h - 4.0
            );
        }
        let axis_y = lanes_top + lanes_h + 12.0;
        const TICK_NS: u64 = 200_000;
        for tick in 0..=(WINDOW_NS / TICK_NS) {
            let at = left + (tick * TICK_NS) as f64 / WINDOW_NS as f64 * plot_w;
            let _ = writeln!(
                out,
                r#"<text x="{at:.1}" y="{axis_y:.1}" text-anchor="middle" font-size="10">{:.1} ms</text>"#,
                (offset + tick * TICK_NS) as f64 / 1e6
            );
        }
    }
    let _ = writeln!(
        out,
        r##"<text x="{left}" y="{:.1}" font-size="11">blue: a worker holds the lock (from the witness's enter to its exit); red: two or more hold it at once. Time from the run's first hold.</text>"##,
        height - 6.0
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
enter 0 0 1000
exit 0 0 2000
enter 1 0 2000
enter 2 0 2500
exit 1 0 3000
exit 2 0 4000
enter 0 1 5000
exit 0 1 6000
enter 3 0 7000
";

    #[test]
    fn pairs_holds_and_finds_the_moments_of_two_holders() -> anyhow::Result<()> {
        let run = Run::parse(LOG)?;
        // The unexited hold of worker 3 is left out; touching holds (0 then 1 at 2000) are
        // not a double hold.
        assert_eq!(run.holds.len(), 4);
        assert_eq!(run.workers, 4);
        assert_eq!(run.doubles, [(2500, 3000)]);
        Ok(())
    }

    #[test]
    fn the_window_goes_where_the_starts_are_densest() {
        assert_eq!(densest(&[0, 100, 5000, 5010, 5020, 9000], 100), 5000);
        assert_eq!(densest(&[7], 100), 7);
        assert_eq!(densest(&[], 100), 0);
    }

    #[test]
    fn bad_lines_are_errors_naming_the_line() {
        let err = Run::parse("enter 0 0 1\nleave 0 0 2\n")
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("line 2")),
            "{err:?}"
        );
        assert!(Run::parse("enter x 0 1\n").is_err());
    }

    #[test]
    fn draws_both_runs_and_marks_only_the_double_holds() -> anyhow::Result<()> {
        let pre_fix = Run::parse(LOG)?;
        let fixed = Run::parse("enter 0 0 100\nexit 0 0 200\nenter 1 0 300\nexit 1 0 400\n")?;
        let svg = svg(&pre_fix, &fixed);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("pre-fix port: 1 spans with two or more holders"));
        assert!(svg.contains("fix: 0 spans with two or more holders in the whole run of 2"));
        assert_eq!(svg.matches("fill=\"#d62728\"").count(), 1);
        assert_eq!(svg.matches("fill=\"#1f77b4\"").count(), 6);
        Ok(())
    }
}
