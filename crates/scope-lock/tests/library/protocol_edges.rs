//! Edges of the protocol (`src/protocol/`) that only show in what an acquire decides first:
//! each test here fails on a plausible wrong version of a line that every other test survives
//! (found by `cargo xtask mutants`).

use std::fs;

use scope_lock::testing::{TestResult, expect_conflict, expect_failure, fixture};
use scope_lock::{ConflictRule, ErrorKind, LockRecord, LockRequest, ProblemKind};

/// A lock file's name that cannot be a lock file is an error on the first attempt, before the
/// scope is looked at: a conflict would tell the caller to wait (or retry), only to get the
/// error once the holder is gone.
#[test]
fn a_target_name_that_cannot_be_a_lock_file_is_an_error_even_while_the_scope_is_held() -> TestResult
{
    let f = fixture()?;
    let holder = f.acquire("holder", "src")?;

    // Taken by a directory.
    let target = f.running().join("dir.lock");
    fs::create_dir(&target)?;
    let err = expect_failure(f.acquire("dir", "src"));
    assert_eq!(err.kind(), ErrorKind::NotALockFile, "{err}");
    assert_eq!(err.path(), Some(target.as_path()), "{err}");

    // Below a regular file, so it cannot even be looked at: the error names the file.
    let file = f.running().join("file");
    fs::write(&file, "not a directory")?;
    let err = expect_failure(f.acquire("file/x", "src"));
    assert_eq!(err.kind(), ErrorKind::NotALockFile, "{err}");
    assert_eq!(err.path(), Some(file.as_path()), "{err}");

    holder.release()?;
    Ok(())
}

/// A legacy lock of the original's may hold relative scope entries; they are compared as the
/// original resolves them, against the current directory.
#[test]
fn a_relative_scope_entry_of_an_original_lock_blocks_the_path_it_resolves_to() -> TestResult {
    let f = fixture()?;
    // Alive and not our ancestor: a lock of another process.
    let record = LockRecord::new("legacy", vec!["src".into()], 1, "2026-01-01T00:00:00+00:00");
    let path = f.write_lock_file("legacy", record.to_json().as_bytes())?;
    let resolved = scope_lock::normalize_path("src")?;

    let conflict = expect_conflict(
        f.locks
            .try_acquire(&LockRequest::new("mine").scope([resolved.join("lib.rs")])),
    );
    assert_eq!(conflict.lock_path(), path, "{conflict}");
    match conflict.rule() {
        ConflictRule::Overlap { theirs, .. } => assert_eq!(*theirs, resolved, "{conflict}"),
        other => panic!("not an overlap: {other:?}"),
    }
    Ok(())
}

/// Sets the modification time of `path` to `age` ago, as a file left alone that long has it.
fn age(path: &std::path::Path, age: std::time::Duration) -> TestResult {
    let when = std::time::SystemTime::now() - age;
    fs::OpenOptions::new()
        .append(true)
        .open(path)?
        .set_modified(when)?;
    Ok(())
}

/// A `*.lock` file with no flock, no record and no pid may be the original's lock caught half
/// written, so it blocks while it is fresh, and says what the user can do.
#[test]
fn an_unproven_garbage_lock_file_blocks_while_younger_than_the_grace() -> TestResult {
    use std::time::Duration;
    let f = fixture()?;
    let garbage = f.write_lock_file("garbage", b"\x00\x01 not json")?;
    let conflict = expect_conflict(f.acquire("next", "src"));
    assert!(
        matches!(conflict.rule(), ConflictRule::Unreadable { .. }),
        "{conflict}"
    );
    let message = conflict.to_string();
    assert!(
        message.contains("`scope-lock break garbage --force`") && message.contains("a minute"),
        "{message}"
    );
    // Older than the default grace, but not than the one this manager was given.
    age(&garbage, Duration::from_secs(5 * 60))?;
    let patient = f
        .locks
        .clone()
        .with_invalid_grace(Duration::from_secs(10 * 60));
    let conflict = expect_conflict(patient.try_acquire(&f.request("next", "src")));
    assert_eq!(conflict.lock_path(), garbage.as_path(), "{conflict}");
    assert!(garbage.exists());
    Ok(())
}

