//! L6: `find_conflict`, `find_scope_conflict` and `list_locks`.

use std::path::PathBuf;

use scope_lock::testing::{TestResult, expect_conflict, fixture};
use scope_lock::{AcquireError, ConflictRule, Liveness, LockRecord, LockRequest};

use super::assert_overlap;

#[test]
fn find_conflict_returns_the_overlapping_holder_and_none_for_a_disjoint_scope() -> TestResult {
    let f = fixture()?;
    let holder = f.acquire("holder", "src")?;
    let overlapping = f.request("asker", "src/lib.rs");
    let conflict = f
        .locks
        .find_conflict(&overlapping)?
        .ok_or("expected a conflict for an overlapping scope")?;
    assert_eq!(conflict.lock_path(), holder.path());
    assert_eq!(conflict.holder(), Some(holder.record()));
    assert_overlap(&f, &conflict, "src/lib.rs", "src");
    let disjoint = f.request("asker", "docs");
    assert_eq!(f.locks.find_conflict(&disjoint)?, None);
    // Asking takes nothing.
    assert!(!f.locks.lock_path(&disjoint).exists());
    assert_eq!(f.lock_files()?, [holder.path().to_path_buf()]);
    Ok(())
}

/// "Is this scope free?" asks about the scope alone: a live lock of the same name over a
/// disjoint scope, which `find_conflict` must report (the file cannot hold two records), is no
/// answer to it; an overlap, and a singleton of the same loop, are.
#[test]
fn find_scope_conflict_leaves_out_the_lock_file_name() -> TestResult {
    let f = fixture()?;
    let holder = f
        .locks
        .try_acquire(&f.request("nightly", "src").singleton(true))?;
    let same_name = f.request("nightly", "docs");
    let taken = f
        .locks
        .find_conflict(&same_name)?
        .ok_or("the name is taken")?;
    assert_eq!(taken.rule(), &ConflictRule::SameName);
    assert_eq!(f.locks.find_scope_conflict(&same_name)?, None);

    let overlap = f
        .locks
        .find_scope_conflict(&f.request("nightly", "src/lib.rs"))?;
    assert_eq!(overlap.map(|c| c.rule().as_str()), Some("overlap"));
    let singleton = f
        .locks
        .find_scope_conflict(&same_name.clone().singleton(true))?
        .ok_or("a live singleton of the same loop")?;
    assert_eq!(singleton.rule(), &ConflictRule::Singleton);
    assert_eq!(singleton.lock_path(), holder.path());
    // The loop name is not looked at unless the request is a singleton.
    let nameless = LockRequest::new("").scope([f.path("docs")]);
    assert_eq!(f.locks.find_scope_conflict(&nameless)?, None);
    let err = f.locks.find_scope_conflict(&nameless.singleton(true));
    assert_eq!(
        err.map_err(|e| e.kind()),
        Err(scope_lock::ErrorKind::InvalidName)
    );
    holder.release()?;
    Ok(())
}

#[test]
fn list_locks_returns_every_live_holder_including_nested_stems() -> TestResult {
    let f = fixture()?;
    let plain = f.acquire("plain", "a")?;
    let nested = f.locks.try_acquire(
        &f.request("gen", "b")
            .instance_id("generated/foo-20260101T000000"),
    )?;
    let deep = f
        .locks
        .try_acquire(&f.request("deep", "c").instance_id("x/y/z/deep"))?;
    let listing = f.locks.list_locks()?;
    assert!(listing.problems().is_empty(), "{listing:?}");
    assert!(listing.reclaimed().is_empty(), "{listing:?}");
    let mut seen: Vec<(String, PathBuf, LockRecord, Liveness)> = listing
        .locks()
        .iter()
        .map(|l| {
            (
                l.lock_name().to_owned(),
                l.path().to_path_buf(),
                l.record().clone(),
                l.liveness(),
            )
        })
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (
            "generated/foo-20260101T000000".to_owned(),
            nested.path().to_path_buf(),
            nested.record().clone(),
            Liveness::Flock,
        ),
        (
            "plain".to_owned(),
            plain.path().to_path_buf(),
            plain.record().clone(),
            Liveness::Flock,
        ),
        (
            "x/y/z/deep".to_owned(),
            deep.path().to_path_buf(),
            deep.record().clone(),
            Liveness::Flock,
        ),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(seen, expected);
    Ok(())
}

#[test]
fn a_nested_holder_blocks_another_nested_holder_of_an_overlapping_scope() -> TestResult {
    // BUG-1788: the original's flat glob missed nested names, so both holders of `.` got in.
    let f = fixture()?;
    let first = f.locks.try_acquire(
        &f.request("gen", "")
            .instance_id("generated/gen-20260101T000000"),
    )?;
    let conflict = expect_conflict(
        f.locks.try_acquire(
            &f.request("gen", "")
                .instance_id("generated/gen-20260101T000001"),
        ),
    );
    assert_eq!(conflict.lock_path(), first.path());
    assert_eq!(conflict.holder(), Some(first.record()));
    Ok(())
}

#[test]
fn a_lock_nested_32_directories_deep_is_listed_and_blocks_an_overlapping_acquire() -> TestResult {
    let f = fixture()?;
    let deep = f.locks.try_acquire(
        &f.request("deep", "src")
            .instance_id(format!("{}deep", "d/".repeat(32))),
    )?;
    let conflict = expect_conflict(f.acquire("plain", "src"));
    assert_eq!(conflict.lock_path(), deep.path());
    let listing = f.locks.list_locks()?;
    assert_eq!(listing.locks().len(), 1);
    assert_eq!(listing.locks()[0].path(), deep.path());
    Ok(())
}

#[test]
fn a_name_nested_deeper_than_scans_look_is_refused() -> TestResult {
    // A lock no scan can see would let a second holder of the same scope in, so a name one
    // directory deeper than the 32 that scans descend is refused up front.
    let f = fixture()?;
    let deep_id = format!("{}deep", "d/".repeat(33));
    let result = f
        .locks
        .try_acquire(&f.request("deep", "src").instance_id(deep_id.clone()));
    match result {
        Err(AcquireError::Failed(err)) => {
            assert_eq!(err.kind(), scope_lock::ErrorKind::InvalidName, "{err}");
            assert!(err.to_string().contains(&deep_id), "{err}");
        }
        other => panic!("a name too deep for scans was not refused: {other:?}"),
    }
    assert!(
        !f.locks.running_dir().join("d").exists(),
        "nothing may be created for it"
    );
    Ok(())
}
