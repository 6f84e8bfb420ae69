//! BUG-423, in-process: a lock is an open, exclusively flocked descriptor owned by its guard,
//! from the moment `try_acquire` returns until the guard is released or dropped. Probes use
//! std's `File::try_lock` (flock) on a separate open of the lock file, which is a different
//! open file description and so conflicts even within this process.

// The probes check the library from outside, so they flock on their own.
#![allow(clippy::disallowed_methods)]

use std::error::Error;
use std::fs::{self, File, TryLockError};
use std::os::unix::fs::MetadataExt;
use std::sync::Barrier;
use std::thread;

use scope_lock::testing::{Fixture, TestResult, assert_held, fixture, flock_is_held};
use scope_lock::{Liveness, LockManager, LockRecord, LockRequest, ScopeGuard};

/// Acquires `src`, opens a witness of its lock file (refused the flock while the guard lives),
/// ends the guard with `end` (called `how` in messages), and checks that the lock file is gone
/// and the witness now gets the flock. Returns the witness, which still holds that flock.
fn ending_the_guard_removes_the_file_and_the_flock(
    f: &Fixture,
    how: &str,
    end: impl FnOnce(ScopeGuard) -> TestResult,
) -> Result<File, Box<dyn Error>> {
    let guard = f.acquire("holder", "src")?;
    let path = guard.path().to_path_buf();
    // Opened while held: after the guard ends this descriptor still reaches the (unlinked) inode.
    let witness = File::open(&path)?;
    assert!(matches!(witness.try_lock(), Err(TryLockError::WouldBlock)));
    end(guard)?;
    assert!(!path.exists(), "{how} left the lock file behind");
    witness
        .try_lock()
        .map_err(|err| format!("the flock outlived {how}: {err}"))?;
    Ok(witness)
}

#[test]
fn a_live_guards_lock_file_cannot_be_flocked_through_another_open_file_description() -> TestResult {
    let f = fixture()?;
    let guard = f.acquire("holder", "src")?;
    for attempt in 0..20 {
        let probe = File::open(guard.path())?;
        assert!(
            matches!(probe.try_lock(), Err(TryLockError::WouldBlock)),
            "attempt {attempt}: the lock file is not flocked while its guard lives"
        );
        // A shared lock is refused just the same.
        assert!(
            matches!(probe.try_lock_shared(), Err(TryLockError::WouldBlock)),
            "attempt {attempt}: a shared flock was granted"
        );
    }
    guard.release()?;
    Ok(())
}

#[test]
fn the_flock_stays_held_across_other_acquires_scans_and_listings() -> TestResult {
    let f = fixture()?;
    let guard = f.acquire("holder", "src")?;
    let path = guard.path().to_path_buf();
    let inode = fs::metadata(&path)?.ino();
    assert_held(&path, "right after acquire")?;

    // Each of these opens, probes and closes the holder's lock file: with fcntl-style locks
    // any close would drop the holder's lock.
    f.acquire("other", "docs")?.release()?;
    assert_held(&path, "after an unrelated acquire and release")?;

    let refused = f.acquire("rival", "src/inner");
    assert!(refused.is_err(), "an overlapping acquire got in");
    assert_held(&path, "after a refused overlapping acquire")?;

    let conflict = f.locks.find_conflict(&f.request("asker", "src"))?;
    assert!(conflict.is_some());
    assert_held(&path, "after find_conflict")?;

    for round in 0..5 {
        let listing = f.locks.list_locks()?;
        assert_eq!(listing.locks().len(), 1, "round {round}");
        assert!(listing.reclaimed().is_empty(), "round {round}: {listing:?}");
        assert_held(&path, "after list_locks")?;
    }

    // A scan that reclaims a stale lock next to ours.
    let stale = LockRecord::new("ghost", vec![f.path("x")], 1, "t").with_flock_liveness();
    let stale_path = f.locks.running_dir().join("ghost.lock");
    fs::write(&stale_path, stale.to_json())?;
    let listing = f.locks.list_locks()?;
    assert_eq!(listing.reclaimed(), [stale_path]);
    assert_held(&path, "after a scan that reclaimed a stale lock")?;

    // A second manager on the same directory sees it the same way.
    let other_manager = LockManager::new(f.loops_dir());
    assert_eq!(other_manager.list_locks()?.locks().len(), 1);
    assert_held(&path, "after another manager's scan")?;

    assert_eq!(
        fs::metadata(&path)?.ino(),
        inode,
        "the lock file was replaced"
    );
    guard.release()?;
    Ok(())
}

