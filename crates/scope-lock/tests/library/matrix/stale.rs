//! L4, L4', L5: stale locks, reclaimed by whoever comes next.

use std::fs;

use scope_lock::testing::{TestResult, expect_conflict, fixture};
use scope_lock::{Liveness, LockRecord};

use super::{STARTED, original_record, write_dead_original_lock};

#[test]
fn an_original_format_lock_of_a_nonexistent_pid_is_reclaimed_by_the_next_acquire() -> TestResult {
    let f = fixture()?;
    let stale = write_dead_original_lock(&f, "old", "src")?;
    let guard = f.acquire("new", "src")?;
    assert!(!stale.exists(), "the stale lock file must be gone");
    assert_eq!(f.lock_files()?, [guard.path().to_path_buf()]);
    Ok(())
}

#[test]
fn list_locks_reclaims_an_original_format_lock_of_a_nonexistent_pid() -> TestResult {
    let f = fixture()?;
    let stale = write_dead_original_lock(&f, "old", "src")?;
    let listing = f.locks.list_locks()?;
    assert!(listing.locks().is_empty(), "{listing:?}");
    assert!(listing.problems().is_empty(), "{listing:?}");
    assert_eq!(listing.reclaimed(), std::slice::from_ref(&stale));
    assert!(!stale.exists());
    Ok(())
}

#[test]
fn find_conflict_also_reclaims_a_stale_original_lock_and_reports_no_conflict() -> TestResult {
    let f = fixture()?;
    let stale = write_dead_original_lock(&f, "old", "src")?;
    let request = f.request("new", "src");
    assert_eq!(f.locks.find_conflict(&request)?, None);
    assert!(!stale.exists());
    Ok(())
}

#[test]
fn our_format_lock_with_a_free_flock_is_reclaimed_even_though_its_pid_is_alive() -> TestResult {
    let f = fixture()?;
    // pid 1 and this very process are both alive: a pid probe would keep these forever (PID
    // reuse). Our records say "alive exactly while flocked", and nobody holds their flock.
    let by_init = LockRecord::new("init", vec![f.path("src")], 1, STARTED).with_flock_liveness();
    let by_us = LockRecord::new("us", vec![f.path("docs")], std::process::id(), STARTED)
        .with_flock_liveness();
    let init_path = f.write_lock_file("init", by_init.to_json().as_bytes())?;
    let us_path = f.write_lock_file("nested/us", by_us.to_json().as_bytes())?;

    let listing = f.locks.list_locks()?;
    assert!(listing.locks().is_empty(), "{listing:?}");
    assert_eq!(listing.reclaimed(), [init_path.clone(), us_path.clone()]);
    assert!(!init_path.exists());
    assert!(!us_path.exists());
    Ok(())
}

#[test]
fn an_acquire_over_our_format_lock_with_a_free_flock_succeeds() -> TestResult {
    let f = fixture()?;
    let record = LockRecord::new("ghost", vec![f.path("src")], std::process::id(), STARTED)
        .with_flock_liveness();
    let stale = f.write_lock_file("ghost", record.to_json().as_bytes())?;
    let guard = f.acquire("ghost", "src")?;
    // Same name: the stale file was removed and a new, held one published in its place.
    assert_eq!(guard.path(), stale);
    assert!(guard.record().started_at() != STARTED);
    assert_eq!(
        LockRecord::from_json(&fs::read(&stale)?)?,
        guard.record().clone()
    );
    Ok(())
}

#[test]
fn kill_esrch_reclaims_an_original_lock_but_a_live_pid_keeps_it_and_conflicts() -> TestResult {
    let f = fixture()?;
    let dead = write_dead_original_lock(&f, "dead", "src")?;
    let alive_json = original_record("alive", &[f.path("docs")], std::process::id());
    let alive = f.write_lock_file("alive", alive_json.as_bytes())?;

    let listing = f.locks.list_locks()?;
    assert_eq!(listing.reclaimed(), std::slice::from_ref(&dead));
    assert!(!dead.exists());
    assert_eq!(listing.locks().len(), 1);
    assert_eq!(listing.locks()[0].path(), alive);
    assert_eq!(listing.locks()[0].liveness(), Liveness::Pid);

    let conflict = expect_conflict(f.acquire("new", "docs/x"));
    assert_eq!(conflict.lock_path(), alive);
    assert!(conflict.is_held_by_this_process());
    assert_eq!(fs::read(&alive)?, alive_json.as_bytes(), "kept as it was");
    // The dead one's scope is free.
    f.acquire("new", "src")?.release()?;
    Ok(())
}
