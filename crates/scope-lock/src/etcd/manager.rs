//! The managers: [`EtcdLockManager`] (blocking, like [`LockManager`](crate::LockManager)) and
//! [`AsyncEtcdLockManager`] (for tokio users), over one [`Shared`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::EtcdGuard;
use super::acquire::{Prepared, acquire};
use super::config::EtcdConfig;
use super::shared::{Shared, block_on, refuse_async};
use crate::backoff::deadline_after;
use crate::conflict::{AcquireError, Conflict};
use crate::error::Error;
use crate::protocol::Question;
use crate::record::LockRecord;
use crate::request::LockRequest;
use crate::wait::{Silent, WaitObserver};

/// A lock or a waiter's ticket in etcd, as [`EtcdLockManager::list_locks`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdLock {
    pub(crate) key: String,
    pub(crate) lock_name: String,
    pub(crate) record: LockRecord,
    pub(crate) host: String,
    pub(crate) lease: i64,
    pub(crate) token: u64,
}

impl EtcdLock {
    /// Its key in etcd.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The lock name (for a ticket, the waiting loop's name).
    pub fn lock_name(&self) -> &str {
        &self.lock_name
    }

    /// The record, its scope relative to the project root.
    pub fn record(&self) -> &LockRecord {
        &self.record
    }

    /// The host its holder runs on.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The lease it is attached to.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// The key's create revision: a lock's fencing token, a waiter's place in the queue.
    pub fn token(&self) -> u64 {
        self.token
    }
}

/// Every lock and waiter of a project at one etcd revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdListing {
    pub(crate) revision: i64,
    pub(crate) locks: Vec<EtcdLock>,
    pub(crate) waiters: Vec<EtcdLock>,
}

impl EtcdListing {
    /// The etcd revision read at.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The held locks, by key.
    pub fn locks(&self) -> &[EtcdLock] {
        &self.locks
    }

    /// The waiters, first in line first.
    pub fn waiters(&self) -> &[EtcdLock] {
        &self.waiters
    }
}

/// Scope locks of one project kept in etcd, for loops on several machines; blocking, like
/// [`LockManager`](crate::LockManager), whose requests, conflicts and rules it shares. Not for
/// async code (its calls fail there with an error that says so): use
/// [`AsyncEtcdLockManager`].
///
/// Connecting starts one thread of its own, which renews the lease of this manager's locks in
/// the background for as long as any of them is held.
///
/// ```no_run
/// use scope_lock::LockRequest;
/// use scope_lock::etcd::{EtcdConfig, EtcdLockManager};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let locks = EtcdLockManager::connect(EtcdConfig::new(["http://127.0.0.1:2379"], "my-repo"))?;
/// let guard = locks.try_acquire(&LockRequest::new("docs").scope(["docs"]))?;
/// println!("fencing token {}", guard.token());
/// guard.release()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct EtcdLockManager {
    shared: Arc<Shared>,
}

