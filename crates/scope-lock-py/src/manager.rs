//! `_native.Manager`: the calls of the Python `LockManager`, over a lock directory
//! ([`Directory`]) or an etcd project ([`Etcd`]). What the two do differently is the
//! [`Backend`] trait; reading Python's arguments, letting go of the GIL and making the dicts
//! that cross back are here, once for both.
//!
//! Every call that may wait (for the directory sentinel, which another process holds while it
//! scans, or for etcd) lets go of the GIL first, so other Python threads run meanwhile.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use scope_lock::etcd::EtcdConfig;
use scope_lock::{AcquireError, Conflict, Error, LockRecord, LockRequest};

use crate::convert::{conflict_dict, mode, record_dict, refusal_dict, request, scope_query};
use crate::directory::Directory;
use crate::errors;
use crate::etcd::Etcd;
use crate::wait::{Cancel, Patience};

/// What a lock directory and etcd do differently behind the same calls.
pub(crate) trait Backend: Send + Sync {
    /// Acquires, waiting as `wait` says and letting go of the GIL meanwhile, and keeps the
    /// guard until [`Backend::release`].
    fn acquire(&self, py: Python<'_>, request: &LockRequest, wait: Wait<'_>) -> Acquired;

    /// Takes out and releases the hold that `token` names or, without one, the lock this
    /// manager holds under `request`'s name; whether there was one.
    fn release(&self, py: Python<'_>, request: &LockRequest, token: Option<u64>) -> PyResult<bool>;

    /// The conflict an acquire of `request` would meet. Called without the GIL.
    fn find_scope_conflict(&self, request: &LockRequest) -> Result<Option<Conflict>, Error>;

    /// Whether a live lock holds `request`'s name now (a valid one), changing nothing. Called
    /// without the GIL.
    fn is_locked(&self, request: &LockRequest) -> Result<bool, Error>;

    /// Every live lock, and one line per lock that is there but is not a readable live lock.
    /// Called without the GIL.
    fn list_locks(&self) -> Result<Listed, Error>;

    /// Where the locks this manager holds are (their lock files, or their keys on etcd),
    /// sorted.
    fn held(&self) -> Vec<PathBuf>;
}

/// How an acquire may wait: for how long, and what stops it early.
pub(crate) struct Wait<'a> {
    pub(crate) patience: Patience,
    /// `hold_async`'s: once cancelled, the wait stops, raising `asyncio.CancelledError` (on
    /// etcd, only before it starts: see [`Etcd`]'s `acquire`).
    pub(crate) cancel: Option<&'a Cancel>,
}

/// An acquire's outcome: the lock, or the crate's refusal; `Err` for what Python raises
/// instead (a signal handler's exception, a cancellation, a failure).
pub(crate) type Acquired = PyResult<Result<Granted, AcquireError>>;

/// A lock an acquire got and the backend keeps.
pub(crate) struct Granted {
    /// What `release` is given to end this hold and no other.
    pub(crate) hold: u64,
    pub(crate) record: LockRecord,
    /// The lock's fencing token (see [`record_dict`]).
    pub(crate) token: Option<u64>,
}

/// What `list_locks` shows: each live lock's record with its fencing token, and the problems.
pub(crate) struct Listed {
    pub(crate) locks: Vec<(LockRecord, Option<u64>)>,
    pub(crate) problems: Vec<String>,
}

/// The locks of a lock directory, `<loops_dir>/.running/`, or of an etcd project
/// (`Manager.etcd`), and the locks this manager acquired there.
#[pyclass(module = "scope_lock._native", frozen)]
pub(crate) struct Manager {
    backend: Box<dyn Backend>,
}

#[pymethods]
impl Manager {
    #[new]
    fn new(loops_dir: PathBuf) -> Self {
        Self {
            backend: Box::new(Directory::new(loops_dir)),
        }
    }

