//! S1: singletons.

use std::error::Error;

use scope_lock::testing::{Fixture, TestResult, expect_conflict, fixture};
use scope_lock::{Conflict, ConflictRule, LockRequest, ScopeGuard};

fn singleton_request(f: &Fixture, id: &str, rel: &str, singleton: bool) -> LockRequest {
    f.request("solo", rel).instance_id(id).singleton(singleton)
}

/// S1: the singleton `solo` acquires the project path `held` as `solo-1`, then asks again as
/// `solo-2` for `asked` and is refused. Returns the first guard and the conflict.
pub(super) fn second_singleton_refused(
    f: &Fixture,
    held: &str,
    asked: &str,
) -> Result<(ScopeGuard, Conflict), Box<dyn Error>> {
    let first = f
        .locks
        .try_acquire(&singleton_request(f, "solo-1", held, true))?;
    let conflict = expect_conflict(
        f.locks
            .try_acquire(&singleton_request(f, "solo-2", asked, true)),
    );
    Ok((first, conflict))
}

#[test]
fn two_singletons_of_one_name_with_disjoint_scopes_exclude_each_other() -> TestResult {
    let f = fixture()?;
    let (_first, conflict) = second_singleton_refused(&f, "a", "b")?;
    assert_eq!(conflict.rule(), &ConflictRule::Singleton);
    Ok(())
}

#[test]
fn non_singletons_of_one_name_with_disjoint_scopes_both_acquire() -> TestResult {
    let f = fixture()?;
    let first = f
        .locks
        .try_acquire(&singleton_request(&f, "solo-1", "a", false))?;
    let second = f
        .locks
        .try_acquire(&singleton_request(&f, "solo-2", "b", false))?;
    // A singleton request meets a non-singleton holder: only the scopes matter.
    let third = f
        .locks
        .try_acquire(&singleton_request(&f, "solo-3", "c", true))?;
    first.release()?;
    second.release()?;
    third.release()?;
    Ok(())
}

#[test]
fn singletons_with_overlapping_paths_exclude_each_other() -> TestResult {
    let f = fixture()?;
    let (_first, conflict) = second_singleton_refused(&f, "shared", "shared/sub")?;
    assert!(
        matches!(
            conflict.rule(),
            ConflictRule::Singleton | ConflictRule::Overlap { .. }
        ),
        "{:?}",
        conflict.rule()
    );
    Ok(())
}

#[test]
fn singletons_of_different_names_with_disjoint_scopes_both_acquire() -> TestResult {
    let f = fixture()?;
    let first = f
        .locks
        .try_acquire(&f.request("one", "a").singleton(true))?;
    let second = f
        .locks
        .try_acquire(&f.request("two", "b").singleton(true))?;
    first.release()?;
    second.release()?;
    Ok(())
}