#[test]
fn the_flock_stays_held_while_other_threads_scan_and_acquire_concurrently() -> TestResult {
    const SCANNERS: usize = 4;
    const ROUNDS: usize = 25;
    let f = fixture()?;
    let guard = f.acquire("holder", "src")?;
    let path = guard.path().to_path_buf();
    let barrier = Barrier::new(SCANNERS + 1);
    let outcome: Result<Vec<String>, String> = thread::scope(|s| {
        let scanners: Vec<_> = (0..SCANNERS)
            .map(|t| {
                let (f, barrier) = (&f, &barrier);
                s.spawn(move || {
                    let mut failures = Vec::new();
                    barrier.wait();
                    for round in 0..ROUNDS {
                        if let Err(err) = f.locks.list_locks() {
                            failures.push(format!("list_locks: {err}"));
                        }
                        match f.acquire(&format!("t{t}"), &format!("area-{t}-{round}")) {
                            Ok(g) => drop(g),
                            Err(err) => failures.push(format!("acquire: {err}")),
                        }
                        if f.acquire(&format!("rival{t}"), "src").is_ok() {
                            failures.push("a rival acquired the held scope".into());
                        }
                    }
                    failures
                })
            })
            .collect();
        barrier.wait();
        let mut probes = Vec::new();
        for _ in 0..ROUNDS * 2 {
            probes.push(flock_is_held(&path).map_err(|e| e.to_string()));
        }
        let mut failures: Vec<String> = scanners
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec!["a thread panicked".into()])
            })
            .collect();
        for probe in probes {
            match probe {
                Ok(true) => {}
                Ok(false) => failures.push("a probe got the holder's flock".into()),
                Err(err) => return Err(err),
            }
        }
        Ok(failures)
    });
    let failures = outcome?;
    assert!(failures.is_empty(), "{failures:#?}");
    assert_held(&path, "after the concurrent scans")?;
    guard.release()?;
    Ok(())
}

#[test]
fn a_probe_from_another_thread_sees_the_lock_held() -> TestResult {
    let f = fixture()?;
    let guard = f.acquire("holder", "src")?;
    let path = guard.path().to_path_buf();
    let held = thread::spawn(move || flock_is_held(&path).map_err(|e| e.to_string()))
        .join()
        .map_err(|_| "the probing thread panicked")??;
    assert!(held);
    drop(guard);
    Ok(())
}

#[test]
fn release_removes_the_lock_file_and_ends_the_flock() -> TestResult {
    let f = fixture()?;
    ending_the_guard_removes_the_file_and_the_flock(&f, "release", |guard| {
        guard.release()?;
        Ok(())
    })?;
    Ok(())
}

#[test]
fn dropping_the_guard_removes_the_lock_file_and_ends_the_flock() -> TestResult {
    let f = fixture()?;
    let _witness = ending_the_guard_removes_the_file_and_the_flock(&f, "drop", |guard| {
        drop(guard);
        Ok(())
    })?;
    // And the scope is free.
    f.acquire("next", "src")?.release()?;
    Ok(())
}

