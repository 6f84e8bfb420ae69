//! `_native.Manager`: the crate's [`LockManager`] for the Python `LockManager`, plus the scope
//! helpers. Records and conflicts cross over as plain dicts; the Python half turns them into
//! `ScopeLock`s and exceptions.
//!
//! Every call that may wait (for the directory sentinel, which another process holds while it
//! scans) lets go of the GIL first, so other Python threads run meanwhile.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use scope_lock::{
    AcquireError, Conflict, Liveness, LockManager, LockMode, LockRecord, LockRequest, ProblemKind,
};

use crate::errors;
use crate::held;
use crate::wait;

/// The lock directory `<loops_dir>/.running/` and the locks this manager acquired there.
#[pyclass(module = "scope_lock._native", frozen)]
pub(crate) struct Manager {
    locks: LockManager,
    id: u64,
}

#[pymethods]
impl Manager {
    #[new]
    fn new(loops_dir: PathBuf) -> Self {
        Self {
            locks: LockManager::new(loops_dir),
            id: held::next_id(),
        }
    }

    /// Acquires, waiting as `timeout` says (see [`Patience`]); on success the guard goes into
    /// the process's table. Returns `(token, record)` when held, `(None, conflict)` when
    /// refused or timed out (the conflict's `timed_out` says which).
    /// A wait stops, raising `asyncio.CancelledError`, once `cancel` is cancelled.
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
        cancel: Option<Py<wait::Cancel>>,
    ) -> PyResult<(Option<u64>, Bound<'py, PyDict>)> {
        let request = request(loop_name, scope, instance_id, singleton).with_mode(mode(shared));
        let name = request.lock_name().to_owned();
        let outcome = match Patience::from_timeout(timeout)? {
            Patience::Once => py.detach(|| self.locks.try_acquire(&request)),
            Patience::Until(deadline) => {
                let cancel = cancel.as_ref().map(Py::get);
                wait::acquire_until(py, &self.locks, &request, deadline, cancel)?
            }
        };
        let refused = match outcome {
            Ok(guard) => {
                let record = record_dict(py, guard.record())?;
                return Ok((Some(held::keep(self.id, name, guard)), record));
            }
            Err(refused) => refused,
        };
        Ok((None, refusal_dict(py, &refused)?))
    }

    /// Releases the lock this manager holds for `loop_name`/`instance_id` (only the hold
    /// `token`, when given, whatever the name). Returns whether there was one.
    ///
    /// A relative loops directory means another file once the current directory changes, so
    /// the lock is found by its name among this manager's; only if the manager holds that name
    /// under several directories does the current one choose.
    #[pyo3(signature = (loop_name, instance_id, token=None))]
    fn release(
        &self,
        py: Python<'_>,
        loop_name: String,
        instance_id: Option<String>,
        token: Option<u64>,
    ) -> PyResult<bool> {
        let request = request(loop_name, Vec::new(), instance_id, false);
        // Resolved as the crate resolves it when it acquires; unresolvable (the current
        // directory is gone) only means no lock is here.
        let here = std::path::absolute(self.locks.lock_path(&request)).ok();
        let hold = match token {
            Some(token) => held::Hold::Token(token),
            None => held::Hold::Named {
                name: request.lock_name(),
                here: here.as_deref(),
            },
        };
        let guard = held::take(self.id, &hold).map_err(|held::Ambiguous(paths)| {
            let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            PyValueError::new_err(format!(
                "this manager holds {} locks named {:?}, none under the current directory: \
                 release it from the directory it was acquired in ({})",
                paths.len(),
                request.lock_name(),
                paths.join(", ")
            ))
        })?;
        let Some(guard) = guard else {
            return Ok(false);
        };
        py.detach(move || guard.release())
            .map(|()| true)
            .map_err(|err| errors::to_py(py, &err))
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
        let found = py.detach(|| self.locks.find_scope_conflict(&request));
        match found {
            Ok(Some(conflict)) => conflict_dict(py, &conflict).map(Some),
            Ok(None) => Ok(None),
            Err(err) => Err(errors::to_py(py, &err)),
        }
    }

    /// Whether a live lock (of anyone, this process included) holds the lock file of
    /// `loop_name`/`instance_id` now. A file there whose record cannot be read counts when it
    /// blocks acquires as a live lock does. Changes nothing: a stale lock is not reclaimed
    /// by asking.
    fn is_locked(
        &self,
        py: Python<'_>,
        loop_name: String,
        instance_id: Option<String>,
    ) -> PyResult<bool> {
        let request = request(loop_name, Vec::new(), instance_id, false);
        request.validate().map_err(|err| errors::to_py(py, &err))?;
        let listing = py
            .detach(|| self.locks.list_locks_dry_run())
            .map_err(|err| errors::to_py(py, &err))?;
        let path = self.locks.lock_path(&request);
        Ok(listing
            .locks()
            .iter()
            .any(|lock| lock.lock_name() == request.lock_name())
            || listing
                .problems()
                .iter()
                .any(|problem| problem.blocks() && problem.path() == path))
    }

    /// `(records, problems)`: every live lock's record, and one line per `*.lock` file that is
    /// not a readable live lock.
    fn list_locks<'py>(&self, py: Python<'py>) -> PyResult<(Vec<Bound<'py, PyDict>>, Vec<String>)> {
        let listing = py
            .detach(|| self.locks.list_locks())
            .map_err(|err| errors::to_py(py, &err))?;
        let records = listing
            .locks()
            .iter()
            .map(|lock| record_dict(py, lock.record()))
            .collect::<PyResult<_>>()?;
        let problems = listing
            .problems()
            .iter()
            .filter(|problem| !matches!(problem.kind(), ProblemKind::NotRegular { .. }))
            .map(ToString::to_string)
            .collect();
        Ok((records, problems))
    }

    /// The lock files this manager holds, sorted.
    fn held(&self) -> Vec<PathBuf> {
        held::paths_of(self.id)
    }
}

