//! BUG-1361's acceptance criteria (issues/BUG-1361.md): a waiter that is killed while it waits
//! leaves nothing that blocks the waiters behind it.
//!
//! Against the pre-fix port (`SCOPE_LOCK_IMPL=prefix`: a first-come queue of entry files that
//! only their own waiters remove), the killed waiter's entry stays first in the queue and the
//! waiter behind it never gets its turn.

mod common;

use std::fs;

use common::{TestResult, project};
use regression::locker::Impl;
use regression::record_evidence;
use serde_json::json;

/// How long the waiter behind the killed one waits. With the fix it gets the scope as soon as
/// the holder releases; this only bounds the port's run, where it never does.
const BEHIND_MS: u64 = 10_000;

#[test]
fn ac1_a_sigkilled_waiter_does_not_block_the_waiters_behind_it() -> TestResult {
    let which = Impl::from_env();
    let (f, scope) = project()?;
    let mut holder = f.spawn_attempt(Impl::Fixed, "holder", &scope, &[])?;
    let said = holder.go()?;
    assert!(
        said.starts_with("held"),
        "the holder did not get the scope: {said}"
    );

    let port = ["--port", "queue"];
    let mut first = f.spawn_waiter(which, "first", &scope, 60_000, &port)?;
    let said = first.go()?;
    assert!(
        said.starts_with("waiting"),
        "the first waiter did not wait: {said}"
    );
    let mut behind = f.spawn_waiter(which, "behind", &scope, BEHIND_MS, &port)?;
    let said = behind.go()?;
    assert!(
        said.starts_with("waiting"),
        "the second waiter did not wait: {said}"
    );

    // The first waiter dies while it waits; then the holder leaves.
    first.kill()?;
    assert_eq!(holder.release()?, "released");

    let said = behind.next_line()?;
    let got_it = said.starts_with("held");
    if got_it {
        assert_eq!(behind.release()?, "released");
    } else {
        behind.release()?;
    }
    let queue = f.running().join(".queue");
    let tickets_left = if queue.exists() {
        fs::read_dir(&queue)?.count()
    } else {
        0
    };
    record_evidence(
        "ac1_a_sigkilled_waiter_does_not_block_the_waiters_behind_it",
        &json!({ "behind_got_the_scope": got_it, "tickets_left": tickets_left }),
    );
    assert!(
        got_it,
        "the waiter behind was blocked by a killed waiter's queue entry: {said}"
    );
    assert_eq!(tickets_left, 0, "tickets were left behind");
    Ok(())
}