    /// One project's locks on etcd, at `endpoints`, with scopes relative to `root` (default:
    /// the git toplevel of the current directory), on a lease of `lease_ttl` seconds.
    #[staticmethod]
    #[pyo3(signature = (endpoints, project, root=None, lease_ttl=None))]
    fn etcd(
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
        Ok(Self {
            backend: Box::new(Etcd::connect(py, config)?),
        })
    }

    /// Acquires, waiting as `timeout` says (see [`Patience`]); the guard is kept until
    /// `release`. Returns `(token, record)` when held, `(None, conflict)` when refused or timed
    /// out (the conflict's `timed_out` says which).
    #[pyo3(signature = (loop_name, scope, instance_id, singleton, timeout, shared=false, cancel=None))]
    #[allow(clippy::too_many_arguments)] // Python's arguments, one for one.
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
        let request = request(loop_name, scope, instance_id, singleton).with_mode(mode(shared));
        let wait = Wait {
            patience: Patience::from_timeout(timeout)?,
            cancel: cancel.as_ref().map(Py::get),
        };
        match self.backend.acquire(py, &request, wait)? {
            Ok(granted) => Ok((
                Some(granted.hold),
                record_dict(py, &granted.record, granted.token)?,
            )),
            Err(refused) => Ok((None, refusal_dict(py, &refused)?)),
        }
    }

    /// Releases the lock this manager holds for `loop_name`/`instance_id` (only the hold
    /// `token`, when given, whatever the name). Returns whether there was one.
    #[pyo3(signature = (loop_name, instance_id, token=None))]
    fn release(
        &self,
        py: Python<'_>,
        loop_name: String,
        instance_id: Option<String>,
        token: Option<u64>,
    ) -> PyResult<bool> {
        let request = request(loop_name, Vec::new(), instance_id, false);
        self.backend.release(py, &request, token)
    }

    /// The conflict an acquire of `scope` would meet, by the original's rules (overlap, and
    /// singleton when `caller_singleton`), or `None`.
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
        match py.detach(|| self.backend.find_scope_conflict(&request)) {
            Ok(Some(conflict)) => conflict_dict(py, &conflict).map(Some),
            Ok(None) => Ok(None),
            Err(err) => Err(errors::to_py(py, &err)),
        }
    }

    /// Whether a live lock (of anyone, this process included) holds the lock of
    /// `loop_name`/`instance_id` now. Changes nothing: a stale lock is not reclaimed by
    /// asking.
    fn is_locked(
        &self,
        py: Python<'_>,
        loop_name: String,
        instance_id: Option<String>,
    ) -> PyResult<bool> {
        let request = request(loop_name, Vec::new(), instance_id, false);
        request.validate().map_err(|err| errors::to_py(py, &err))?;
        py.detach(|| self.backend.is_locked(&request))
            .map_err(|err| errors::to_py(py, &err))
    }

    /// `(records, problems)`: every live lock's record, and one line per lock that is not a
    /// readable live lock.
    fn list_locks<'py>(&self, py: Python<'py>) -> PyResult<(Vec<Bound<'py, PyDict>>, Vec<String>)> {
        let listed = py
            .detach(|| self.backend.list_locks())
            .map_err(|err| errors::to_py(py, &err))?;
        let records = listed
            .locks
            .iter()
            .map(|(record, token)| record_dict(py, record, *token))
            .collect::<PyResult<_>>()?;
        Ok((records, listed.problems))
    }

    /// Where the locks this manager holds are (lock files, or keys on etcd), sorted.
    fn held(&self) -> Vec<PathBuf> {
        self.backend.held()
    }
}

/// Releases a guard taken out of a backend's keeping, without the GIL; whether there was one.
pub(crate) fn release_taken<G: Send>(
    py: Python<'_>,
    guard: Option<G>,
    release: impl FnOnce(G) -> Result<(), Error> + Send,
) -> PyResult<bool> {
    let Some(guard) = guard else {
        return Ok(false);
    };
    py.detach(move || release(guard))
        .map(|()| true)
        .map_err(|err| errors::to_py(py, &err))
}
