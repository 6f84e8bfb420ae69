//! X1: files and directories that disappear under a holder.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::sync::Barrier;
use std::thread;

use scope_lock::testing::{DEAD_PID, TestResult, expect_conflict, fixture, flock_is_held};

use super::original_record;

#[test]
fn release_after_someone_deleted_the_lock_file_is_ok() -> TestResult {
    let f = fixture()?;
    let guard = f.acquire("victim", "src")?;
    fs::remove_file(guard.path())?;
    guard.release()?;
    // Dropping such a guard does not panic either.
    let dropped = f.acquire("victim", "src")?;
    fs::remove_file(dropped.path())?;
    drop(dropped);
    assert!(f.lock_files()?.is_empty());
    Ok(())
}

#[test]
fn release_after_the_whole_running_directory_was_deleted_is_ok() -> TestResult {
    let f = fixture()?;
    let guard = f.acquire("victim", "src")?;
    fs::remove_dir_all(f.running())?;
    guard.release()?;
    assert!(
        !f.running().exists(),
        "release must not recreate the directory"
    );
    Ok(())
}

#[test]
fn a_guard_whose_file_was_deleted_and_whose_name_was_reacquired_leaves_the_new_file_alone()
-> TestResult {
    let f = fixture()?;
    let old = f.acquire("name", "src")?;
    let path = old.path().to_path_buf();
    fs::remove_file(&path)?;
    // The old guard still holds a flock, but on an inode no name points to any more.
    let new = f.acquire("name", "docs")?;
    assert_eq!(new.path(), path);
    let new_bytes = fs::read(&path)?;
    let new_inode = fs::metadata(&path)?.ino();

    old.release()?;

    assert!(
        path.exists(),
        "the old guard removed the new holder's lock file"
    );
    assert_eq!(fs::read(&path)?, new_bytes);
    assert_eq!(fs::metadata(&path)?.ino(), new_inode);
    assert!(
        flock_is_held(&path)?,
        "the new holder's flock must still be held"
    );
    let conflict = expect_conflict(f.acquire("third", "docs/x"));
    assert_eq!(conflict.holder(), Some(new.record()));
    new.release()?;
    assert!(!path.exists());
    Ok(())
}

#[test]
fn concurrent_acquires_releases_scans_and_reclaims_never_fail() -> TestResult {
    const THREADS: usize = 6;
    const ROUNDS: usize = 30;
    let f = fixture()?;
    let barrier = Barrier::new(THREADS);
    let failures: Vec<String> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (f, barrier) = (&f, &barrier);
                s.spawn(move || -> Vec<String> {
                    let mut failures = Vec::new();
                    barrier.wait();
                    for round in 0..ROUNDS {
                        // A stale lock of the original's, published atomically (as a complete
                        // file), for any scan to reclaim.
                        let stale = original_record("stale", &[f.path("stale")], DEAD_PID);
                        let tmp = f.running().join(format!(".stale-{t}-{round}.tmp"));
                        let dest = f.running().join(format!("stale-{t}-{round}.lock"));
                        if let Err(err) = fs::create_dir_all(f.running())
                            .and_then(|()| fs::write(&tmp, stale.as_bytes()))
                            .and_then(|()| fs::rename(&tmp, &dest))
                        {
                            failures.push(format!("writing a stale file: {err}"));
                        }
                        match f.acquire(&format!("worker-{t}"), &format!("area-{t}")) {
                            Ok(guard) => {
                                if let Err(err) = guard.release() {
                                    failures.push(format!("release: {err}"));
                                }
                            }
                            Err(err) => failures.push(format!("acquire: {err}")),
                        }
                        match f.locks.list_locks() {
                            Ok(listing) if !listing.problems().is_empty() => {
                                failures.push(format!("problems: {:?}", listing.problems()));
                            }
                            Ok(_) => {}
                            Err(err) => failures.push(format!("list_locks: {err}")),
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec!["a thread panicked".into()])
            })
            .collect()
    });
    assert!(failures.is_empty(), "{failures:#?}");
    // Everything stale was reclaimed by the last scans, and every lock was released.
    let listing = f.locks.list_locks()?;
    assert!(listing.locks().is_empty(), "{listing:?}");
    assert!(f.lock_files()?.is_empty(), "{:?}", f.lock_files()?);
    Ok(())
}
