//! Edges of the protocol (`src/protocol.rs`) that only show in what an acquire decides first:
//! each test here fails on a plausible wrong version of a line that every other test survives
//! (found by `cargo xtask mutants`).

use std::fs;

use scope_lock::testing::{TestResult, expect_conflict, expect_failure, fixture};
use scope_lock::{ConflictRule, ErrorKind, LockRecord, LockRequest};

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
            .try_acquire(&LockRequest::new("mine").scope([format!("{resolved}/lib.rs")])),
    );
    assert_eq!(conflict.lock_path(), path, "{conflict}");
    match conflict.rule() {
        ConflictRule::Overlap { theirs, .. } => assert_eq!(*theirs, resolved, "{conflict}"),
        other => panic!("not an overlap: {other:?}"),
    }
    Ok(())
}
