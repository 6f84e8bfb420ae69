//! BUG-1361's acceptance criteria (issues/BUG-1361.md): a waiter that is killed while it waits
//! leaves nothing that blocks the waiters behind it.
//!
//! Against the pre-fix port (`SCOPE_LOCK_IMPL=pre-fix`: a first-come queue of entry files that
//! only their own waiters remove), the killed waiter's entry stays first in the queue and the
//! waiter behind it never gets its turn.

use std::fs;
use std::time::{Duration, Instant};

use crate::support::{Workers, project};
use regression::locker::Impl;
use regression::{record_evidence, soak};
use scope_lock::testing::TestResult;
use serde_json::json;

/// How long each waiter waits. With the fix the survivors get the scope as soon as the holder
/// releases; this bounds the port's run, where they never do. A survivor that slept through
/// the deaths ahead of it would still get the scope, at its deadline (its last attempt finds
/// the dead waiters' tickets stale), so the test also checks that it came well before that.
const WAIT: Duration = Duration::from_secs(20);

#[test]
fn a_sigkilled_waiter_does_not_block_the_waiters_behind_it() -> TestResult {
    let which = Impl::from_env();
    let (f, scope) = project()?;
    let holder = f.spawn_holder(&scope)?;

    // Waiters line up one after another; every other one, the first included, is killed.
    let count: usize = if soak() { 12 } else { 4 };
    let wait_ms = u64::try_from(WAIT.as_millis())?;
    let mut survivors = Vec::new();
    for k in 0..count {
        let port = ["--port", "queue"];
        let mut waiter = f.spawn_waiter(which, &format!("waiter-{k}"), &scope, wait_ms, &port)?;
        let said = waiter.go()?;
        assert!(
            said.starts_with("waiting"),
            "waiter {k} did not wait: {said}"
        );
        if k % 2 == 0 {
            waiter.kill()?;
        } else {
            survivors.push((k, waiter));
        }
    }
    let released = Instant::now();
    assert_eq!(holder.release()?, "released");

    // Each survivor, in arrival order, gets the scope; it releases when told (stdin closes).
    let mut served = 0;
    let mut outcome = String::new();
    for (k, mut waiter) in survivors {
        let said = waiter.next_line()?;
        let after = released.elapsed();
        if !said.starts_with("held") || after > WAIT / 2 {
            outcome = format!("waiter {k} after {after:?}: {said}");
            waiter.release()?;
            break;
        }
        assert!(
            said.contains(&format!("waiter-{k}.lock")),
            "served out of order: {said}"
        );
        assert_eq!(waiter.release()?, "released");
        served += 1;
    }
    let queue = f.running().join(".queue");
    let tickets_left = if queue.exists() {
        fs::read_dir(&queue)?.count()
    } else {
        0
    };
    record_evidence(
        "a_sigkilled_waiter_does_not_block_the_waiters_behind_it",
        &json!({
            "waiters": count,
            "killed": count.div_ceil(2),
            "survivors_served": served,
            "tickets_left": tickets_left,
        }),
    );
    assert!(
        outcome.is_empty(),
        "a survivor was blocked by a killed waiter's queue entry: {outcome}"
    );
    assert_eq!(tickets_left, 0, "tickets were left behind");
    Ok(())
}