#[test]
fn the_lock_file_is_complete_json_the_moment_try_acquire_returns() -> TestResult {
    let f = fixture()?;
    for round in 0..30 {
        let guard = f.acquire(&format!("quick-{round}"), &format!("area-{round}"))?;
        // Read before anything else happens.
        let bytes = fs::read(guard.path())?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|err| format!("round {round}: torn lock file {bytes:?}: {err}"))?;
        assert!(value.is_object(), "round {round}: {value}");
        let record = LockRecord::from_json(&bytes)?;
        assert_eq!(&record, guard.record(), "round {round}");
        assert_eq!(bytes, guard.record().to_json().as_bytes(), "round {round}");
        assert!(record.is_flock_liveness(), "round {round}");
        assert_held(guard.path(), "the moment try_acquire returned")?;
        guard.release()?;
    }
    Ok(())
}

#[test]
fn the_guards_record_matches_the_lock_files_bytes_parsed() -> TestResult {
    let f = fixture()?;
    let guard = f.locks.try_acquire(
        &LockRequest::new("reporter")
            .scope([f.path("docs"), f.path("src/../README.md")])
            .instance_id("generated/reporter-20260101T000000")
            .singleton(true),
    )?;
    let parsed = LockRecord::from_json(&fs::read(guard.path())?)?;
    assert_eq!(&parsed, guard.record());
    assert_eq!(parsed.loop_name(), "reporter");
    assert_eq!(parsed.scope(), [f.path("docs"), f.path("README.md")]);
    assert_eq!(parsed.pid(), std::process::id());
    assert!(parsed.singleton());
    assert!(parsed.is_flock_liveness());

    let listing = f.locks.list_locks()?;
    assert_eq!(listing.locks().len(), 1);
    let live = &listing.locks()[0];
    assert_eq!(live.path(), guard.path());
    assert_eq!(live.lock_name(), "generated/reporter-20260101T000000");
    assert_eq!(live.record(), guard.record());
    assert_eq!(live.liveness(), Liveness::Flock);
    guard.release()?;
    Ok(())
}

#[test]
fn each_new_acquire_after_a_release_holds_a_fresh_file_of_its_own() -> TestResult {
    let f = fixture()?;
    for round in 0..10 {
        let guard = f.acquire("cycler", "src")?;
        assert_held(guard.path(), "after a re-acquire")?;
        assert_eq!(
            LockRecord::from_json(&fs::read(guard.path())?)?,
            guard.record().clone(),
            "round {round}"
        );
        let path = guard.path().to_path_buf();
        if round % 2 == 0 {
            guard.release()?;
        } else {
            drop(guard);
        }
        assert!(!path.exists(), "round {round}");
    }
    Ok(())
}

// This binary never spawns processes, and that matters here: a child being spawned by another
// thread holds a copy of every descriptor until it execs, so right after a close the flock of
// a file that is still linked could look held for an instant.
#[test]
fn a_failed_release_still_ends_the_hold_and_the_next_acquirer_reclaims_it() -> TestResult {
    let f = fixture()?;
    let guard = f.acquire("loop", "src")?;
    let path = guard.path().to_owned();
    // Sabotage the directory sentinel so that release cannot take it.
    let sentinel = f.running().join(".acquire.lock");
    fs::remove_file(&sentinel)?;
    fs::create_dir(&sentinel)?;

    let err = match guard.release() {
        Ok(()) => panic!("release did not report the unusable sentinel"),
        Err(err) => err,
    };
    assert_eq!(err.path(), Some(sentinel.as_path()), "{err}");
    // The error is reported, but the hold is over all the same: nothing is left flocked.
    assert!(
        path.exists(),
        "the sabotaged release should have left its file"
    );
    assert!(
        !flock_is_held(&path)?,
        "a failed release kept the lock held"
    );

    fs::remove_dir(&sentinel)?;
    let next = f.acquire("loop", "src")?;
    assert_held(
        &path,
        "by the next acquirer, after it reclaimed the stale file",
    )?;
    next.release()?;
    assert!(!path.exists());
    Ok(())
}
