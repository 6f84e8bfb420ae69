//! The terminal table: every section of a [`Report`], with its targets.

use std::fmt::Write as _;

use super::{Handoffs, Report, Timing, duration};

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
            let _ = writeln!(
                w,
                "{:>6}  {:>10} {:>7}  {:>10} {:>7}  {:>10} {:>8}",
                "held", "ours", "spread", "floor", "ours/fl", "pre-fix", "ours/pre"
            );
            for row in &self.held {
                let _ = writeln!(
                    w,
                    "{:>6}  {:>10} {:>6.0}%  {:>10} {:>7.2}  {:>10} {:>8.2}",
                    row.held,
                    duration(row.ours.best),
                    row.ours.spread(),
                    duration(row.floor.best),
                    row.ours.best / row.floor.best,
                    duration(row.pre_fix.best),
                    row.ours.best / row.pre_fix.best,
                );
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
            let _ = writeln!(
                w,
                "{:>6}  {:>10} {:>7}  {:>10}  {:>7}  {:>12} {:>12}",
                "held", "ours", "spread", "floor", "ours/fl", "ours/lock", "floor/lock"
            );
            for row in &self.held {
                let per = |t: Timing| {
                    if row.held == 0 {
                        "-".to_owned()
                    } else {
                        duration(t.best / row.held as f64)
                    }
                };
                let _ = writeln!(
                    w,
                    "{:>6}  {:>10} {:>6.0}%  {:>10}  {:>7.2}  {:>12} {:>12}",
                    row.held,
                    duration(row.list_ours.best),
                    row.list_ours.spread(),
                    duration(row.list_floor.best),
                    row.list_ours.best / row.list_floor.best,
                    per(row.list_ours),
                    per(row.list_floor),
                );
            }
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
                 fair floor: the same processes passing the turn in FIFO order round a ring of FIFOs"
            );
            let _ = writeln!(
                w,
                "{:>9}  {:>8} {:>8}  {:>10} {:>8}  {:>8} {:>8}  {:>10} {:>10}",
                "processes",
                "ours",
                "median",
                "fair floor",
                "median",
                "mutex",
                "median",
                "ours/floor",
                "ours/mutex"
            );
            for row in &self.contended {
                let _ = writeln!(
                    w,
                    "{:>9}  {:>8.0} {:>8.0}  {:>10.0} {:>8.0}  {:>8.0} {:>8.0}  {:>10.2} {:>10.2}",
                    row.processes,
                    row.ours.0,
                    row.ours.1,
                    row.ring.0,
                    row.ring.1,
                    row.mutex.0,
                    row.mutex.1,
                    row.ours.0 / row.ring.0,
                    row.ours.0 / row.mutex.0
                );
            }
        }
        if !self.handoff.is_empty() {
            let _ = writeln!(
                w,
                "\nP3 handoff: release to the next process holding the lock, waiters in acquire\n\
                 (fair floor: a token passed round a ring of FIFOs; mutex: blocking flock)"
            );
            let _ = writeln!(
                w,
                "{:>7}  {:>10} {:>10} {:>10} {:>8}  {:>10} {:>10}  {:>10} {:>10} {:>8}",
                "waiters",
                "ours p50",
                "p99",
                "max",
                "re-takes",
                "floor p50",
                "p99",
                "mutex p50",
                "p99",
                "re-takes"
            );
            let retakes =
                |side: &Handoffs| format!("{}/{}", side.retakes, side.count + side.retakes);
            for row in &self.handoff {
                let _ = writeln!(
                    w,
                    "{:>7}  {:>10} {:>10} {:>10} {:>8}  {:>10} {:>10}  {:>10} {:>10} {:>8}",
                    row.waiters,
                    duration(row.ours.p50),
                    duration(row.ours.p99),
                    duration(row.ours.max),
                    retakes(&row.ours),
                    duration(row.ring.p50),
                    duration(row.ring.p99),
                    duration(row.mutex.p50),
                    duration(row.mutex.p99),
                    retakes(&row.mutex),
                );
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
}
