//! Edges of the protocol (`src/protocol.rs`) that only show in what an acquire decides first:
//! each test here fails on a plausible wrong version of a line that every other test survives
//! (found by `cargo xtask mutants`).

mod common;

use std::fs;

use common::{TestResult, expect_failure, fixture};
use scope_lock::ErrorKind;

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

    // Below a regular file, so it cannot even be looked at.
    fs::write(f.running().join("file"), "not a directory")?;
    let target = f.running().join("file/x.lock");
    let err = expect_failure(f.acquire("file/x", "src"));
    assert_eq!(err.path(), Some(target.as_path()), "{err}");

    holder.release()?;
    Ok(())
}
