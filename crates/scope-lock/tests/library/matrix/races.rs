//! X2: threads racing for one scope or name.

use std::error::Error;
use std::fs;
use std::sync::Barrier;
use std::thread;

use scope_lock::testing::{Fixture, TestResult, fixture};
use scope_lock::{AcquireError, LockManager, LockRecord, LockRequest, ScopeGuard};

/// Releases `threads` threads together with a barrier; thread `i` acquires `request(i)`.
/// Returns every result, guards still alive.
fn race(
    threads: usize,
    request: impl Fn(usize) -> LockRequest + Sync,
    locks: &LockManager,
) -> Vec<Result<ScopeGuard, AcquireError>> {
    let barrier = Barrier::new(threads);
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (barrier, request, locks) = (&barrier, &request, locks);
                s.spawn(move || {
                    let request = request(i);
                    barrier.wait();
                    locks.try_acquire(&request)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| panic!("a racer panicked")))
            .collect()
    })
}

/// Checks that exactly one racer won and every other one got a conflict naming the winner.
fn exactly_one_winner(
    results: Vec<Result<ScopeGuard, AcquireError>>,
    round: usize,
) -> Result<ScopeGuard, Box<dyn Error>> {
    let mut winners = Vec::new();
    let mut conflicts = Vec::new();
    for result in results {
        match result {
            Ok(guard) => winners.push(guard),
            Err(AcquireError::Conflict(conflict)) => conflicts.push(conflict),
            Err(err @ (AcquireError::Failed(_) | AcquireError::Timeout(_))) => {
                return Err(format!("round {round}: a racer failed: {err}").into());
            }
        }
    }
    assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
    let winner = winners.pop().ok_or("no winner")?;
    for conflict in &conflicts {
        assert_eq!(conflict.holder(), Some(winner.record()), "round {round}");
        assert!(conflict.is_held_by_this_process(), "round {round}");
    }
    Ok(winner)
}

/// How many threads race in each round of the X2 tests.
const RACERS: usize = 8;

/// `rounds` times: races [`RACERS`] threads, thread `i` acquiring `request(i)`, checks that
/// exactly one won, and hands the winner's guard to `then` (which must release or drop it).
fn race_rounds(
    f: &Fixture,
    rounds: usize,
    request: impl Fn(usize) -> LockRequest + Sync,
    mut then: impl FnMut(ScopeGuard, usize) -> TestResult,
) -> TestResult {
    for round in 0..rounds {
        let results = race(RACERS, &request, &f.locks);
        let winner = exactly_one_winner(results, round)?;
        then(winner, round)?;
    }
    Ok(())
}

#[test]
fn threads_racing_for_the_same_scope_exactly_one_wins_every_round() -> TestResult {
    let f = fixture()?;
    race_rounds(
        &f,
        25,
        |i| f.request(&format!("racer-{i}"), "contested"),
        |winner, round| {
            assert_eq!(
                f.lock_files()?,
                [winner.path().to_path_buf()],
                "round {round}"
            );
            winner.release()?;
            assert!(f.lock_files()?.is_empty(), "round {round}");
            Ok(())
        },
    )
}

#[test]
fn threads_racing_with_nested_scopes_exactly_one_wins_every_round() -> TestResult {
    let f = fixture()?;
    race_rounds(
        &f,
        15,
        // Each racer wants a different depth of the same subtree.
        |i| {
            let depth: Vec<String> = (0..i).map(|d| format!("d{d}")).collect();
            f.request(&format!("racer-{i}"), &format!("tree/{}", depth.join("/")))
                .instance_id(format!("runs/racer-{i}"))
        },
        |winner, _| {
            winner.release()?;
            Ok(())
        },
    )?;
    assert!(f.lock_files()?.is_empty());
    Ok(())
}

#[test]
fn threads_racing_for_the_same_name_with_disjoint_scopes_exactly_one_wins() -> TestResult {
    let f = fixture()?;
    race_rounds(
        &f,
        15,
        |i| f.request("same", &format!("own-{i}")),
        |winner, round| {
            assert_eq!(
                LockRecord::from_json(&fs::read(winner.path())?)?,
                winner.record().clone(),
                "round {round}: the file holds someone else's record"
            );
            winner.release()?;
            Ok(())
        },
    )
}