/// Not forever: once left unchanged for the grace (a minute by default), scans take such a
/// file for garbage and move it aside (never delete it), and the scope is free again.
#[test]
fn an_unproven_garbage_lock_file_older_than_the_grace_is_moved_aside() -> TestResult {
    let f = fixture()?;
    let garbage = f.write_lock_file("garbage", b"\x00\x01 not json")?;
    age(&garbage, std::time::Duration::from_secs(5 * 60))?;
    let listing = f.locks.list_locks()?;
    let [problem] = listing.problems() else {
        panic!("{:?}", listing.problems());
    };
    let ProblemKind::MovedAside {
        moved_to: Some(moved_to),
        reason,
    } = problem.kind()
    else {
        panic!("a garbage file unchanged for 5 minutes was not moved aside: {problem}");
    };
    assert!(reason.contains("unchanged for 300s"), "{problem}");
    assert!(!problem.blocks(), "{problem}");
    assert!(!garbage.exists(), "{problem}");
    assert_eq!(fs::read(moved_to)?, b"\x00\x01 not json");
    f.acquire("next", "src")?.release()?;
    Ok(())
}

/// A garbage file whose modification time is in the future is not taken for old.
#[test]
fn an_unproven_lock_file_from_the_future_still_blocks() -> TestResult {
    let f = fixture()?;
    let garbage = f.write_lock_file("garbage", b"{")?;
    fs::OpenOptions::new()
        .append(true)
        .open(&garbage)?
        .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(3600))?;
    let zero = f
        .locks
        .clone()
        .with_invalid_grace(std::time::Duration::ZERO);
    let conflict = expect_conflict(zero.try_acquire(&f.request("next", "src")));
    assert_eq!(conflict.lock_path(), garbage.as_path(), "{conflict}");
    Ok(())
}

/// `set_aside_invalid` moves an unflocked file whose record cannot be read at once, whatever
/// its age, and refuses a held lock or a valid record, changing nothing.
#[test]
fn set_aside_invalid_moves_only_an_unheld_file_with_an_invalid_record() -> TestResult {
    let f = fixture()?;
    let garbage = f.write_lock_file("garbage", b"{\"pid\": ")?;
    let moved = f.locks.set_aside_invalid(&LockRequest::new("garbage"))?;
    assert!(!garbage.exists() && moved.exists(), "{moved:?}");
    assert!(
        moved
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".garbage.lock.invalid-")),
        "{moved:?}"
    );

    let held = f.acquire("held", "src")?;
    let err = f
        .locks
        .set_aside_invalid(&LockRequest::new("held"))
        .err()
        .ok_or("a held lock was moved aside")?;
    assert_eq!(err.kind(), ErrorKind::NotInvalid, "{err}");
    assert!(held.path().exists());
    held.release()?;

    // The original's live lock (pid 1 is alive): a valid record, whoever holds it.
    let record = LockRecord::new("valid", vec![f.path("docs")], 1, "t").to_json();
    let valid = f.write_lock_file("valid", record.as_bytes())?;
    let err = f
        .locks
        .set_aside_invalid(&LockRequest::new("valid"))
        .err()
        .ok_or("a valid record was moved aside")?;
    assert_eq!(err.kind(), ErrorKind::NotInvalid, "{err}");
    assert!(valid.exists());

    let err = f
        .locks
        .set_aside_invalid(&LockRequest::new("missing"))
        .err()
        .ok_or("a missing file was moved aside")?;
    assert_eq!(
        err.io_error().map(std::io::Error::kind),
        Some(std::io::ErrorKind::NotFound)
    );
    Ok(())
}
