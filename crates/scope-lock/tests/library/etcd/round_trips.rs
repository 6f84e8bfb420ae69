//! How many requests the etcd backend sends, counted by the member's own metrics
//! ([`EtcdCluster::requests`]): a waiter decides with its ticket on what queueing read, and the
//! waiter whose turn comes takes the lock with one transaction, not sent back to read by
//! those who queue behind it. Counts, not timings: the same on any machine.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use scope_lock::etcd::EtcdLockManager;
use scope_lock::testing::TestResult;
use scope_lock::testing::etcd::{EtcdCluster, available};
use scope_lock::{LockRequest, WaitObserver, Waiting};

use super::{clone, manager};

/// Says when the wait starts, and asks not to be told again: a report that the wait goes on
/// costs a read, which would make the counts depend on how slow the machine is.
struct Started(mpsc::Sender<()>);

impl WaitObserver for Started {
    fn waiting(&mut self, wait: &Waiting<'_>) {
        if wait.is_first() {
            let _ = self.0.send(());
        }
    }

    fn interval(&self) -> Option<Duration> {
        None
    }
}

/// The requests made between two readings (the counters that moved), and of them
/// `(KV/Range, KV/Txn)`: reads, and transactions.
fn reads_and_txns(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> ((f64, f64), BTreeMap<String, f64>) {
    let moved: BTreeMap<String, f64> = after
        .iter()
        .map(|(counter, n)| {
            (
                counter.clone(),
                n - before.get(counter).copied().unwrap_or(0.0),
            )
        })
        .filter(|(_, n)| *n != 0.0)
        .collect();
    let count = |counter: &str| moved.get(counter).copied().unwrap_or(0.0);
    ((count("KV/Range"), count("KV/Txn")), moved)
}

/// Starts `locks` waiting for `request` on a thread; returns once it waits (it has its
/// ticket), with the thread, which ends holding the lock.
fn waiting(
    locks: EtcdLockManager,
    request: LockRequest,
) -> Result<
    std::thread::JoinHandle<Result<scope_lock::etcd::EtcdGuard, String>>,
    Box<dyn std::error::Error>,
> {
    let (tell, started) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        locks
            .acquire_with(
                &request,
                Instant::now() + Duration::from_secs(60),
                &mut Started(tell),
            )
            .map_err(|err| err.to_string())
    });
    started.recv_timeout(Duration::from_secs(30))?;
    Ok(waiter)
}

/// Queueing is one transaction that also reads the project, so a waiter decides with its
/// place in the queue without reading again: one read (the first decision) and one
/// transaction before it waits.
#[test]
fn a_waiter_decides_with_its_ticket_on_what_queueing_read() -> TestResult {
    if !available("etcd::round_trips::a_waiter_decides_with_its_ticket_on_what_queueing_read") {
        return Ok(());
    }
    let cluster = EtcdCluster::single()?;
    let here = clone()?;
    let a = manager(&cluster, "queueing", &here.root)?;
    let b = manager(&cluster, "queueing", &here.root)?;
    let held = a.try_acquire(&LockRequest::new("holder").scope(["src"]))?;

    let before = cluster.requests(0)?;
    let waiter = waiting(b, LockRequest::new("waiter").scope(["src"]))?;
    let (counts, moved) = reads_and_txns(&before, &cluster.requests(0)?);
    assert_eq!(counts, (1.0, 1.0), "requests made: {moved:?}");

    held.release()?;
    waiter
        .join()
        .map_err(|_| "the waiter panicked")??
        .release()?;
    Ok(())
}

/// When the lock in its way is released, the waiter at the head decides again on what it
/// knew less that lock, and publishes at once: the release and its publish are the only
/// transactions, and nobody reads. A waiter that queued after it (for another scope) does not
/// make it lose the race: a waiter's publish compares the locks and its own ticket, not the
/// tickets behind it.
#[test]
fn the_waiter_whose_turn_comes_takes_the_lock_with_one_transaction() -> TestResult {
    if !available(
        "etcd::round_trips::the_waiter_whose_turn_comes_takes_the_lock_with_one_transaction",
    ) {
        return Ok(());
    }
    let cluster = EtcdCluster::single()?;
    let here = clone()?;
    let holders = manager(&cluster, "turn", &here.root)?;
    let docs = holders.try_acquire(&LockRequest::new("docs").scope(["docs"]))?;
    let src = holders.try_acquire(&LockRequest::new("src").scope(["src"]))?;
    let next = waiting(
        manager(&cluster, "turn", &here.root)?,
        LockRequest::new("next").scope(["src"]),
    )?;
    // Queued after `next`, waiting for the docs, which stay held.
    let later = waiting(
        manager(&cluster, "turn", &here.root)?,
        LockRequest::new("later").scope(["docs"]),
    )?;

    let before = cluster.requests(0)?;
    src.release()?;
    let next = next.join().map_err(|_| "the waiter panicked")??;
    let (counts, moved) = reads_and_txns(&before, &cluster.requests(0)?);
    assert_eq!(counts, (0.0, 2.0), "requests made: {moved:?}");

    next.release()?;
    docs.release()?;
    later
        .join()
        .map_err(|_| "the later waiter panicked")??
        .release()?;
    Ok(())
}
