//! `_native.EtcdManager`: the crate's [`EtcdLockManager`] behind the same calls as
//! [`Manager`](crate::manager::Manager), so that the Python `LockManager(etcd=..., project=...)`
//! is the same class over either backend.
//!
//! Its guards are kept by the manager itself, not in the process's table of lock files: an
//! etcd lock lives on the manager's lease, which only the manager's own thread renews, so the
//! locks cannot outlive it. A child created by `os.fork` has a copy of the manager but none of
//! its threads: there, nothing of it is dropped (dropping would ask etcd through a runtime that
//! no longer runs), and the locks stay the parent's.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::exceptions::asyncio::CancelledError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use scope_lock::LockRecord;
use scope_lock::etcd::{EtcdConfig, EtcdGuard, EtcdLockManager};

use crate::errors;
use crate::held;
use crate::manager::{
    Patience, conflict_dict, mode, record_dict, refusal_dict, request, scope_query,
};
use crate::wait::Cancel;

/// One project's locks on etcd, and the locks this manager holds there.
#[pyclass(module = "scope_lock._native", frozen)]
pub(crate) struct EtcdManager {
    locks: EtcdLockManager,
    /// Hold token -> (lock name, guard).
    held: Mutex<HashMap<u64, (String, EtcdGuard)>>,
    /// The process that connected: only it may end the manager and its guards.
    owner_pid: u32,
}

impl Drop for EtcdManager {
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

#[pymethods]
impl EtcdManager {
    #[new]
    #[pyo3(signature = (endpoints, project, root=None, lease_ttl=None))]
    fn new(
        py: Python<'_>,
        endpoints: Vec<String>,
        project: String,
        root: Option<PathBuf>,
        lease_ttl: Option<f64>,
    ) -> PyResult<Self> {
        let mut config = EtcdConfig::new(endpoints, project);
        if let Some(root) = root {
            config = config.with_root(root);
        }
        if let Some(seconds) = lease_ttl {
            let ttl = Duration::try_from_secs_f64(seconds).map_err(|_| {
                PyValueError::new_err(format!(
                    "lease_ttl must be a positive number of seconds, not {seconds}"
                ))
            })?;
            config = config.with_lease_ttl(ttl);
        }
        let locks = py
            .detach(|| EtcdLockManager::connect(config))
            .map_err(|err| errors::to_py(py, &err))?;
        Ok(Self {
            locks,
            held: Mutex::new(HashMap::new()),
            owner_pid: std::process::id(),
        })
    }

    /// As `Manager.acquire`; the record's `token` is the lock key's create revision.
    ///
    /// `cancel` (`hold_async`'s) is looked at before the wait starts only: unwinding out of a
    /// wait on etcd, as the local manager's wait does, would leave its ticket on the lease,
    /// blocking the waiters behind it until the manager ends. A cancelled wait on etcd ends
    /// at its timeout.
    #[pyo3(signature = (loop_name, scope, instance_id, singleton, timeout, shared=false, cancel=None))]
    // The local Manager's call, argument for argument.
    #[allow(clippy::too_many_arguments)]
    fn acquire<'py>(
        &self,
        py: Python<'py>,
        loop_name: String,
        scope: Vec<PathBuf>,
        instance_id: Option<String>,
        singleton: bool,
        timeout: Option<f64>,
        shared: bool,
        cancel: Option<Py<Cancel>>,
    ) -> PyResult<(Option<u64>, Bound<'py, PyDict>)> {
        if cancel
            .as_ref()
            .is_some_and(|cancel| cancel.get().is_cancelled())
        {
            return Err(CancelledError::new_err(
                "the wait for the scope was cancelled",
            ));
        }
        let request = request(loop_name, scope, instance_id, singleton).with_mode(mode(shared));
        let name = request.lock_name().to_owned();
        let patience = Patience::from_timeout(timeout)?;
        let outcome = py.detach(|| match patience {
            Patience::Once => self.locks.try_acquire(&request),
            Patience::Until(deadline) => self.locks.acquire_until(&request, deadline),
        });
        let refused = match outcome {
            Ok(guard) => {
                let record = lease_record_dict(py, guard.record(), guard.token())?;
                let token = held::next_id();
                self.table().insert(token, (name, guard));
                return Ok((Some(token), record));
            }
            Err(refused) => refused,
        };
        Ok((None, refusal_dict(py, &refused)?))
    }

    /// As `Manager.release`.
    #[pyo3(signature = (loop_name, instance_id, token=None))]
    fn release(
        &self,
        py: Python<'_>,
        loop_name: String,
        instance_id: Option<String>,
        token: Option<u64>,
    ) -> PyResult<bool> {
        let request = request(loop_name, Vec::new(), instance_id, false);
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
        let Some((_, guard)) = guard else {
            return Ok(false);
        };
        py.detach(move || guard.release())
            .map(|()| true)
            .map_err(|err| errors::to_py(py, &err))
    }

    /// As `Manager.find_conflict`.
    #[pyo3(signature = (scope, caller_loop_name, caller_singleton, caller_shared=false))]
    fn find_conflict<'py>(
        &self,
        py: Python<'py>,
        scope: Vec<PathBuf>,
        caller_loop_name: Option<String>,
        caller_singleton: bool,
        caller_shared: bool,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let request = scope_query(scope, caller_loop_name, caller_singleton, caller_shared);
        match py.detach(|| self.locks.find_scope_conflict(&request)) {
            Ok(Some(conflict)) => conflict_dict(py, &conflict).map(Some),
            Ok(None) => Ok(None),
            Err(err) => Err(errors::to_py(py, &err)),
        }
    }

    /// As `Manager.is_locked`: whether a live lock of that name is held on etcd.
    fn is_locked(
        &self,
        py: Python<'_>,
        loop_name: String,
        instance_id: Option<String>,
    ) -> PyResult<bool> {
        let request = request(loop_name, Vec::new(), instance_id, false);
        request.validate().map_err(|err| errors::to_py(py, &err))?;
        let listing = py
            .detach(|| self.locks.list_locks())
            .map_err(|err| errors::to_py(py, &err))?;
        Ok(listing
            .locks()
            .iter()
            .any(|lock| lock.lock_name() == request.lock_name()))
    }

    /// `(records, [])`: every lock's record on etcd (there are no lock files to be problems).
    fn list_locks<'py>(&self, py: Python<'py>) -> PyResult<(Vec<Bound<'py, PyDict>>, Vec<String>)> {
        let listing = py
            .detach(|| self.locks.list_locks())
            .map_err(|err| errors::to_py(py, &err))?;
        let records = listing
            .locks()
            .iter()
            .map(|lock| lease_record_dict(py, lock.record(), lock.token()))
            .collect::<PyResult<_>>()?;
        Ok((records, Vec::new()))
    }

    /// The keys of the locks this manager holds, sorted.
    fn held(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .table()
            .values()
            .map(|(_, guard)| guard.key().to_owned())
            .collect();
        keys.sort();
        keys
    }
}

impl EtcdManager {
    fn table(&self) -> MutexGuard<'_, HashMap<u64, (String, EtcdGuard)>> {
        // Map operations only: a panic cannot leave it inconsistent.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A record of etcd as `record_dict` makes it, with the key's create revision as its token.
fn lease_record_dict<'py>(
    py: Python<'py>,
    record: &LockRecord,
    token: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = record_dict(py, record)?;
    dict.set_item("token", token)?;
    Ok(dict)
}