/// How long an acquire may wait, from Python's `timeout` argument, read as filelock and the
/// standard library's waits read it: `None` waits forever, `0` tries once, a positive number
/// of seconds waits up to that. Positive infinity is forever too (it is the limit of "up to").
/// Negative numbers and NaN are errors rather than a guess: filelock reads `-1` as forever,
/// the original's loop read it as one attempt, so either guess would surprise someone.
pub(crate) enum Patience {
    Once,
    Until(Instant),
}

impl Patience {
    /// # Errors
    ///
    /// `ValueError` naming `timeout` for a negative number or NaN.
    pub(crate) fn from_timeout(timeout: Option<f64>) -> PyResult<Self> {
        let forever = || Self::Until(far_future());
        match timeout {
            None => Ok(forever()),
            Some(0.0) => Ok(Self::Once),
            Some(seconds) if seconds > 0.0 => Ok(Duration::try_from_secs_f64(seconds)
                .ok()
                .and_then(|wait| Instant::now().checked_add(wait))
                // Past what a deadline can be (infinity included): no different from forever.
                .map_or_else(forever, Self::Until)),
            Some(seconds) => Err(PyValueError::new_err(format!(
                "timeout must be None (wait forever), 0 (try once) or a positive number of \
                 seconds, not {}",
                python_float(seconds)
            ))),
        }
    }
}

/// A deadline no wait will reach: a century from now. The monotonic clock counts seconds since
/// boot in 64 bits, so the sum fits; were it ever not to, the wait would be one attempt.
fn far_future() -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(CENTURY).unwrap_or(now)
}

/// A float as Python's `repr` writes it, for the few that messages quote.
fn python_float(value: f64) -> String {
    if value.is_nan() {
        "nan".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        format!("{value:?}")
    }
}

/// An acquire's refusal as the conflict dict `acquire` returns, for either backend; a failure
/// is raised.
pub(crate) fn refusal_dict<'py>(
    py: Python<'py>,
    refused: &AcquireError,
) -> PyResult<Bound<'py, PyDict>> {
    match refused {
        AcquireError::Conflict(conflict) | AcquireError::Timeout(conflict) => {
            let dict = conflict_dict(py, conflict)?;
            dict.set_item("timed_out", refused.is_timeout())?;
            // The library's whole line: "scope is locked: ..." or "timed out waiting for
            // scope: ...".
            dict.set_item("message", refused.to_string())?;
            Ok(dict)
        }
        AcquireError::Failed(err) => Err(errors::to_py(py, err)),
    }
}

/// The question `find_conflict` asks of either backend: is this scope free, to anyone (or, for
/// a singleton, to this loop)? The loop name counts only for a singleton, which the original
/// also gives a name.
pub(crate) fn scope_query(
    scope: Vec<PathBuf>,
    caller_loop_name: Option<String>,
    caller_singleton: bool,
    caller_shared: bool,
) -> LockRequest {
    let singleton = caller_singleton && caller_loop_name.is_some();
    request(caller_loop_name.unwrap_or_default(), scope, None, singleton)
        .with_mode(mode(caller_shared))
}

