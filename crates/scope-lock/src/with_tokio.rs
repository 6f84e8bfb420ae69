//! Acquiring from async code (the `tokio` feature): a wait that does not hold a worker thread,
//! can be cancelled by dropping its future, and a guard whose release never blocks the
//! runtime.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backoff::deadline_after;
use crate::cancel::CancelWait;
use crate::conflict::AcquireError;
use crate::error::Error;
use crate::guard::ScopeGuard;
use crate::manager::LockManager;
use crate::record::LockRecord;
use crate::request::LockRequest;
use crate::wait::Silent;

impl LockManager {
    /// [`acquire`](Self::acquire) for async code: waits for the scope for at most `timeout`
    /// without holding a thread of the runtime, and returns holding the lock or not at all.
    /// Same as [`acquire_until_async`](Self::acquire_until_async) with `now + timeout`.
    ///
    /// # Errors
    ///
    /// As [`acquire_until_async`](Self::acquire_until_async).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use scope_lock::{LockManager, LockRequest};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let project = tempfile::tempdir()?;
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// # runtime.block_on(async {
    /// let locks = LockManager::new(project.path().join(".loops"));
    /// let request = LockRequest::new("docs").scope(["docs/"]);
    /// let guard = locks.acquire_async(&request, Duration::from_secs(30)).await?;
    /// // ... the work, holding the scope ...
    /// guard.release().await?;
    /// # Ok(()) })
    /// # }
    /// ```
    pub async fn acquire_async(
        &self,
        request: &LockRequest,
        timeout: Duration,
    ) -> Result<AsyncScopeGuard, AcquireError> {
        self.acquire_until_async(request, deadline_after(timeout))
            .await
    }

    /// [`acquire_until`](Self::acquire_until) for async code. The wait runs on tokio's
    /// blocking pool (`spawn_blocking`), asleep on the same directory watch as the blocking
    /// wait (inotify on Linux), so no worker thread is held and other tasks run meanwhile.
    ///
    /// **Cancellation.** Dropping the future (a `select!` that takes another branch, a
    /// `tokio::time::timeout`, an aborted task) cancels the wait: its thread is woken at once,
    /// withdraws the waiter's ticket from `.running/.queue/`, and returns; a lock it had just
    /// taken when the future was dropped is released on that thread. Nothing is left behind
    /// that blocks anyone, and nothing of it runs on the runtime's threads. The clean-up
    /// happens on the blocking thread right after the drop, not during it: the drop itself
    /// never waits.
    ///
    /// Must be called within a tokio runtime (it spawns on the current one); any flavour will
    /// do, `current_thread` included.
    ///
    /// # Errors
    ///
    /// As [`acquire_until`](Self::acquire_until); and an [`AcquireError::Failed`] of kind
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) if the runtime shut down before the wait could
    /// run.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::task::spawn_blocking` does.
    pub async fn acquire_until_async(
        &self,
        request: &LockRequest,
        deadline: Instant,
    ) -> Result<AsyncScopeGuard, AcquireError> {
        let cancel = Arc::new(CancelWait::new());
        let on_drop = CancelOnDrop(Some(Arc::clone(&cancel)));
        let (locks, owned_request) = (self.clone(), request.clone());
        let wait = tokio::task::spawn_blocking(move || {
            let outcome = locks.acquire_cancellable(&owned_request, deadline, &mut Silent, &cancel);
            // Taken just as the future was dropped: nobody will receive it.
            match outcome {
                Ok(guard) if cancel.is_cancelled() => {
                    drop(guard);
                    None
                }
                outcome => Some(outcome),
            }
        });
        let joined = wait.await;
        on_drop.disarm();
        match joined {
            Ok(Some(outcome)) => outcome.map(AsyncScopeGuard::new),
            // Only a dropped future cancels, and then nobody awaits this.
            Ok(None) => Err(gone(self.running_dir(), "the acquire was cancelled")),
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => Err(gone(
                self.running_dir(),
                "the runtime shut down before the acquire could wait",
            )),
        }
    }
}

fn gone(running_dir: &Path, why: &'static str) -> AcquireError {
    AcquireError::Failed(Error::io(
        "cannot acquire in",
        running_dir,
        io::Error::other(why),
    ))
}

/// Fires the cancel when the future that owns it is dropped before it completes.
struct CancelOnDrop(Option<Arc<CancelWait>>);

impl CancelOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(cancel) = &self.0 {
            cancel.cancel();
        }
    }
}

/// A held scope lock, for async code: a [`ScopeGuard`] whose release runs on tokio's blocking
/// pool, so that neither [`release`](Self::release) nor dropping it blocks the runtime.
///
/// **How release works.** Releasing takes the directory sentinel `.running/.acquire.lock`
/// (`openat`, `fstat`, `fstatfs`, then `flock(LOCK_EX | LOCK_NB)`, retried while another
/// process holds it, asleep on an inotify watch of its closes), checks with `fstatat` that the
/// lock file's name still names the inode this guard holds and `unlinkat`s it, unlocks the
/// sentinel, and finally `close`s the lock file's descriptor, which ends the flock. The
/// sentinel is held by others for one scan at a time (well under a millisecond), so this
/// usually takes microseconds; a process stopped while holding the sentinel can make it wait
/// for the manager's [sentinel bound](LockManager::sentinel_bound) (5 s by default) at most,
/// after which the descriptor is closed anyway (the lock ends; the file is left for the next
/// scan to reclaim).
///
/// All of that runs on a blocking-pool thread: `release().await` awaits it there, and dropping
/// the guard inside a runtime hands it over (`spawn_blocking`) and returns at once, so the lock
/// ends shortly after the drop rather than during it. Dropped outside any runtime, it releases
/// in place, like a [`ScopeGuard`]. [`into_blocking`](Self::into_blocking) gives the plain guard
/// back.
#[must_use = "the scope is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct AsyncScopeGuard {
    /// `None` only once released or given back.
    guard: Option<ScopeGuard>,
    record: LockRecord,
}

impl AsyncScopeGuard {
    fn new(guard: ScopeGuard) -> Self {
        Self {
            record: guard.record().clone(),
            guard: Some(guard),
        }
    }

    /// The record in the lock file.
    pub fn record(&self) -> &LockRecord {
        &self.record
    }

    /// Releases the lock on tokio's blocking pool and waits for it there (see the type's docs
    /// for what it does and how long it can take).
    ///
    /// # Errors
    ///
    /// As [`ScopeGuard::release`]; and an error of kind [`ErrorKind::Io`](crate::ErrorKind::Io)
    /// if the runtime shut down before the release could run (the guard is then dropped with
    /// the task, which releases it).
    pub async fn release(mut self) -> Result<(), Error> {
        let Some(guard) = self.guard.take() else {
            return Ok(());
        };
        let path = guard.path().to_path_buf();
        match tokio::task::spawn_blocking(move || guard.release()).await {
            Ok(released) => released,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => Err(Error::io(
                "cannot release",
                &path,
                io::Error::other("the runtime shut down before the release could run"),
            )),
        }
    }

    /// The plain guard, whose release and drop block the calling thread.
    pub fn into_blocking(mut self) -> Option<ScopeGuard> {
        self.guard.take()
    }
}

impl Drop for AsyncScopeGuard {
    fn drop(&mut self) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            // A runtime that is shutting down drops the task, and with it the guard, which
            // then releases wherever that happens.
            Ok(runtime) => drop(runtime.spawn_blocking(move || drop(guard))),
            Err(_) => drop(guard),
        }
    }
}
