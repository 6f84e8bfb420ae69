//! The terminal table: every section of a [`Report`], with its targets.

use std::fmt::Write as _;

use super::{Handoffs, Report, Timing, duration};

/// Writes one line of a table: each cell right-aligned to its width, two spaces apart.
pub(crate) fn cells(w: &mut String, row: &[(usize, String)]) {
    let line: Vec<String> = row
        .iter()
        .map(|(width, cell)| format!("{cell:>width$}"))
        .collect();
    let _ = writeln!(w, "{}", line.join("  "));
}

/// A header or row of `texts`, each in the column width `widths` gives.
pub(crate) fn columns(widths: &[usize], texts: &[String]) -> Vec<(usize, String)> {
    widths.iter().copied().zip(texts.iter().cloned()).collect()
}

fn header(w: &mut String, widths: &[usize], names: &[&str]) {
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    cells(w, &columns(widths, &names));
}

fn ratio(x: f64) -> String {
    format!("{x:.2}")
}

fn spread(t: Timing) -> String {
    format!("{:.0}%", t.spread())
}

/// A row's first five cells where ours is timed beside the floor: the count, ours, its
/// spread, the floor, ours/floor.
fn beside_floor(count: u64, ours: Timing, floor: Timing) -> Vec<String> {
    vec![
        count.to_string(),
        duration(ours.best),
        spread(ours),
        duration(floor.best),
        ratio(ours.best / floor.best),
    ]
}

/// Holds per second, best and median of rounds, as two cells.
pub(crate) fn rates((best, median): (f64, f64)) -> [String; 2] {
    [format!("{best:.0}"), format!("{median:.0}")]
}

