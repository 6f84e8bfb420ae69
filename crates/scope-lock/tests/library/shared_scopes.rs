//! Shared (read) scopes: readers hold overlapping scopes together, a writer excludes them and
//! waits for them, and a reader that arrives after a waiting writer queues behind it.
//!
//! Holders that must be another process are the original's kind of lock file with our `mode`
//! key (pid 1, alive and never our ancestor, no flock): removing the file releases it. Waiters
//! are threads, as in `waiting`.

use std::fs;
use std::path::PathBuf;

use scope_lock::testing::{self, TestResult, expect_conflict, fixture};
use scope_lock::{ConflictRule, LockMode, LockRecord, LockRequest};

use crate::waiting::{PATIENCE, start_waiting};

/// A holder of `rel` in another process, in `mode`: an original-format lock over `rel`, with
/// our `mode` key when shared.
fn elsewhere(
    f: &testing::Fixture,
    name: &str,
    rel: &str,
    mode: LockMode,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    f.init()?;
    let record =
        LockRecord::new(name, vec![f.path(rel)], 1, "2026-01-01T00:00:00+00:00").with_mode(mode);
    f.write_lock_file(name, record.to_json().as_bytes())
}

fn reader_elsewhere(
    f: &testing::Fixture,
    name: &str,
    rel: &str,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    elsewhere(f, name, rel, LockMode::Shared)
}

/// The loop names of the live locks.
fn holders(f: &testing::Fixture) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let listing = f.locks.list_locks()?;
    Ok(listing
        .locks()
        .iter()
        .map(|lock| lock.record().loop_name().to_owned())
        .collect())
}

fn reader(f: &testing::Fixture, name: &str, rel: &str) -> LockRequest {
    f.request(name, rel).shared()
}

#[test]
fn readers_of_overlapping_scopes_hold_them_together() -> TestResult {
    let f = fixture()?;
    let elsewhere = reader_elsewhere(&f, "indexer", "src")?;
    let outer = f.locks.try_acquire(&reader(&f, "review", "src"))?;
    let inner = f.locks.try_acquire(&reader(&f, "report", "src/lib"))?;
    assert_eq!(outer.record().mode(), LockMode::Shared);
    let listing = f.locks.list_locks()?;
    let mut modes: Vec<(String, LockMode)> = listing
        .locks()
        .iter()
        .map(|lock| (lock.record().loop_name().to_owned(), lock.record().mode()))
        .collect();
    modes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        modes,
        [
            ("indexer".to_owned(), LockMode::Shared),
            ("report".to_owned(), LockMode::Shared),
            ("review".to_owned(), LockMode::Shared),
        ]
    );
    inner.release()?;
    outer.release()?;
    fs::remove_file(elsewhere)?;
    Ok(())
}

#[test]
fn a_writer_and_a_reader_of_overlapping_scopes_exclude_each_other() -> TestResult {
    let f = fixture()?;
    let elsewhere = reader_elsewhere(&f, "indexer", "src")?;
    let conflict = expect_conflict(f.locks.try_acquire(&f.request("fixer", "src/lib")));
    assert!(
        matches!(conflict.rule(), ConflictRule::Overlap { .. }),
        "{conflict}"
    );
    assert_eq!(
        conflict.holder().map(LockRecord::loop_name),
        Some("indexer")
    );
    assert!(
        conflict.to_string().contains("held shared by"),
        "{conflict}"
    );
    // A disjoint writer is not in the way of readers, nor they of it.
    f.acquire("docs", "docs")?.release()?;
    fs::remove_file(elsewhere)?;

    let writer = f.acquire("fixer", "src")?;
    let conflict = expect_conflict(f.locks.try_acquire(&reader(&f, "review", "src/lib")));
    assert_eq!(conflict.holder().map(LockRecord::loop_name), Some("fixer"));
    assert!(conflict.is_held_by_this_process(), "{conflict}");
    writer.release()?;
    Ok(())
}

#[test]
fn a_writer_waits_for_every_reader_to_leave() -> TestResult {
    let f = fixture()?;
    let elsewhere = reader_elsewhere(&f, "indexer", "src")?;
    let ours = f.locks.try_acquire(&reader(&f, "review", "src"))?;
    let writer = start_waiting(&f.locks, f.request("fixer", "src"), PATIENCE)?;

    // One reader leaves; the other still holds, so the writer does not.
    fs::remove_file(elsewhere)?;
    let conflict = f
        .locks
        .find_conflict(&f.request("fixer", "src"))?
        .ok_or("nothing blocks the writer while a reader holds")?;
    assert_eq!(conflict.holder().map(LockRecord::loop_name), Some("review"));
    assert_eq!(holders(&f)?, ["review"], "the writer holds beside a reader");

    ours.release()?;
    let guard = writer.recv_timeout(PATIENCE)??;
    assert_eq!(guard.record().mode(), LockMode::Exclusive);
    guard.release()?;
    Ok(())
}

#[test]
fn a_reader_that_arrives_after_a_waiting_writer_waits_behind_it() -> TestResult {
    let f = fixture()?;
    let elsewhere = reader_elsewhere(&f, "indexer", "src")?;
    let writer = start_waiting(&f.locks, f.request("fixer", "src"), PATIENCE)?;

    // The scope is only read, but a writer waits for it: a new reader is refused, naming it.
    let conflict = expect_conflict(f.locks.try_acquire(&reader(&f, "review", "src/lib")));
    assert!(
        matches!(conflict.rule(), ConflictRule::Waiting { .. }),
        "a reader passed a waiting writer: {conflict}"
    );
    assert_eq!(conflict.holder().map(LockRecord::loop_name), Some("fixer"));
    // A reader that waits is served after the writer.
    let late_reader = start_waiting(&f.locks, reader(&f, "review", "src/lib"), PATIENCE)?;

    fs::remove_file(elsewhere)?;
    let guard = writer.recv_timeout(PATIENCE)??;
    assert_eq!(guard.record().loop_name(), "fixer");
    assert_eq!(
        holders(&f)?,
        ["fixer"],
        "the reader holds beside the writer"
    );
    guard.release()?;
    let guard = late_reader.recv_timeout(PATIENCE)??;
    assert_eq!(guard.record().mode(), LockMode::Shared);
    guard.release()?;
    Ok(())
}

#[test]
fn readers_waiting_behind_a_writer_are_served_together() -> TestResult {
    let f = fixture()?;
    let elsewhere = elsewhere(&f, "original", "src", LockMode::Exclusive)?;
    let first = start_waiting(&f.locks, reader(&f, "review", "src"), PATIENCE)?;
    let second = start_waiting(&f.locks, reader(&f, "report", "src/lib"), PATIENCE)?;
    fs::remove_file(elsewhere)?;
    let first = first.recv_timeout(PATIENCE)??;
    let second = second.recv_timeout(PATIENCE)??;
    assert_eq!(holders(&f)?.len(), 2);
    first.release()?;
    second.release()?;
    Ok(())
}

#[test]
fn singletons_of_one_loop_exclude_each_other_whatever_their_mode() -> TestResult {
    let f = fixture()?;
    let first = f
        .locks
        .try_acquire(&reader(&f, "nightly", "a").singleton(true).instance_id("n1"))?;
    let conflict = expect_conflict(
        f.locks
            .try_acquire(&reader(&f, "nightly", "b").singleton(true).instance_id("n2")),
    );
    assert_eq!(conflict.rule(), &ConflictRule::Singleton);
    first.release()?;
    Ok(())
}