pub(crate) fn request(
    loop_name: String,
    scope: Vec<PathBuf>,
    instance_id: Option<String>,
    singleton: bool,
) -> LockRequest {
    LockRequest::new(loop_name)
        .scope(scope)
        .optional_instance_id(instance_id)
        .singleton(singleton)
}

pub(crate) fn mode(shared: bool) -> LockMode {
    if shared {
        LockMode::Shared
    } else {
        LockMode::Exclusive
    }
}

/// A record as the keys of its JSON, with `liveness` `"flock"` for ours, `"lease"` for ours on
/// etcd and `None` for the original's.
pub(crate) fn record_dict<'py>(
    py: Python<'py>,
    record: &LockRecord,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("loop_name", record.loop_name())?;
    // As `os.fsdecode` gives them: a byte that is not UTF-8 as its surrogate escape, so that
    // `os.fsencode` gives the path back byte for byte.
    dict.set_item(
        "scope",
        PyList::new(py, record.scope_paths().iter().map(|path| path.as_os_str()))?,
    )?;
    dict.set_item("pid", record.pid())?;
    dict.set_item("started_at", record.started_at())?;
    dict.set_item("singleton", record.singleton())?;
    let liveness = if record.is_lease_liveness() {
        Some("lease")
    } else {
        record
            .is_flock_liveness()
            .then_some(Liveness::Flock.as_str())
    };
    dict.set_item("liveness", liveness)?;
    dict.set_item("mode", record.mode().as_str())?;
    dict.set_item("token", record.token())?;
    Ok(dict)
}

/// A conflict as the keys `ScopeConflict` is made of; `message` is the library's own line.
pub(crate) fn conflict_dict<'py>(
    py: Python<'py>,
    conflict: &Conflict,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("timed_out", false)?;
    dict.set_item("message", conflict.to_string())?;
    dict.set_item("lock_path", conflict.lock_path().to_string_lossy())?;
    dict.set_item("lock_name", conflict.lock_name().to_string_lossy())?;
    dict.set_item("held_by_this_process", conflict.is_held_by_this_process())?;
    dict.set_item("host", conflict.host())?;
    let holder = conflict
        .holder()
        .map(|record| record_dict(py, record))
        .transpose()?;
    if let Some(holder) = &holder {
        // On etcd the token is the key's, not the record's.
        holder.set_item("token", conflict.token())?;
    }
    dict.set_item("holder", holder)?;
    dict.set_item("rule", conflict.rule().as_str())?;
    Ok(dict)
}

/// Whether two normalised paths overlap (equal, or one contains the other).
#[pyfunction]
pub(crate) fn paths_overlap(path1: PathBuf, path2: PathBuf) -> bool {
    scope_lock::paths_overlap(path1, path2)
}

/// Whether any path of one scope overlaps any path of the other.
#[pyfunction]
pub(crate) fn scopes_overlap(scope1: Vec<PathBuf>, scope2: Vec<PathBuf>) -> bool {
    scope_lock::scopes_overlap(&scope1, &scope2)
}

/// A scope entry normalised like `Path(path).resolve()`, as a `str` (surrogate escapes for
/// bytes that are not UTF-8, as `os.fsdecode` writes them).
#[pyfunction]
pub(crate) fn normalize_path(py: Python<'_>, path: PathBuf) -> PyResult<OsString> {
    scope_lock::normalize_path(path)
        .map(PathBuf::into_os_string)
        .map_err(|err| errors::to_py(py, &err))
}

/// `${context.<var>}` templates replaced with `str(context[var])`. The values are rendered by
/// Python's own `str()` here, so any object renders as the original renders it.
#[pyfunction]
pub(crate) fn resolve_scope(
    scope: Vec<PathBuf>,
    context: &Bound<'_, PyDict>,
) -> PyResult<Vec<OsString>> {
    let mut rendered = Vec::with_capacity(context.len());
    for (key, value) in context.iter() {
        // The original looks variables up by the string in the template; other keys can never
        // match one.
        if let Ok(key) = key.extract::<String>() {
            rendered.push((key, value.str()?.to_string()));
        }
    }
    Ok(scope_lock::resolve_scope(&scope, rendered)
        .into_iter()
        .map(PathBuf::into_os_string)
        .collect())
}
