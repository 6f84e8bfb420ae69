//! The `tokio` feature: an async acquire waits without holding the runtime's thread, dropping
//! its future leaves neither a lock nor a waiter's ticket behind, and its guard releases off
//! the runtime. Every test runs on a current-thread runtime, where a blocked thread would
//! stop every other task.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use scope_lock::LockManager;
use scope_lock::testing::{TestResult, expect_conflict, fixture};

/// Longer than any test waits, so that only a release (or a cancel) ends a wait.
const WAIT: Duration = Duration::from_secs(120);
/// How long a test waits for something that should follow at once before it fails.
const BOUND: Duration = Duration::from_secs(60);
/// How often the bounded polls below look again.
const LOOK_EVERY: Duration = Duration::from_millis(5);

fn current_thread_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
}

/// The waiters' tickets in the queue: files named by their number.
fn tickets(locks: &LockManager) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(locks.running_dir().join(".queue"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| {
                    path.file_name()
                        .and_then(|name| name.to_str())
                        .is_some_and(|name| name.bytes().all(|byte| byte.is_ascii_digit()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (without blocking the runtime) until `done` says so, for at most [`BOUND`].
async fn until(what: &str, mut done: impl FnMut() -> bool) -> Result<(), String> {
    let looks = BOUND.as_millis() / LOOK_EVERY.as_millis();
    for _ in 0..looks {
        if done() {
            return Ok(());
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
    Err(format!("{what}: not within {BOUND:?}"))
}

#[test]
fn other_tasks_run_while_an_async_acquire_waits() -> TestResult {
    let f = fixture()?;
    let holder = f.acquire("holder", "src")?;
    let locks = f.locks.clone();
    let request = f.request("waiter", "src/lib.rs");
    let runtime = current_thread_runtime()?;
    runtime.block_on(async move {
        let finished = Arc::new(AtomicBool::new(false));
        let waiter = tokio::spawn({
            let (locks, finished) = (locks.clone(), Arc::clone(&finished));
            async move {
                let outcome = locks.acquire_async(&request, WAIT).await;
                finished.store(true, Ordering::SeqCst);
                outcome
            }
        });
        // The waiter is queued: it found the scope taken and waits.
        until("the waiter takes a ticket", || tickets(&locks).len() == 1).await?;
        // This task runs, on the runtime's only thread, while the waiter waits: a hundred
        // turns, each seeing the waiter still waiting.
        let turns_while_waiting = AtomicU32::new(0);
        for _ in 0..100 {
            if !finished.load(Ordering::SeqCst) {
                turns_while_waiting.fetch_add(1, Ordering::SeqCst);
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(turns_while_waiting.load(Ordering::SeqCst), 100);
        holder.release()?;
        let guard = waiter.await??;
        assert_eq!(guard.record().loop_name(), "waiter");
        guard.release().await?;
        assert!(tickets(&locks).is_empty());
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

#[test]
fn dropping_an_async_acquire_leaves_no_ticket_and_no_lock() -> TestResult {
    let f = fixture()?;
    let holder = f.acquire("holder", "src")?;
    let locks = f.locks.clone();
    let request = f.request("waiter", "src");
    let runtime = current_thread_runtime()?;
    runtime.block_on(async {
        let waiter = tokio::spawn({
            let locks = locks.clone();
            async move { locks.acquire_async(&request, WAIT).await }
        });
        until("the waiter takes a ticket", || tickets(&locks).len() == 1).await?;
        // Dropping the future (here by aborting its task) cancels the wait.
        waiter.abort();
        assert!(waiter.await.is_err_and(|err| err.is_cancelled()));
        until("the dropped waiter withdraws its ticket", || {
            tickets(&locks).is_empty()
        })
        .await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    // Once the holder is gone, the scope is free: no lock of the dropped waiter's took it,
    // and no ticket of it is ahead of anyone.
    holder.release()?;
    assert!(f.locks.list_locks()?.locks().is_empty());
    let next = f.acquire("next", "src")?;
    expect_conflict(f.acquire("after", "src"));
    next.release()?;
    Ok(())
}

/// A guard dropped on the runtime while another process holds the directory sentinel (as a
/// stopped one would): the drop returns at once, and the release finishes on the blocking
/// pool once the sentinel is free.
#[test]
fn dropping_an_async_guard_never_waits_for_the_sentinel_on_the_runtime() -> TestResult {
    let f = fixture()?;
    // Longer than the sentinel's holder below keeps it, so that a release in place would
    // still be waiting when the holder gives up.
    let locks = f.locks.clone().with_sentinel_bound(WAIT);
    let request = f.request("async", "src");
    let lock_file = locks.lock_path(&request);
    let runtime = current_thread_runtime()?;
    let guard = runtime.block_on(locks.acquire_async(&request, Duration::ZERO))?;

    let sentinel = std::fs::File::open(locks.running_dir().join(".acquire.lock"))?;
    // Another process's hold, as `flock(1)` would take it.
    #[allow(clippy::disallowed_methods, reason = "a foreign holder")]
    sentinel.lock()?;
    let (dropped_tx, dropped_rx) = std::sync::mpsc::channel();
    let sentinel_holder = std::thread::spawn(move || {
        // Whether the drop returned while the sentinel was still held.
        let returned_first = dropped_rx.recv_timeout(BOUND).is_ok();
        drop(sentinel);
        returned_first
    });
    runtime.block_on(async {
        drop(guard);
        let _ = dropped_tx.send(());
    });
    let returned_first = sentinel_holder
        .join()
        .map_err(|_| "the sentinel's holder panicked")?;
    assert!(
        returned_first,
        "dropping the guard waited on the runtime for the sentinel"
    );
    runtime.block_on(until("the dropped guard's lock file goes", || {
        !lock_file.exists()
    }))?;
    assert!(f.locks.list_locks()?.locks().is_empty());
    Ok(())
}
