//! A held lock on etcd: [`EtcdGuard`], and how its holder learns that it lost it.

use std::fmt;
use std::sync::Arc;

use etcd_client::{EventType, WatchOptions};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::acquire::DROP_RELEASE_BOUND;
use super::session::{Expiry, Session};
use super::shared::{Shared, block_on};
use crate::error::{Error, ErrorKind};
use crate::record::LockRecord;

/// A scope lock held on etcd: its key exists, under this process's lease, for as long as the
/// guard lives and the lease does.
///
/// Unlike a local lock, this one can be lost while the guard lives: when the process is
/// stopped or cut off from etcd for longer than the lease's TTL, etcd deletes the key and
/// someone else may take the scope. The guard then says so ([`is_lost`](Self::is_lost)), and
/// tells whoever asked to be told ([`lost`](Self::lost), [`on_lost`](Self::on_lost)). Work
/// that must not overlap another holder's should carry the [fencing token](Self::token) to
/// the resource it writes, which can then refuse a stale holder's late writes.
///
/// Dropping the guard releases it: from a thread that runs no async code, before the drop
/// returns (within a few seconds at most); from async code, in the background, so that the
/// drop never blocks the caller's runtime.
#[must_use = "the scope is released as soon as the guard is dropped"]
pub struct EtcdGuard {
    shared: Arc<Shared>,
    key: String,
    token: u64,
    lease: i64,
    record: LockRecord,
    lost: watch::Receiver<bool>,
    /// The lease's expiry by our clock, which `is_lost` reads itself: the task that turns
    /// `lost` true may run late on a busy machine.
    expiry: Expiry,
    /// Turns `lost` true when the lease is lost or the key deleted by someone else.
    watcher: JoinHandle<()>,
    released: bool,
}

impl fmt::Debug for EtcdGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdGuard")
            .field("key", &self.key)
            .field("token", &self.token)
            .field("lease", &self.lease)
            .field("lost", &self.is_lost())
            .finish_non_exhaustive()
    }
}

impl EtcdGuard {
    pub(crate) fn new(
        shared: Arc<Shared>,
        session: &Session,
        key: String,
        token: u64,
        record: LockRecord,
    ) -> Self {
        let (tell, lost) = watch::channel(false);
        let watcher = shared.handle.spawn(watch_loss(
            Arc::clone(&shared),
            session.lost(),
            key.clone(),
            i64::try_from(token).unwrap_or(i64::MAX),
            tell,
        ));
        Self {
            lease: session.lease(),
            shared,
            key,
            token,
            record,
            lost,
            expiry: session.expiry(),
            watcher,
            released: false,
        }
    }

    /// The fencing token: the lock key's create revision, which grows with every acquisition
    /// in the etcd cluster, so a later holder of any scope of the project always has a larger
    /// one. A resource that remembers the largest token it has seen can refuse writes that
    /// carry a smaller one: those of a holder that lost its lock without noticing in time.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// The record in the key (its scope relative to the project root).
    pub fn record(&self) -> &LockRecord {
        &self.record
    }

