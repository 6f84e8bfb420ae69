//! One etcd project behind `_native.Manager` (`LockManager(etcd=..., project=...)`): the
//! crate's [`EtcdLockManager`], behind the same calls as a lock directory.
//!
//! Its guards are kept by the manager itself, not in the process's table of lock files: an
//! etcd lock lives on the manager's lease, which only the manager's own thread renews, so the
//! locks cannot outlive it. A child created by `os.fork` has a copy of the manager but none of
//! its threads: there, nothing of it is dropped (dropping would ask etcd through a runtime that
//! no longer runs), and the locks stay the parent's.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use pyo3::exceptions::asyncio::CancelledError;
use pyo3::prelude::*;
use scope_lock::etcd::{EtcdConfig, EtcdGuard, EtcdLockManager};
use scope_lock::{Conflict, Error, LockRequest};

use crate::errors;
use crate::held;
use crate::manager::{Acquired, Backend, Granted, Listed, Wait, release_taken};
use crate::wait::{Cancel, Patience};

pub(crate) struct Etcd {
    locks: EtcdLockManager,
    /// Hold token -> (lock name, guard).
    held: Mutex<HashMap<u64, (String, EtcdGuard)>>,
    /// The process that connected: only it may end the manager and its guards.
    owner_pid: u32,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if std::process::id() != self.owner_pid {
            // A forked child: leak the copies (a reference to the shared state, which then
            // never reaches zero, and the guards), so that nothing here asks etcd.
            std::mem::forget(self.locks.clone());
            let held = std::mem::take(self.held.get_mut().unwrap_or_else(PoisonError::into_inner));
            std::mem::forget(held);
        }
    }
}

impl Etcd {
    /// Connects, without the GIL, as `config` says.
    ///
    /// # Errors
    ///
    /// The crate's error, as Python's exception, when it cannot connect.
    pub(crate) fn connect(py: Python<'_>, config: EtcdConfig) -> PyResult<Self> {
        let locks = py
            .detach(|| EtcdLockManager::connect(config))
            .map_err(|err| errors::to_py(py, &err))?;
        Ok(Self {
            locks,
            held: Mutex::new(HashMap::new()),
            owner_pid: std::process::id(),
        })
    }

    fn table(&self) -> MutexGuard<'_, HashMap<u64, (String, EtcdGuard)>> {
        // Map operations only: a panic cannot leave it inconsistent.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Backend for Etcd {
    /// The record's `token` is the lock key's create revision.
    ///
    /// `wait.cancel` is looked at before the wait starts only: unwinding out of a
    /// wait on etcd, as the local manager's wait does, would leave its ticket on the lease,
    /// blocking the waiters behind it until the manager ends. A cancelled wait on etcd ends
    /// at its timeout.
    fn acquire(&self, py: Python<'_>, request: &LockRequest, wait: Wait<'_>) -> Acquired {
        if wait.cancel.is_some_and(Cancel::is_cancelled) {
            return Err(CancelledError::new_err(
                "the wait for the scope was cancelled",
            ));
        }
        let outcome = py.detach(|| match wait.patience {
            Patience::Once => self.locks.try_acquire(request),
            Patience::Until(deadline) => self.locks.acquire_until(request, deadline),
        });
        Ok(outcome.map(|guard| {
            let granted = Granted {
                hold: held::next_id(),
                record: guard.record().clone(),
                token: Some(guard.token()),
            };
            let name = request.lock_name().to_owned();
            self.table().insert(granted.hold, (name, guard));
            granted
        }))
    }

    fn release(&self, py: Python<'_>, request: &LockRequest, token: Option<u64>) -> PyResult<bool> {
        let guard = {
            let mut table = self.table();
            let key = match token {
                Some(token) => table.contains_key(&token).then_some(token),
                None => table
                    .iter()
                    .find(|(_, (name, _))| name == request.lock_name())
                    .map(|(token, _)| *token),
            };
            key.and_then(|key| table.remove(&key))
        };
        release_taken(py, guard, |(_, guard)| guard.release())
    }

    fn find_scope_conflict(&self, request: &LockRequest) -> Result<Option<Conflict>, Error> {
        self.locks.find_scope_conflict(request)
    }

    fn is_locked(&self, request: &LockRequest) -> Result<bool, Error> {
        Ok(self
            .locks
            .list_locks()?
            .locks()
            .iter()
            .any(|lock| lock.lock_name() == request.lock_name()))
    }

    /// There are no lock files to be problems.
    fn list_locks(&self) -> Result<Listed, Error> {
        Ok(Listed {
            locks: self
                .locks
                .list_locks()?
                .locks()
                .iter()
                .map(|lock| (lock.record().clone(), Some(lock.token())))
                .collect(),
            problems: Vec::new(),
        })
    }

    fn held(&self) -> Vec<PathBuf> {
        let mut keys: Vec<PathBuf> = self
            .table()
            .values()
            .map(|(_, guard)| PathBuf::from(guard.key()))
            .collect();
        keys.sort();
        keys
    }
}
