//! L2, L3: which scopes conflict; then the conflict itself: its rule, its holder, the same process.

use std::error::Error;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use scope_lock::testing::{Fixture, TestResult, expect_conflict, fixture};
use scope_lock::{Conflict, ConflictRule, LockRecord, LockRequest, ScopeGuard, normalize_path};

use super::singletons::second_singleton_refused;
use super::{assert_overlap, original_record};

/// L2: `holder` acquires the project path `held`, then `asker` asking for `asked` gets a conflict
/// for the overlap of exactly those two paths. Returns the holder's guard and the conflict.
fn overlap_refused(
    f: &Fixture,
    (holder, held): (&str, &str),
    (asker, asked): (&str, &str),
) -> Result<(ScopeGuard, Conflict), Box<dyn Error>> {
    let guard = f.acquire(holder, held)?;
    let conflict = expect_conflict(f.acquire(asker, asked));
    assert_overlap(f, &conflict, asked, held);
    Ok((guard, conflict))
}

#[test]
fn the_same_scope_conflicts() -> TestResult {
    let f = fixture()?;
    let (holder, conflict) = overlap_refused(&f, ("first", "src"), ("second", "src"))?;
    assert_eq!(conflict.holder(), Some(holder.record()));
    assert!(!f.running().join("second.lock").exists());
    Ok(())
}

#[test]
fn parent_then_child_conflicts() -> TestResult {
    let f = fixture()?;
    let (_parent, _) = overlap_refused(&f, ("parent", "src"), ("child", "src/module/file.rs"))?;
    Ok(())
}

#[test]
fn child_then_parent_conflicts() -> TestResult {
    let f = fixture()?;
    let (_child, _) = overlap_refused(&f, ("child", "src/module"), ("parent", "src"))?;
    Ok(())
}

#[test]
fn siblings_both_acquire() -> TestResult {
    let f = fixture()?;
    let src = f.acquire("src", "src/")?;
    let tests = f.acquire("tests", "tests/")?;
    assert_eq!(f.lock_files()?.len(), 2);
    src.release()?;
    tests.release()?;
    Ok(())
}

#[test]
fn an_empty_scope_means_the_whole_project_so_two_empty_scopes_conflict() -> TestResult {
    let f = fixture()?;
    let whole = normalize_path(".")?.to_string_lossy().into_owned();
    let first = f.locks.try_acquire(&LockRequest::new("one"))?;
    assert_eq!(first.record().scope(), std::slice::from_ref(&whole));
    let conflict = expect_conflict(f.locks.try_acquire(&LockRequest::new("two")));
    assert_eq!(
        conflict.rule(),
        &ConflictRule::Overlap {
            ours: whole.clone(),
            theirs: whole.clone(),
        }
    );
    // Anything inside the project conflicts with it too.
    let inside = Path::new(&whole).join("some/nested/file");
    let conflict = expect_conflict(
        f.locks
            .try_acquire(&LockRequest::new("three").scope([inside])),
    );
    assert_eq!(conflict.holder(), Some(first.record()));
    Ok(())
}

#[test]
fn an_overlapping_acquire_from_the_same_process_is_an_immediate_conflict_not_a_hang() -> TestResult
{
    let f = fixture()?;
    let holder = f.acquire("mine", "src")?;
    let result = f.try_acquire_without_hanging(
        "an overlapping acquire from the holder's own process",
        f.request("mine-too", "src/deeper"),
    )?;
    let conflict = expect_conflict(result);
    assert!(conflict.is_held_by_this_process());
    assert_eq!(conflict.holder(), Some(holder.record()));
    assert_eq!(
        conflict.holder().map(LockRecord::pid),
        Some(std::process::id())
    );
    assert!(conflict.to_string().contains("this process"), "{conflict}");
    Ok(())
}

#[test]
fn an_overlap_conflict_names_our_path_and_the_holders_path_that_overlap() -> TestResult {
    let f = fixture()?;
    let holder = f.acquire_paths("holder", &["alpha", "beta"])?;
    let conflict = expect_conflict(f.acquire_paths("asker", &["gamma", "beta/inner"]));
    assert_overlap(&f, &conflict, "beta/inner", "beta");
    assert_eq!(conflict.lock_path(), holder.path());
    let holder_record = conflict
        .holder()
        .ok_or("an overlap conflict has a holder")?;
    assert_eq!(holder_record.loop_name(), "holder");
    assert_eq!(holder_record.scope(), [f.path("alpha"), f.path("beta")]);
    Ok(())
}

#[test]
fn a_singleton_conflict_carries_the_singleton_rule_and_the_holder() -> TestResult {
    let f = fixture()?;
    let (holder, conflict) = second_singleton_refused(&f, "a", "b")?;
    assert_eq!(conflict.rule(), &ConflictRule::Singleton);
    assert_eq!(conflict.holder(), Some(holder.record()));
    assert_eq!(conflict.lock_path(), holder.path());
    Ok(())
}

#[test]
fn an_instance_id_held_live_is_a_same_name_conflict_and_its_file_is_not_overwritten() -> TestResult
{
    let f = fixture()?;
    let holder = f
        .locks
        .try_acquire(&f.request("one", "a").instance_id("shared-id"))?;
    let before = fs::read(holder.path())?;
    let inode = fs::metadata(holder.path())?.ino();

    // Disjoint scope, different loop, same lock name.
    let conflict = expect_conflict(
        f.locks
            .try_acquire(&f.request("two", "b").instance_id("shared-id")),
    );
    assert_eq!(conflict.rule(), &ConflictRule::SameName);
    assert_eq!(conflict.holder(), Some(holder.record()));
    assert_eq!(conflict.lock_path(), holder.path());
    assert!(conflict.is_held_by_this_process());

    assert_eq!(
        fs::read(holder.path())?,
        before,
        "the holder's file changed"
    );
    assert_eq!(fs::metadata(holder.path())?.ino(), inode);
    holder.release()?;
    Ok(())
}

#[test]
fn an_original_format_live_lock_at_our_name_is_a_same_name_conflict_and_is_not_overwritten()
-> TestResult {
    let f = fixture()?;
    let json = original_record("same", &[f.path("a")], std::process::id());
    let path = f.write_lock_file("same", json.as_bytes())?;
    let conflict = expect_conflict(f.acquire("same", "b"));
    assert_eq!(conflict.rule(), &ConflictRule::SameName);
    assert_eq!(conflict.lock_path(), path);
    assert_eq!(fs::read(&path)?, json.as_bytes());
    Ok(())
}