impl EtcdLockManager {
    /// Connects to etcd as `config` says, and finds the project root.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidName`](crate::ErrorKind::InvalidName) for a bad project name, key
    /// prefix, TTL or endpoint list; [`ErrorKind::InvalidScope`](crate::ErrorKind::InvalidScope)
    /// or [`ErrorKind::Io`](crate::ErrorKind::Io) when the project root cannot be found or
    /// resolved; [`ErrorKind::Etcd`](crate::ErrorKind::Etcd) when etcd cannot be reached within
    /// the request timeout, or when called from async code.
    pub fn connect(config: EtcdConfig) -> Result<Self, Error> {
        // Refused before a runtime is made: dropping one in async code would panic.
        refuse_async()?;
        Ok(Self {
            shared: Arc::new(Shared::connect(config)?),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EtcdConfig {
        &self.shared.config
    }

    /// The project root that scopes are relative to.
    pub fn root(&self) -> &std::path::Path {
        self.shared.root.path()
    }

    /// Acquires the scope if nothing conflicts, without waiting: one decision, published by one
    /// transaction (repeated only when someone else's change got in between).
    ///
    /// # Errors
    ///
    /// [`AcquireError::Conflict`] as for [`LockManager::try_acquire`](crate::LockManager::try_acquire)
    /// (overlap, singleton, same lock name, an earlier waiter; a conflict with a lock of this
    /// manager is "by this process"); [`AcquireError::Failed`] for an invalid request, a scope
    /// entry outside the project root (named), or etcd failing
    /// ([`ErrorKind::Etcd`](crate::ErrorKind::Etcd)).
    pub fn try_acquire(&self, request: &LockRequest) -> Result<EtcdGuard, AcquireError> {
        let shared = &self.shared;
        block_on(&shared.handle, acquire(shared, request, None, &mut Silent))?
    }

    /// Acquires the scope, waiting for at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`acquire_until`](Self::acquire_until).
    pub fn acquire(
        &self,
        request: &LockRequest,
        timeout: Duration,
    ) -> Result<EtcdGuard, AcquireError> {
        self.acquire_until(request, deadline_after(timeout))
    }

    /// Acquires the scope, waiting for it until `deadline`. Waiters whose scopes overlap are
    /// served in the order they started waiting (their tickets' create revisions); a waiter
    /// sleeps on a watch of the one key in its way, never polls.
    ///
    /// # Errors
    ///
    /// [`AcquireError::Timeout`] with the last conflict seen; otherwise as
    /// [`try_acquire`](Self::try_acquire), and [`ErrorKind::Lost`](crate::ErrorKind::Lost)
    /// when this manager's lease was lost while it waited.
    pub fn acquire_until(
        &self,
        request: &LockRequest,
        deadline: Instant,
    ) -> Result<EtcdGuard, AcquireError> {
        self.acquire_with(request, deadline, &mut Silent)
    }

    /// [`acquire_until`](Self::acquire_until), telling `observer` when it starts waiting and
    /// then every [`interval`](WaitObserver::interval), as locally.
    ///
    /// # Errors
    ///
    /// As [`acquire_until`](Self::acquire_until).
    pub fn acquire_with(
        &self,
        request: &LockRequest,
        deadline: Instant,
        observer: &mut dyn WaitObserver,
    ) -> Result<EtcdGuard, AcquireError> {
        let shared = &self.shared;
        block_on(
            &shared.handle,
            acquire(shared, request, Some(deadline), observer),
        )?
    }

    /// What would make [`try_acquire`](Self::try_acquire) refuse `request` now, if anything.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Self::try_acquire), for everything but the conflict itself.
    pub fn find_conflict(&self, request: &LockRequest) -> Result<Option<Conflict>, Error> {
        let question = find_conflict(&self.shared, request, Question::Request);
        block_on(&self.shared.handle, question)?
    }

    /// The lock (or earlier waiter) of the project that would block *any* acquire of
    /// `request`'s scope, if any: "is this scope free?", as
    /// [`LockManager::find_scope_conflict`](crate::LockManager::find_scope_conflict) asks it
    /// of a lock directory. The key the request would take is left out, so no name has to be
    /// made up; the loop name counts only for a singleton request, and the instance id never.
    /// The answer can be out of date as soon as it is returned: to hold a scope, acquire it.
    ///
    /// # Errors
    ///
    /// An invalid scope entry (or singleton loop name), a scope outside the project root
    /// ([`ErrorKind::InvalidScope`](crate::ErrorKind::InvalidScope)), or
    /// [`ErrorKind::Etcd`](crate::ErrorKind::Etcd) when etcd cannot be read.
    pub fn find_scope_conflict(&self, request: &LockRequest) -> Result<Option<Conflict>, Error> {
        let question = find_conflict(&self.shared, request, Question::Scope);
        block_on(&self.shared.handle, question)?
    }

    /// Every lock and waiter of the project.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Etcd`](crate::ErrorKind::Etcd) when etcd cannot be read.
    pub fn list_locks(&self) -> Result<EtcdListing, Error> {
        block_on(&self.shared.handle, list_locks(&self.shared))?
    }
}

/// [`EtcdLockManager`] for async code (tokio or any executor): the same calls, awaited. The
/// work runs on the manager's own thread, so a caller's runtime needs no particular
/// features, and a guard dropped in async code is released in the background.
#[derive(Debug, Clone)]
pub struct AsyncEtcdLockManager {
    shared: Arc<Shared>,
}

impl AsyncEtcdLockManager {
    /// Connects, as [`EtcdLockManager::connect`].
    ///
    /// # Errors
    ///
    /// As [`EtcdLockManager::connect`], but never for being called from async code.
    pub async fn connect(config: EtcdConfig) -> Result<Self, Error> {
        // Connecting blocks (it starts a runtime and waits for it): on a thread of its own,
        // awaited without blocking the caller's.
        let (send, connected) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || send.send(Shared::connect(config).map(Box::new)));
        let shared = *connected
            .await
            .map_err(|err| Error::etcd("connecting to etcd failed".to_owned(), err))??;
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EtcdConfig {
        &self.shared.config
    }

    /// The project root that scopes are relative to.
    pub fn root(&self) -> &std::path::Path {
        self.shared.root.path()
    }

    /// As [`EtcdLockManager::try_acquire`].
    ///
    /// # Errors
    ///
    /// As [`EtcdLockManager::try_acquire`].
    pub async fn try_acquire(&self, request: &LockRequest) -> Result<EtcdGuard, AcquireError> {
        self.run(request.clone(), None, Silent).await
    }

    /// As [`EtcdLockManager::acquire_until`].
    ///
    /// # Errors
    ///
    /// As [`EtcdLockManager::acquire_until`].
    pub async fn acquire_until(
        &self,
        request: &LockRequest,
        deadline: Instant,
    ) -> Result<EtcdGuard, AcquireError> {
        self.run(request.clone(), Some(deadline), Silent).await
    }

    /// As [`EtcdLockManager::acquire_with`]; the observer is called on the manager's thread.
    ///
    /// # Errors
    ///
    /// As [`EtcdLockManager::acquire_until`].
    pub async fn acquire_with(
        &self,
        request: &LockRequest,
        deadline: Instant,
        observer: impl WaitObserver + Send + 'static,
    ) -> Result<EtcdGuard, AcquireError> {
        self.run(request.clone(), Some(deadline), observer).await
    }

    /// As [`EtcdLockManager::find_conflict`].
    ///
    /// # Errors
    ///
    /// As [`EtcdLockManager::find_conflict`].
    pub async fn find_conflict(&self, request: &LockRequest) -> Result<Option<Conflict>, Error> {
        self.ask(request, Question::Request).await
    }

    /// As [`EtcdLockManager::find_scope_conflict`].
    ///
    /// # Errors
    ///
    /// As [`EtcdLockManager::find_scope_conflict`].
    pub async fn find_scope_conflict(
        &self,
        request: &LockRequest,
    ) -> Result<Option<Conflict>, Error> {
        self.ask(request, Question::Scope).await
    }

    async fn ask(
        &self,
        request: &LockRequest,
        question: Question,
    ) -> Result<Option<Conflict>, Error> {
        let shared = Arc::clone(&self.shared);
        let request = request.clone();
        spawned(&self.shared, async move {
            find_conflict(&shared, &request, question).await
        })
        .await?
    }

    /// As [`EtcdLockManager::list_locks`].
    ///
    /// # Errors
    ///
    /// As [`EtcdLockManager::list_locks`].
    pub async fn list_locks(&self) -> Result<EtcdListing, Error> {
        let shared = Arc::clone(&self.shared);
        spawned(&self.shared, async move { list_locks(&shared).await }).await?
    }

    async fn run(
        &self,
        request: LockRequest,
        deadline: Option<Instant>,
        mut observer: impl WaitObserver + Send + 'static,
    ) -> Result<EtcdGuard, AcquireError> {
        let shared = Arc::clone(&self.shared);
        spawned(&self.shared, async move {
            acquire(&shared, &request, deadline, &mut observer).await
        })
        .await?
    }
}

/// Runs `future` on the manager's runtime and awaits it from any executor.
async fn spawned<T: Send + 'static>(
    shared: &Shared,
    future: impl Future<Output = T> + Send + 'static,
) -> Result<T, Error> {
    shared
        .handle
        .spawn(future)
        .await
        .map_err(|err| Error::etcd("the etcd call was cancelled".to_owned(), err))
}

async fn find_conflict(
    shared: &Shared,
    request: &LockRequest,
    question: Question,
) -> Result<Option<Conflict>, Error> {
    let prepared = Prepared::new(shared, request, question)?;
    let lease = shared.current_lease().await;
    let state = shared.read(lease).await?;
    Ok(prepared.decide(&state, None))
}

async fn list_locks(shared: &Shared) -> Result<EtcdListing, Error> {
    let state = shared.read(None).await?;
    Ok(EtcdListing {
        revision: state.revision,
        locks: state.held,
        waiters: state.waiting,
    })
}
