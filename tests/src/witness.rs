//! The independent witness: every holder appends `enter` after it acquires and `exit` before
//! it releases, each one `write(2)` to a log opened with `O_APPEND`, with a `CLOCK_MONOTONIC`
//! timestamp (one clock for all processes). The checker then proves, twice over, that no two
//! holds overlapped:
//!
//! - by order: the log must alternate `enter`/`exit` of the same hold, since both lines are
//!   written while the lock is held;
//! - by time: sorted by start, no recorded interval may begin before an earlier one ended. A
//!   recorded interval lies inside the real hold, so an overlap here is a real one.
//!
//! It depends on nothing in the lock crate: it would catch two holders whatever the lock did.
//!
//! A reader (a holder of a shared lock) says so on its lines (`enter <worker> <cycle> <ns>
//! shared`). Readers may overlap each other, and are counted when they do; an overlap is any
//! pair of holds, one of them a writer's, that overlap by either proof.
//!
//! A holder whose lock has a fencing token writes it on its `enter` line (`token=<N>`); the
//! checker then proves that each hold's token is larger than that of every hold before it (the
//! log's order is the holds' order, as long as no two writers overlapped).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// A holder's handle on the witness log.
pub struct Witness {
    log: File,
    worker: u32,
    shared: bool,
}

impl Witness {
    /// Opens (creating) the log for appending, for worker number `worker`.
    ///
    /// # Errors
    ///
    /// The open's.
    pub fn open(path: &Path, worker: u32) -> io::Result<Self> {
        let log = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            log,
            worker,
            shared: false,
        })
    }

    /// Marks this worker's holds as a reader's, which others may overlap.
    #[must_use]
    pub fn shared(mut self) -> Self {
        self.shared = true;
        self
    }

    /// Records that this worker now holds the lock (hold number `cycle`), with its fencing
    /// token if it has one.
    ///
    /// # Errors
    ///
    /// A failed or short write.
    pub fn enter(&mut self, cycle: u64, token: Option<u64>) -> io::Result<()> {
        self.event("enter", cycle, token)
    }

    /// Records that this worker is about to release hold number `cycle`.
    ///
    /// # Errors
    ///
    /// A failed or short write.
    pub fn exit(&mut self, cycle: u64) -> io::Result<()> {
        self.event("exit", cycle, None)
    }

    fn event(&mut self, kind: &str, cycle: u64, token: Option<u64>) -> io::Result<()> {
        let mode = if self.shared { " shared" } else { "" };
        let token = token
            .map(|token| format!(" token={token}"))
            .unwrap_or_default();
        let line = format!(
            "{kind} {} {cycle} {}{mode}{token}\n",
            self.worker,
            monotonic_ns()
        );
        // One write call, so the line lands whole at the end of the file.
        let written = self.log.write(line.as_bytes())?;
        if written == line.len() {
            Ok(())
        } else {
            Err(io::Error::other("short write to the witness log"))
        }
    }
}

/// Nanoseconds of `CLOCK_MONOTONIC`, comparable between processes of one boot.
pub fn monotonic_ns() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(now.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(now.tv_nsec).unwrap_or(0)
}

/// What the checker found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WitnessReport {
    /// Complete holds (an `enter` with its `exit`).
    pub holds: u64,
    /// `enter` lines written while another hold was open, one of the two a writer's.
    pub overlaps_by_order: u64,
    /// Intervals that began before an earlier one ended, one of the two a writer's.
    pub overlaps_by_time: u64,
    /// The most holds open at once, by order (readers together count).
    pub max_holders: u64,
    /// Readers' `enter` lines written while only other readers held: sharing, not an overlap.
    pub shared_overlaps: u64,
    /// `exit` lines without an `enter`, and holds never exited (a killed holder).
    pub unmatched: u64,
    /// `enter` lines with a fencing token.
    pub tokens: u64,
    /// `enter` lines whose token is not larger than every token before it.
    pub token_regressions: u64,
}