    /// The lock's key in etcd.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The lease the key is attached to.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// Whether the lock is lost: the lease expired or had to be taken for expired (no renewal
    /// confirmed for a whole TTL), or the key was deleted by someone else.
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow() || self.expiry.passed()
    }

    /// Completes when the lock is lost (at once if it already is); never, while it is held.
    /// For async code; [`on_lost`](Self::on_lost) for any.
    pub async fn lost(&self) {
        let mut lost = self.lost.clone();
        // An error means the watcher ended without a loss (the guard is being released).
        if lost.wait_for(|lost| *lost).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Calls `then` once, on the manager's own thread, when the lock is lost; never if the
    /// guard is released first. For a program that must stop its work at once (`scope-lock
    /// run` signals its command).
    pub fn on_lost(&self, then: impl FnOnce() + Send + 'static) {
        let mut lost = self.lost.clone();
        self.shared.handle.spawn(async move {
            if lost.wait_for(|lost| *lost).await.is_ok() {
                then();
            }
        });
    }

    /// Releases the lock: deletes the key if it is still this guard's.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Lost`] when the lock was lost before (its key is gone or someone else's;
    /// nothing was deleted), [`ErrorKind::Etcd`] when etcd cannot be asked (the key then goes
    /// with the lease, at the TTL), and [`ErrorKind::Etcd`] too when called from async code
    /// (use [`release_async`](Self::release_async) there).
    pub fn release(mut self) -> Result<(), Error> {
        let shared = Arc::clone(&self.shared);
        let release = self.release_now();
        block_on(&shared.handle, release)?
    }

    /// [`release`](Self::release), for async code.
    ///
    /// # Errors
    ///
    /// As [`release`](Self::release), but never for being called from async code.
    pub async fn release_async(mut self) -> Result<(), Error> {
        let shared = Arc::clone(&self.shared);
        let release = self.release_now();
        shared
            .handle
            .spawn(release)
            .await
            .map_err(|err| Error::etcd("the release was cancelled".to_owned(), err))?
    }

    /// Marks the guard released and returns the work of releasing it, to run anywhere.
    fn release_now(&mut self) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        self.released = true;
        self.watcher.abort();
        let shared = Arc::clone(&self.shared);
        let key = self.key.clone();
        let token = i64::try_from(self.token).unwrap_or(i64::MAX);
        let was_lost = self.is_lost();
        async move {
            let deleted = shared.delete_if_created(&key, token).await?;
            if deleted && !was_lost {
                Ok(())
            } else {
                Err(Error::input(
                    ErrorKind::Lost,
                    format!(
                        "the lock {key:?} (token {token}) was lost before it was released: its \
                         lease expired or its key was deleted; someone else may have held the \
                         scope since"
                    ),
                ))
            }
        }
    }
}

impl Drop for EtcdGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let release = self.release_now();
        if Handle::try_current().is_ok() {
            drop(self.shared.handle.spawn(release));
        } else {
            // Errors cannot be reported from a drop; a key left behind goes with the lease.
            let _ = self
                .shared
                .handle
                .block_on(async move { tokio::time::timeout(DROP_RELEASE_BOUND, release).await });
        }
    }
}

/// Tells `tell` when the session's lease is lost or `key` (created at `token`) is deleted.
async fn watch_loss(
    shared: Arc<Shared>,
    mut session_lost: watch::Receiver<bool>,
    key: String,
    token: i64,
    tell: watch::Sender<bool>,
) {
    let mut from = token + 1;
    loop {
        let mut watcher = shared.client.watch_client();
        let options = WatchOptions::new().with_start_revision(from);
        let watching = tokio::select! {
            started = watcher.watch(key.as_str(), Some(options)) => started.ok(),
            _ = session_lost.wait_for(|lost| *lost) => break,
        };
        let Some(mut stream) = watching else {
            // etcd unreachable: the keep-alive decides when that means lost.
            tokio::select! {
                () = tokio::time::sleep(shared.config.lease_ttl() / 3) => continue,
                _ = session_lost.wait_for(|lost| *lost) => break,
            }
        };
        loop {
            tokio::select! {
                message = stream.message() => match message {
                    Ok(Some(answer)) => {
                        if let Some(header) = answer.header() {
                            from = from.max(header.revision() + 1);
                        }
                        if answer
                            .events()
                            .iter()
                            .any(|event| event.event_type() == EventType::Delete)
                        {
                            let _ = tell.send(true);
                            return;
                        }
                        if answer.canceled() {
                            break;
                        }
                    }
                    Ok(None) | Err(_) => break,
                },
                _ = session_lost.wait_for(|lost| *lost) => {
                    let _ = tell.send(true);
                    return;
                }
            }
        }
        // The watch ended (broken, or its start compacted away): is the key still ours?
        let still = shared
            .request(String::new(), |mut kv| {
                let key = key.clone();
                async move { kv.get(key, None).await }
            })
            .await;
        match still {
            Ok(answer) => {
                if answer
                    .kvs()
                    .first()
                    .map(etcd_client::KeyValue::create_revision)
                    != Some(token)
                {
                    break;
                }
                from = answer.header().map_or(from, |header| header.revision() + 1);
            }
            Err(_) => tokio::select! {
                () = tokio::time::sleep(shared.config.lease_ttl() / 3) => {}
                _ = session_lost.wait_for(|lost| *lost) => break,
            },
        }
    }
    let _ = tell.send(true);
}
