//! Fencing tokens on the local backend (issues/SL-28.md): every acquisition in a lock
//! directory gets a number above every earlier one's, from any process, across a holder's
//! death and the reclaim of its lock; a resource that remembers the largest token it has seen
//! refuses a late write of a holder whose lock ended.

use std::fs;
use std::path::Path;

use crate::bug_423::fleet;
use crate::support::{Workers, project};
use regression::locker::Impl;
use scope_lock::testing::TestResult;
use scope_lock::{LockManager, LockRecord};

/// A resource guarded by fencing tokens, as a storage service would keep one: it remembers
/// the largest token it has accepted and refuses a write that carries a smaller one.
struct FencedResource {
    largest: u64,
    writes: Vec<(u64, &'static str)>,
}

impl FencedResource {
    fn new() -> Self {
        Self {
            largest: 0,
            writes: Vec::new(),
        }
    }

    fn write(&mut self, token: u64, what: &'static str) -> Result<(), String> {
        if token < self.largest {
            return Err(format!(
                "token {token} refused: {} was seen already",
                self.largest
            ));
        }
        self.largest = token;
        self.writes.push((token, what));
        Ok(())
    }
}

/// The token in the lock file at `path`, as any reader of the directory sees it.
fn token_in(path: &Path) -> Result<u64, Box<dyn std::error::Error>> {
    let record = LockRecord::from_json(&fs::read(path)?)?;
    Ok(record.token().ok_or("the lock file has no token")?)
}

/// 8 processes x 2,500 holds of one scope (the fleet `bug_423` runs): each hold's token, as
/// the holder wrote it in the witness log while it held the lock, is larger than every token
/// before it.
#[test]
fn tokens_grow_with_every_hold_of_many_processes() {
    let report = fleet();
    assert_eq!(
        report.tokened_holds,
        report.witnessed_holds,
        "some holds had no token: {}",
        report.to_json()
    );
    assert!(report.tokened_holds > 0, "{}", report.to_json());
    assert_eq!(
        report.token_regressions,
        0,
        "a hold's token was not above every earlier hold's: {}",
        report.to_json()
    );
}

/// Tokens grow across scopes, names and managers of one directory, not per scope.
#[test]
fn tokens_grow_across_scopes_names_and_managers() -> TestResult {
    let (f, _) = project()?;
    let other_manager = LockManager::new(f.loops_dir());
    let mut tokens = Vec::new();
    for round in 0..5 {
        let a = f.acquire(&format!("a{round}"), "src")?;
        let b = other_manager.try_acquire(&f.request(&format!("b{round}"), "docs"))?;
        assert_eq!(token_in(a.path())?, a.token());
        assert_eq!(b.record().token(), Some(b.token()));
        tokens.extend([a.token(), b.token()]);
    }
    assert!(
        tokens.windows(2).all(|pair| pair[0] < pair[1]),
        "{tokens:?}"
    );
    Ok(())
}

/// A holder killed while it holds: its lock is reclaimed by the next acquirer, whose token is
/// above the dead holder's. The counter is not in the lock files, so reclaiming them (and
/// cleaning the directory) loses nothing.
#[test]
fn a_killed_holders_token_stays_below_the_next_after_reclaim() -> TestResult {
    let (f, scope) = project()?;
    let mut holder = f.spawn_attempt(Impl::Fixed, "victim", &scope, &[])?;
    let said = holder.go()?;
    let path = said
        .strip_prefix("held ")
        .ok_or_else(|| format!("the holder did not get the scope: {said}"))?
        .to_owned();
    let dead_token = token_in(Path::new(&path))?;
    holder.kill()?;

    // The stale file is still there, with the dead holder's record; the scan reclaims it.
    let listing = f.locks.list_locks()?;
    assert_eq!(listing.reclaimed(), [Path::new(&path)]);
    let next = f.acquire("victim", "src")?;
    assert!(
        next.token() > dead_token,
        "token {} after the dead holder's {dead_token}",
        next.token()
    );
    Ok(())
}

/// A holder whose lock ended while it still meant to write (killed here, and its write
/// replayed as a message still in flight would arrive) is refused by a fenced resource once
/// the next holder has written with its own token.
#[test]
fn a_fenced_resource_refuses_a_holder_whose_lock_ended() -> TestResult {
    let (f, scope) = project()?;
    let mut resource = FencedResource::new();
    let mut first = f.spawn_attempt(Impl::Fixed, "writer", &scope, &[])?;
    let said = first.go()?;
    let path = said.strip_prefix("held ").ok_or(said.clone())?.to_owned();
    let stale_token = token_in(Path::new(&path))?;
    resource.write(stale_token, "first, while it held")?;
    first.kill()?;

    let second = f.acquire("writer", "src")?;
    resource.write(second.token(), "second")?;
    let late = resource.write(stale_token, "first, late");
    assert!(late.is_err(), "the stale token was accepted: {late:?}");
    assert_eq!(
        resource.writes,
        [
            (stale_token, "first, while it held"),
            (second.token(), "second")
        ]
    );
    Ok(())
}