impl Report {
    /// The terminal table.
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let w = &mut out;
        let _ = writeln!(
            w,
            "\nscope-lock bench: release build, one run, best of rounds"
        );
        let _ = writeln!(w, "machine: {}", self.machine_line());
        let _ = writeln!(w, "{}", self.context_line());
        let _ = writeln!(
            w,
            "ratios: ours / a baseline measured beside it, interleaved, best round against best round;\n\
             spread: median round above best\n"
        );
        if !self.held.is_empty() {
            let _ = writeln!(
                w,
                "P1/P2 acquire+release with N live locks held by another process"
            );
            let widths = [6, 10, 7, 10, 7, 10, 8];
            header(
                w,
                &widths,
                &[
                    "held", "ours", "spread", "floor", "ours/fl", "pre-fix", "ours/pre",
                ],
            );
            for row in &self.held {
                let mut texts = beside_floor(row.held, row.ours, row.floor);
                texts.extend([
                    duration(row.pre_fix.best),
                    ratio(row.ours.best / row.pre_fix.best),
                ]);
                cells(w, &columns(&widths, &texts));
            }
            for (from, to, ours, floor) in self.per_held_lock() {
                let _ = writeln!(
                    w,
                    "  each held lock from {from} to {to}: ours {}, floor {} ({:.2}x)",
                    duration(ours),
                    duration(floor),
                    ours / floor
                );
            }
            let _ = writeln!(w, "\nP2 list_locks");
            let widths = [6, 10, 7, 10, 7, 12, 12];
            header(
                w,
                &widths,
                &[
                    "held",
                    "ours",
                    "spread",
                    "floor",
                    "ours/fl",
                    "ours/lock",
                    "floor/lock",
                ],
            );
            for row in &self.held {
                let per = |t: Timing| {
                    if row.held == 0 {
                        "-".to_owned()
                    } else {
                        duration(t.best / row.held as f64)
                    }
                };
                let mut texts = beside_floor(row.held, row.list_ours, row.list_floor);
                texts.extend([per(row.list_ours), per(row.list_floor)]);
                cells(w, &columns(&widths, &texts));
            }
            self.ladder_table(w);
        }
        if let Some(holders) = self.scope_size.first().map(|row| row.holders) {
            let _ = writeln!(
                w,
                "\nP5 acquire+release by scope size, against {holders} holders (ours, ours/floor, ours/ours at 1x1)"
            );
            let base = self
                .scope_size
                .iter()
                .find(|row| row.ours_paths == 1 && row.holder_paths == 1)
                .map(|row| row.ours.best);
            let _ = writeln!(
                w,
                "{:>11} {:>13}  {:>10} {:>8} {:>8}",
                "our paths", "holder paths", "ours", "ours/fl", "vs 1x1"
            );
            for row in &self.scope_size {
                let _ = writeln!(
                    w,
                    "{:>11} {:>13}  {:>10} {:>8.2} {:>8.1}",
                    row.ours_paths,
                    row.holder_paths,
                    duration(row.ours.best),
                    row.ours.best / row.floor.best,
                    base.map_or(f64::NAN, |base| row.ours.best / base),
                );
            }
        }
        if !self.contended.is_empty() {
            let _ = writeln!(
                w,
                "\nP4 contended throughput: N processes, one scope, 1 ms of busy work per hold, waiting in acquire (holds/s);\n\
                 fair floor: the same processes passing the turn in FIFO order round a ring of FIFOs;\n\
                 protocol floor: the fair floor doing, each turn, what the protocol's guarantees need, bare"
            );
            let widths = [9, 8, 8, 10, 8, 8, 8, 8, 10, 10, 10];
            header(
                w,
                &widths,
                &[
                    "processes",
                    "ours",
                    "median",
                    "fair floor",
                    "median",
                    "protocol",
                    "median",
                    "mutex",
                    "ours/floor",
                    "ours/proto",
                    "ours/mutex",
                ],
            );
            for row in &self.contended {
                let protocol = row.protocol.unwrap_or((f64::NAN, f64::NAN));
                let mut texts = vec![row.processes.to_string()];
                for side in [row.ours, row.ring, protocol] {
                    texts.extend(rates(side));
                }
                texts.extend([
                    format!("{:.0}", row.mutex.0),
                    ratio(row.ours.0 / row.ring.0),
                    ratio(row.ours.0 / protocol.0),
                    ratio(row.ours.0 / row.mutex.0),
                ]);
                cells(w, &columns(&widths, &texts));
            }
        }
        if !self.handoff.is_empty() {
            let _ = writeln!(
                w,
                "\nP3 handoff: release to the next process holding the lock, waiters in acquire\n\
                 (fair floor: a token passed round a ring of FIFOs; protocol floor: that, doing what\n\
                 the protocol's guarantees need at each turn; mutex: blocking flock)"
            );
            let widths = [7, 10, 10, 10, 8, 10, 10, 10, 10, 10, 10, 8];
            header(
                w,
                &widths,
                &[
                    "waiters",
                    "ours p50",
                    "p99",
                    "max",
                    "re-takes",
                    "floor p50",
                    "p99",
                    "proto p50",
                    "p99",
                    "mutex p50",
                    "p99",
                    "re-takes",
                ],
            );
            let retakes =
                |side: &Handoffs| format!("{}/{}", side.retakes, side.count + side.retakes);
            for row in &self.handoff {
                let (protocol_p50, protocol_p99) = row
                    .protocol
                    .as_ref()
                    .map_or((f64::NAN, f64::NAN), |p| (p.p50, p.p99));
                let texts = [
                    row.waiters.to_string(),
                    duration(row.ours.p50),
                    duration(row.ours.p99),
                    duration(row.ours.max),
                    retakes(&row.ours),
                    duration(row.ring.p50),
                    duration(row.ring.p99),
                    duration(protocol_p50),
                    duration(protocol_p99),
                    duration(row.mutex.p50),
                    duration(row.mutex.p99),
                    retakes(&row.mutex),
                ];
                cells(w, &columns(&widths, &texts));
            }
            if let Some(wakeup) = &self.wakeup {
                let _ = writeln!(
                    w,
                    "bare wake-up between two processes: p50 {}, p99 {}",
                    duration(wakeup.p50),
                    duration(wakeup.p99)
                );
            }
        }
        self.decomposition_lines(w);
        let memory = &self.measured["memory"];
        if !memory.is_null() {
            let _ = writeln!(
                w,
                "\nmemory (peak RSS): a process doing nothing {} KiB; holding one lock {} KiB; list_locks over {} locks {} KiB; `scope-lock list` over them {} KiB",
                memory["idle_process_kib"],
                memory["one_lock_holder_kib"],
                memory["list_locks_count"],
                memory["list_locks_kib"],
                memory["cli_list_kib"],
            );
        }
        self.etcd.table(w);
        let _ = writeln!(w, "\ntargets (reported, never asserted)");
        for (what, ratio, target, met) in self.targets() {
            let _ = writeln!(
                w,
                "  {:<4} {what}: {ratio:.2} (target {target})",
                if met { "met" } else { "MISS" }
            );
        }
        out
    }

    /// P1's ladder: the floor, each guarantee added to it, and ours, as multiples of the
    /// floor; what is left between the top rung and ours is no guarantee of the ladder.
    fn ladder_table(&self, w: &mut String) {
        let Some(first) = self.held.iter().find(|row| !row.ladder.is_empty()) else {
            return;
        };
        let _ = writeln!(
            w,
            "\nP1 ladder: the floor plus each guarantee it leaves out, one at a time (x floor)"
        );
        let mut names = vec!["held".to_owned(), "floor".to_owned()];
        names.extend(first.ladder.iter().map(|(rung, _)| format!("+{rung}")));
        names.push("ours".to_owned());
        let widths = vec![10; names.len()];
        cells(w, &columns(&widths, &names));
        for row in self.held.iter().filter(|row| !row.ladder.is_empty()) {
            let mut texts = vec![row.held.to_string(), duration(row.floor.best)];
            texts.extend(
                row.ladder
                    .iter()
                    .map(|(_, timing)| ratio(timing.best / row.floor.best)),
            );
            texts.push(ratio(row.ours.best / row.floor.best));
            cells(w, &columns(&widths, &texts));
        }
    }

    /// Which part of P3's and P4's gap to the fair floor is the protocol's own.
    fn decomposition_lines(&self, w: &mut String) {
        let handoff: Vec<&super::HandoffRow> = self
            .handoff
            .iter()
            .filter(|row| row.protocol.is_some())
            .collect();
        let contended: Vec<&super::ContendedRow> = self
            .contended
            .iter()
            .filter(|row| row.protocol.is_some())
            .collect();
        if handoff.is_empty() && contended.is_empty() {
            return;
        }
        let _ = writeln!(
            w,
            "\nthe gap to the fair floor, split: ours / protocol floor (what ours adds) x protocol floor / fair floor (the protocol's own)"
        );
        for row in handoff {
            let Some(protocol) = &row.protocol else {
                continue;
            };
            for (quantile, ours, proto, fair) in [
                ("p50", row.ours.p50, protocol.p50, row.ring.p50),
                ("p99", row.ours.p99, protocol.p99, row.ring.p99),
            ] {
                let _ = writeln!(
                    w,
                    "  P3 {quantile}, {} waiters: ours/fair {:.2} = ours/protocol {:.2} x protocol/fair {:.2}",
                    row.waiters,
                    ours / fair,
                    ours / proto,
                    proto / fair
                );
            }
        }
        for row in contended {
            let Some((protocol, _)) = row.protocol else {
                continue;
            };
            let _ = writeln!(
                w,
                "  P4, {} processes: ours/fair {:.2} = ours/protocol {:.2} x protocol/fair {:.2}",
                row.processes,
                row.ours.0 / row.ring.0,
                row.ours.0 / protocol,
                protocol / row.ring.0
            );
        }
    }
}
