//! `LockManager::acquire_cancellable`: a wait given up from another thread ends because of the
//! cancel itself, not at the observer's next report, and leaves neither its ticket nor a lock.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use scope_lock::testing::{TestResult, fixture};
use scope_lock::{AcquireError, CancelWait, WaitObserver, Waiting};

/// Longer than the test waits for the outcome, so that only the cancel (or a release) ends the
/// wait in time; short enough that a wait that ignores the cancel still ends, and the test
/// with it.
const WAIT: Duration = Duration::from_secs(120);
/// How long a test waits for something that should follow at once before it fails.
const BOUND: Duration = Duration::from_secs(60);

/// Says once that the wait has begun, and asks never to be called again: a cancel that were
/// only seen when the observer is called would then go unseen until the deadline.
struct ToldOnce(mpsc::Sender<()>);

impl WaitObserver for ToldOnce {
    fn waiting(&mut self, _: &Waiting<'_>) {
        let _ = self.0.send(());
    }

    fn interval(&self) -> Option<Duration> {
        None
    }
}

#[test]
fn a_cancelled_wait_ends_leaving_no_ticket_and_no_lock() -> TestResult {
    let f = fixture()?;
    let holder = f.acquire("holder", "src")?;
    let cancel = CancelWait::new();
    let request = f.request("waiter", "src/lib.rs");
    let (told, waiting) = mpsc::channel();
    let (ended, outcome) = mpsc::channel();
    std::thread::scope(|threads| -> TestResult {
        threads.spawn(|| {
            let deadline = Instant::now() + WAIT;
            let result =
                f.locks
                    .acquire_cancellable(&request, deadline, &mut ToldOnce(told), &cancel);
            let _ = ended.send(result);
        });
        let began = waiting.recv_timeout(BOUND);
        // Looked at before the cancel, which ends the wait at once.
        let before = f.locks.list_locks();
        // Cancelled whatever happened, so that the thread ends and the scope can join it.
        cancel.cancel();
        began.map_err(|_| "the waiter never said it waits")?;
        assert_eq!(before?.waiters().len(), 1, "the waiter has its ticket");
        match outcome.recv_timeout(BOUND) {
            Ok(Err(AcquireError::Timeout(conflict))) => {
                assert_eq!(conflict.holder(), Some(holder.record()));
            }
            Ok(other) => return Err(format!("not a cancelled wait: {other:?}").into()),
            Err(_) => {
                return Err(format!("the cancelled wait went on: not within {BOUND:?}").into());
            }
        }
        Ok(())
    })?;
    // Nothing of the wait is left: no ticket, and once the holder lets go, the scope is free.
    assert!(f.locks.list_locks()?.waiters().is_empty());
    holder.release()?;
    let listing = f.locks.list_locks()?;
    assert!(listing.locks().is_empty(), "{listing:?}");
    f.acquire("next", "src")?.release()?;
    Ok(())
}
