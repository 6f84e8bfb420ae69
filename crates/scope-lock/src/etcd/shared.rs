//! What a manager and its guards share: the runtime that keeps leases alive in the
//! background, the client, the project's keys and root, and the current session.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use etcd_client::{Client, Compare, CompareOp, KvClient, Txn, TxnOp};
use tokio::runtime::{Handle, Runtime};

use super::config::EtcdConfig;
use super::keys::Keys;
use super::retry::retrying;
use super::root::Root;
use super::session::Session;
use super::state::{self, State};
use super::value::host_name;
use crate::error::{Error, ErrorKind};

/// The shared state of one manager.
pub(crate) struct Shared {
    pub(crate) config: EtcdConfig,
    pub(crate) keys: Keys,
    pub(crate) root: Root,
    pub(crate) host: String,
    pub(crate) client: Client,
    pub(crate) handle: Handle,
    session: tokio::sync::Mutex<Option<Arc<Session>>>,
    tickets: AtomicU64,
    /// Last, so that it goes last; `None` only while dropping.
    runtime: Option<Runtime>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("root", &self.root)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Connects, on a runtime of its own whose one thread keeps the leases alive whatever
    /// the caller's threads do.
    pub(crate) fn connect(config: EtcdConfig) -> Result<Self, Error> {
        config.validate()?;
        let root = Root::find(config.root())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("scope-lock-etcd")
            .enable_all()
            .build()
            .map_err(|err| Error::etcd("cannot start the etcd client's thread".to_owned(), err))?;
        let handle = runtime.handle().clone();
        let connecting = config.clone();
        let client = block_on(&handle, async move { connecting.connect().await })??;
        Ok(Self {
            keys: Keys::new(&config),
            root,
            host: host_name(),
            client,
            handle,
            config,
            session: tokio::sync::Mutex::new(None),
            tickets: AtomicU64::new(0),
            runtime: Some(runtime),
        })
    }

    /// The live session, a new one if there is none or the last was lost.
    pub(crate) async fn session(&self) -> Result<Arc<Session>, Error> {
        let mut current = self.session.lock().await;
        if let Some(session) = current.as_ref().filter(|it| !it.is_lost()) {
            return Ok(Arc::clone(session));
        }
        let session = Arc::new(
            Session::start(
                &self.client,
                self.config.lease_ttl_secs(),
                self.config.request_timeout(),
            )
            .await?,
        );
        *current = Some(Arc::clone(&session));
        Ok(session)
    }

    /// The lease of the live session, if there is one (without starting one).
    pub(crate) async fn current_lease(&self) -> Option<i64> {
        let current = self.session.lock().await;
        current
            .as_ref()
            .filter(|it| !it.is_lost())
            .map(|it| it.lease())
    }

    /// The project's keys at the current revision.
    pub(crate) async fn read(&self, own_lease: Option<i64>) -> Result<State, Error> {
        state::read(
            &self.client,
            &self.keys,
            &self.root,
            own_lease,
            self.config.request_timeout(),
        )
        .await
    }

    /// One KV request that may be sent again (a read, or a transaction whose compare makes a
    /// repeat harmless), within the request timeout; `what` says what failed.
    pub(crate) async fn request<T, F, Fut>(&self, what: String, mut call: F) -> Result<T, Error>
    where
        F: FnMut(KvClient) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        retrying(self.config.request_timeout(), what, || {
            call(self.client.kv_client())
        })
        .await
    }

    /// One KV request sent once: one whose repeat could do twice what it did once.
    pub(crate) async fn request_once<T, Fut>(
        &self,
        what: String,
        call: impl FnOnce(KvClient) -> Fut,
    ) -> Result<T, Error>
    where
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        match tokio::time::timeout(self.config.request_timeout(), call(self.client.kv_client()))
            .await
        {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(err)) => Err(Error::etcd(what, err)),
            Err(elapsed) => Err(Error::etcd(what, elapsed)),
        }
    }

    /// Deletes `key` if it is still the key created at `revision`: ours, not a successor's.
    /// Whether it was.
    pub(crate) async fn delete_if_created(&self, key: &str, revision: i64) -> Result<bool, Error> {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, revision)])
            .and_then([TxnOp::delete(key, None)]);
        let answer = self
            .request(format!("cannot delete {key:?}"), |mut kv| {
                let txn = txn.clone();
                async move { kv.txn(txn).await }
            })
            .await?;
        Ok(answer.succeeded())
    }

    /// A number for a new ticket, unique within this manager (and so within its lease).
    pub(crate) fn next_ticket(&self) -> u64 {
        self.tickets.fetch_add(1, Ordering::Relaxed)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Every guard is gone (each holds this): revoke the lease so that tickets left by a
        // cancelled wait go now rather than at the TTL; then stop the runtime without
        // waiting for it, which would panic inside an async caller.
        if let Ok(mut session) = self.session.try_lock()
            && let Some(session) = session.take()
            && Handle::try_current().is_err()
        {
            let client = self.client.clone();
            let timeout = self.config.request_timeout();
            self.handle
                .block_on(async move { session.revoke(&client, timeout).await });
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs `future` on `handle` and waits for it, from a thread that is not running async code;
/// from one that is, an error that says to use the async manager (blocking there would stall
/// the caller's runtime, and tokio refuses it with a panic).
pub(crate) fn block_on<F>(handle: &Handle, future: F) -> Result<F::Output, Error>
where
    F: Future,
{
    refuse_async()?;
    Ok(handle.block_on(future))
}

/// An error when the calling thread runs async code, where the blocking calls must not run.
pub(crate) fn refuse_async() -> Result<(), Error> {
    if Handle::try_current().is_ok() {
        return Err(Error::input(
            ErrorKind::Etcd,
            "a blocking etcd call (EtcdLockManager, EtcdGuard::release) was made from async \
             code; use AsyncEtcdLockManager and EtcdGuard::release_async there"
                .to_owned(),
        ));
    }
    Ok(())
}
