//! L1: the lock file a hold creates and a release removes.

use scope_lock::testing::{TestResult, fixture};

#[test]
fn acquire_creates_running_stem_lock_and_release_removes_it() -> TestResult {
    let f = fixture()?;
    let request = f.request("demo", "src");
    let expected = f.running().join("demo.lock");
    assert_eq!(f.locks.lock_path(&request), expected);
    assert!(!expected.exists());
    let guard = f.locks.try_acquire(&request)?;
    assert_eq!(guard.path(), expected);
    assert!(expected.is_file());
    guard.release()?;
    assert!(!expected.exists());
    assert!(f.lock_files()?.is_empty());
    Ok(())
}

#[test]
fn dropping_a_guard_removes_its_lock_file() -> TestResult {
    let f = fixture()?;
    let guard = f.acquire("dropped", "src")?;
    let path = guard.path().to_path_buf();
    assert!(path.is_file());
    drop(guard);
    assert!(!path.exists());
    // And the scope is free again.
    f.acquire("next", "src")?.release()?;
    Ok(())
}

#[test]
fn an_instance_id_names_the_lock_file_and_a_nested_one_creates_its_directory() -> TestResult {
    let f = fixture()?;
    let guard = f.locks.try_acquire(
        &f.request("gen", "out")
            .instance_id("generated/foo-20260101T000000"),
    )?;
    let expected = f.running().join("generated/foo-20260101T000000.lock");
    assert_eq!(guard.path(), expected);
    assert!(expected.is_file());
    assert!(!f.running().join("gen.lock").exists());
    guard.release()?;
    assert!(!expected.exists());
    Ok(())
}
