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

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// A holder's handle on the witness log.
pub struct Witness {
    log: File,
    worker: u32,
}

impl Witness {
    /// Opens (creating) the log for appending, for worker number `worker`.
    ///
    /// # Errors
    ///
    /// The open's.
    pub fn open(path: &Path, worker: u32) -> io::Result<Self> {
        let log = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { log, worker })
    }

    /// Records that this worker now holds the lock (hold number `cycle`).
    ///
    /// # Errors
    ///
    /// A failed or short write.
    pub fn enter(&mut self, cycle: u64) -> io::Result<()> {
        self.event("enter", cycle)
    }

    /// Records that this worker is about to release hold number `cycle`.
    ///
    /// # Errors
    ///
    /// A failed or short write.
    pub fn exit(&mut self, cycle: u64) -> io::Result<()> {
        self.event("exit", cycle)
    }

    fn event(&mut self, kind: &str, cycle: u64) -> io::Result<()> {
        let line = format!("{kind} {} {cycle} {}\n", self.worker, monotonic_ns());
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
    /// `enter` lines written while another hold was open.
    pub overlaps_by_order: u64,
    /// Intervals that began before an earlier one ended.
    pub overlaps_by_time: u64,
    /// The most holds open at once, by order.
    pub max_holders: u64,
    /// `exit` lines without an `enter`, and holds never exited (a killed holder).
    pub unmatched: u64,
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
/// A line that is not `enter|exit <worker> <cycle> <ns>`.
pub fn check(log: &str) -> Result<WitnessReport, String> {
    let mut report = WitnessReport::default();
    let mut open: HashMap<(u32, u64), u64> = HashMap::new();
    let mut intervals: Vec<(u64, u64)> = Vec::new();
    for (number, line) in log.lines().enumerate() {
        let bad = || format!("witness log line {}: {line:?}", number + 1);
        let fields: Vec<&str> = line.split(' ').collect();
        let [kind, worker, cycle, ns] = fields[..] else {
            return Err(bad());
        };
        let key = (
            worker.parse().map_err(|_| bad())?,
            cycle.parse().map_err(|_| bad())?,
        );
        let ns: u64 = ns.parse().map_err(|_| bad())?;
        match kind {
            "enter" => {
                if !open.is_empty() {
                    report.overlaps_by_order += 1;
                }
                open.insert(key, ns);
                report.max_holders = report.max_holders.max(open.len() as u64);
            }
            "exit" => match open.remove(&key) {
                Some(start) => {
                    report.holds += 1;
                    intervals.push((start, ns));
                }
                None => report.unmatched += 1,
            },
            _ => return Err(bad()),
        }
    }
    report.unmatched += open.len() as u64;
    intervals.sort_unstable();
    let mut latest_end = 0;
    for (i, (start, end)) in intervals.iter().enumerate() {
        if i > 0 && *start < latest_end {
            report.overlaps_by_time += 1;
        }
        latest_end = latest_end.max(*end);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn garbage_and_unmatched_lines_are_reported() {
        assert!(check("enter 1 0\n").is_err());
        assert!(check("leave 1 0 5\n").is_err());
        let report = check("exit 1 0 5\nenter 2 0 6\n").unwrap();
        assert_eq!(report.unmatched, 2);
    }

    #[test]
    fn the_log_is_appended_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.log");
        let mut a = Witness::open(&path, 1).unwrap();
        let mut b = Witness::open(&path, 2).unwrap();
        a.enter(0).unwrap();
        a.exit(0).unwrap();
        b.enter(0).unwrap();
        b.exit(0).unwrap();
        let report = check(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!((report.holds, report.overlaps()), (2, 0));
    }
}