impl WitnessReport {
    /// Overlaps by either proof.
    pub fn overlaps(&self) -> u64 {
        self.overlaps_by_order.max(self.overlaps_by_time)
    }
}

/// Checks a witness log.
///
/// # Errors
///
/// A line that is not `enter|exit <worker> <cycle> <ns> [shared] [token=<N>]` (a token on
/// `enter` lines only).
pub fn check(log: &str) -> Result<WitnessReport, String> {
    let mut report = WitnessReport::default();
    let mut largest_token: Option<u64> = None;
    // Each open hold's start, and whether it is a reader's.
    let mut open: HashMap<(u32, u64), (u64, bool)> = HashMap::new();
    let mut intervals: Vec<(u64, u64, bool)> = Vec::new();
    for (number, line) in log.lines().enumerate() {
        let bad = || format!("witness log line {}: {line:?}", number + 1);
        let fields: Vec<&str> = line.split(' ').collect();
        let [kind, worker, cycle, ns, ref rest @ ..] = fields[..] else {
            return Err(bad());
        };
        let (mut shared, mut token) = (false, None);
        for field in rest {
            match (*field, field.strip_prefix("token=")) {
                ("shared", _) if !shared => shared = true,
                (_, Some(n)) if kind == "enter" && token.is_none() => {
                    token = Some(n.parse::<u64>().map_err(|_| bad())?);
                }
                _ => return Err(bad()),
            }
        }
        if let Some(token) = token {
            report.tokens += 1;
            if largest_token.is_some_and(|largest| token <= largest) {
                report.token_regressions += 1;
            }
            largest_token = largest_token.max(Some(token));
        }
        let key = (
            worker.parse().map_err(|_| bad())?,
            cycle.parse().map_err(|_| bad())?,
        );
        let ns: u64 = ns.parse().map_err(|_| bad())?;
        match kind {
            "enter" => {
                let writer_open = open.values().any(|(_, reader)| !reader);
                if writer_open || (!shared && !open.is_empty()) {
                    report.overlaps_by_order += 1;
                } else if !open.is_empty() {
                    report.shared_overlaps += 1;
                }
                open.insert(key, (ns, shared));
                report.max_holders = report.max_holders.max(open.len() as u64);
            }
            "exit" => match open.remove(&key) {
                Some((start, reader)) => {
                    report.holds += 1;
                    intervals.push((start, ns, reader));
                }
                None => report.unmatched += 1,
            },
            _ => return Err(bad()),
        }
    }
    report.unmatched += open.len() as u64;
    intervals.sort_unstable();
    // Sorted by start, two holds overlap when the later one starts before the earlier one
    // ends: a writer's start is checked against every earlier end, a reader's only against
    // writers' ends.
    let (mut latest_end, mut latest_writer_end) = (None, None);
    for (start, end, reader) in &intervals {
        let against = if *reader {
            latest_writer_end
        } else {
            latest_end
        };
        if against.is_some_and(|latest| start < &latest) {
            report.overlaps_by_time += 1;
        }
        latest_end = latest_end.max(Some(*end));
        if !reader {
            latest_writer_end = latest_writer_end.max(Some(*end));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_that_do_not_grow_hold_by_hold_are_caught() {
        let log = "enter 1 0 10 token=5\nexit 1 0 20\nenter 2 0 21 token=7\nexit 2 0 30\n";
        let report = check(log).unwrap();
        assert_eq!((report.tokens, report.token_regressions), (2, 0));
        // A repeat, and one below the largest so far, even after a larger one.
        let log = "enter 1 0 10 token=5\nexit 1 0 20\nenter 2 0 21 token=5\nexit 2 0 30\n\
                   enter 1 1 31 token=9\nexit 1 1 40\nenter 2 1 41 shared token=8\nexit 2 1 50 shared\n";
        let report = check(log).unwrap();
        assert_eq!((report.tokens, report.token_regressions), (4, 2));
        assert!(check("enter 1 0 10 token=x\n").is_err());
        assert!(check("exit 1 0 10 token=5\n").is_err());
    }

    #[test]
    fn alternating_holds_are_clean() {
        let log = "enter 1 0 10\nexit 1 0 20\nenter 2 0 21\nexit 2 0 30\n";
        let report = check(log).unwrap();
        assert_eq!(report.holds, 2);
        assert_eq!(report.overlaps(), 0);
        assert_eq!(report.max_holders, 1);
    }

    #[test]
    fn interleaved_holds_are_caught_by_order_and_by_time() {
        let log = "enter 1 0 10\nenter 2 0 15\nexit 1 0 20\nexit 2 0 30\n";
        let report = check(log).unwrap();
        assert_eq!(report.overlaps_by_order, 1);
        assert_eq!(report.overlaps_by_time, 1);
        assert_eq!(report.max_holders, 2);
        assert_eq!(report.holds, 2);
    }

    #[test]
    fn overlap_in_time_is_caught_even_when_lines_alternate() {
        // Two processes whose writes landed in alternating order but whose clocks say the
        // second started before the first ended.
        let log = "enter 1 0 10\nexit 1 0 20\nenter 2 0 15\nexit 2 0 30\n";
        let report = check(log).unwrap();
        assert_eq!(report.overlaps_by_order, 0);
        assert_eq!(report.overlaps_by_time, 1);
    }

    #[test]
    fn readers_may_overlap_each_other_but_never_a_writer() {
        let readers =
            "enter 1 0 10 shared\nenter 2 0 12 shared\nexit 1 0 20 shared\nexit 2 0 30 shared\n";
        let report = check(readers).unwrap();
        assert_eq!(report.overlaps(), 0);
        assert_eq!((report.shared_overlaps, report.max_holders), (1, 2));

        // A writer entering while a reader holds, and a reader while a writer holds.
        for log in [
            "enter 1 0 10 shared\nenter 2 0 12\nexit 2 0 15\nexit 1 0 20 shared\n",
            "enter 2 0 10\nenter 1 0 12 shared\nexit 1 0 15 shared\nexit 2 0 20\n",
        ] {
            let report = check(log).unwrap();
            assert_eq!(report.overlaps_by_order, 1, "{log}");
            assert_eq!(report.overlaps_by_time, 1, "{log}");
        }
        // By the clock alone: the lines alternate, the intervals do not.
        let log = "enter 1 0 10 shared\nexit 1 0 20 shared\nenter 2 0 15\nexit 2 0 30\n";
        assert_eq!(check(log).unwrap().overlaps_by_time, 1);
        let log = "enter 2 0 10\nexit 2 0 20\nenter 1 0 15 shared\nexit 1 0 30 shared\n";
        assert_eq!(check(log).unwrap().overlaps_by_time, 1);
        // A reader overlapping a reader that overlapped nobody else is fine by the clock too.
        let log = "enter 1 0 10 shared\nexit 1 0 20 shared\nenter 2 0 15 shared\nexit 2 0 30 shared\nenter 3 0 31\nexit 3 0 40\n";
        assert_eq!(check(log).unwrap().overlaps(), 0);
    }

    #[test]
    fn garbage_and_unmatched_lines_are_reported() {
        assert!(check("enter 1 0\n").is_err());
        assert!(check("leave 1 0 5\n").is_err());
        assert!(check("enter 1 0 5 reader\n").is_err());
        let report = check("exit 1 0 5\nenter 2 0 6\n").unwrap();
        assert_eq!(report.unmatched, 2);
    }

    #[test]
    fn the_log_is_appended_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.log");
        let mut a = Witness::open(&path, 1).unwrap();
        let mut b = Witness::open(&path, 2).unwrap();
        a.enter(0, None).unwrap();
        a.exit(0).unwrap();
        b.enter(0, None).unwrap();
        b.exit(0).unwrap();
        let report = check(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!((report.holds, report.overlaps()), (2, 0));
    }
}
