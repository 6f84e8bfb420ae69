//! The behaviours the original lock manager's own test suite checks, in our own words and
//! through our API, one module per section of that suite: R1, L1-L6, X1, X2, P1, M1-M3, S1,
//! T1. The original's tests that need other processes or another user (an ancestor's singleton
//! not blocking its child; the EPERM half of L5) are in `tests/tests/acceptance/processes.rs`; its tests
//! of waiting for a scope have no counterpart until the library can wait.

mod conflicts;
mod files;
mod instances;
mod listing;
mod overlap;
mod races;
mod record;
mod singletons;
mod stale;
mod templates;
mod vanishing;

use std::error::Error;
use std::path::PathBuf;

use scope_lock::testing::{DEAD_PID, Fixture};
use scope_lock::{Conflict, ConflictRule, LockRecord};

/// The timestamp of hand-written records.
pub(super) const STARTED: &str = "2026-01-01T00:00:00.000000+00:00";

/// A record in the original's shape (no `liveness` key).
pub(super) fn original_record(loop_name: &str, scope: &[String], pid: u32) -> String {
    LockRecord::new(loop_name, scope.to_vec(), pid, STARTED).to_json()
}

pub(super) fn strings(paths: &[&str]) -> Vec<String> {
    paths.iter().map(|p| (*p).to_owned()).collect()
}

/// Writes `<name>.lock` in the original's format, over the project path `rel`, for a process
/// that does not exist.
pub(super) fn write_dead_original_lock(
    f: &Fixture,
    name: &str,
    rel: &str,
) -> Result<PathBuf, Box<dyn Error>> {
    f.write_lock_file(
        name,
        original_record(name, &[f.path(rel)], DEAD_PID).as_bytes(),
    )
}

/// Asserts that `conflict` is the overlap of our project path `ours` with the holder's `theirs`.
#[track_caller]
pub(super) fn assert_overlap(f: &Fixture, conflict: &Conflict, ours: &str, theirs: &str) {
    assert_eq!(
        conflict.rule(),
        &ConflictRule::Overlap {
            ours: f.path(ours),
            theirs: f.path(theirs),
        }
    );
}
