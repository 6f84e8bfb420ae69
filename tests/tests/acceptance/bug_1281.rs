//! BUG-1281's acceptance criteria (issues/BUG-1281.md): processes that wait for one scope all
//! get it, one after another, in the order they started waiting; none gives up.
//!
//! Against the pre-fix port (`SCOPE_LOCK_IMPL=pre-fix`: the original's `wait_for_scope() ->
//! bool` followed by one acquire), the waiters all see the scope free in the same poll tick, as
//! in the bug report (a file barrier puts them there), and every one but the winner gives up.

use std::fs;
use std::time::{Duration, Instant};

use crate::support::{Workers, project};
use regression::locker::Impl;
use regression::{record_evidence, soak, witness};
use scope_lock::testing::TestResult;
use serde_json::json;

/// Far longer than any wait here should take; a waiter that reaches it reports `timeout`.
const WAIT_MS: u64 = 60_000;

#[test]
fn processes_waiting_for_one_scope_all_get_it_in_arrival_order() -> TestResult {
    let which = Impl::from_env();
    let (f, scope) = project()?;
    let waiters: u64 = if soak() { 24 } else { 6 };
    let log = f.root.join("witness.log");
    let barrier = f.root.join("barrier");
    let count = waiters.to_string();

    // Another process holds the scope while the waiters line up (not this test process: the
    // waiters are its children, and a lock of an ancestor never blocks).
    let holder = f.spawn_holder(&scope)?;
    let mut processes = Vec::new();
    for k in 0..waiters {
        let worker = k.to_string();
        let mut waiter = f.spawn_waiter(
            which,
            &format!("waiter-{k}"),
            &scope,
            WAIT_MS,
            &[
                "--witness",
                &log.to_string_lossy(),
                "--worker",
                &worker,
                "--release-at-once",
                "--port",
                "poll",
                "--barrier-dir",
                &barrier.to_string_lossy(),
                "--barrier-count",
                &count,
            ],
        )?;
        // Each one starts only once the one before it is waiting: that is the arrival order.
        let said = waiter.go()?;
        assert!(
            said.starts_with("waiting"),
            "waiter {k} did not wait: {said}"
        );
        processes.push(waiter);
    }
    assert_eq!(holder.release()?, "released");

    let mut outcomes = Vec::new();
    for (k, mut waiter) in processes.into_iter().enumerate() {
        let said = waiter.next_line()?;
        if said.starts_with("held") {
            assert_eq!(waiter.release()?, "released", "waiter {k}");
        } else {
            waiter.release()?;
        }
        outcomes.push(said);
    }
    let gave_up = outcomes.iter().filter(|o| o.starts_with("gave-up")).count();
    let timed_out = outcomes.iter().filter(|o| o.starts_with("timeout")).count();
    let text = fs::read_to_string(&log).unwrap_or_default();
    let order: Vec<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("enter "))
        .filter_map(|rest| rest.split(' ').next().map(str::to_owned))
        .collect();
    let report = witness::check(&text)?;
    let handoffs = handoff_micros(&text);
    record_evidence(
        "processes_waiting_for_one_scope_all_get_it_in_arrival_order",
        &json!({
            "waiters": waiters,
            "held": order.len(),
            "gave_up": gave_up,
            "timed_out": timed_out,
            "overlaps": report.overlaps(),
            // Measured, not judged: from one holder's exit line to the next one's enter line.
            "handoff_us_median": percentile(&handoffs, 50),
            "handoff_us_max": percentile(&handoffs, 100),
        }),
    );
    assert_eq!(
        gave_up, 0,
        "a waiter gave up after losing the race for a scope it was told was free: {outcomes:?}"
    );
    assert_eq!(timed_out, 0, "a waiter timed out: {outcomes:?}");
    let expected: Vec<String> = (0..waiters).map(|k| k.to_string()).collect();
    assert_eq!(order, expected, "not served in arrival order");
    assert_eq!(report.overlaps(), 0, "two holders at once: {report:?}");
    Ok(())
}

/// Microseconds from each hold's `exit` line to the next hold's `enter` line in the witness
/// log: one release, one wake-up and one acquire.
fn handoff_micros(log: &str) -> Vec<u64> {
    let mut gaps = Vec::new();
    let mut last_exit: Option<u64> = None;
    for line in log.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(kind), Some(Ok(ns))) = (fields.first(), fields.get(3).map(|f| f.parse::<u64>()))
        else {
            continue;
        };
        match *kind {
            "enter" => {
                if let Some(exit) = last_exit.take() {
                    gaps.push(ns.saturating_sub(exit) / 1000);
                }
            }
            "exit" => last_exit = Some(ns),
            _ => {}
        }
    }
    gaps.sort_unstable();
    gaps
}

/// The `p`th percentile of sorted `values` (nearest rank); 0 when empty.
fn percentile(values: &[u64], p: usize) -> u64 {
    if values.is_empty() {
        return 0;
    }
    let rank = (p * values.len()).div_ceil(100).clamp(1, values.len());
    values[rank - 1]
}

#[test]
fn a_waiter_gets_the_scope_when_its_holder_is_killed() -> TestResult {
    // A holder's death ends its flock and closes its lock file; that close is what wakes the
    // waiter (nothing polls a lock of ours), so a waiter that slept through it would time out.
    let which = Impl::from_env();
    let (f, scope) = project()?;
    let holder = f.spawn_holder(&scope)?;
    // A waiter that slept through the death would still get the scope, at its deadline (its
    // last attempt finds the lock stale): so the test checks that it came well before that.
    let deadline = Duration::from_secs(20);
    let timeout_ms = u64::try_from(deadline.as_millis())?;
    let mut waiter = f.spawn_waiter(which, "waiter", &scope, timeout_ms, &["--port", "poll"])?;
    let said = waiter.go()?;
    assert!(
        said.starts_with("waiting"),
        "the waiter did not wait: {said}"
    );
    let killed = Instant::now();
    holder.kill()?;
    let said = waiter.next_line()?;
    let after = killed.elapsed();
    assert!(
        said.starts_with("held"),
        "the waiter did not get the scope: {said}"
    );
    assert!(
        after < deadline / 2,
        "the waiter slept through its holder's death, until its deadline ({after:?})"
    );
    assert_eq!(waiter.release()?, "released");
    Ok(())
}
