//! What crosses between Python and the crate: Python's arguments as a [`LockRequest`], and
//! records and conflicts as the plain dicts the Python half turns into `ScopeLock`s and
//! exceptions.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use scope_lock::{AcquireError, Conflict, Liveness, LockMode, LockRecord, LockRequest};

use crate::errors;

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

/// The question `find_conflict` asks: is this scope free, to anyone (or, for a singleton, to
/// this loop)? The loop name counts only for a singleton, which the original also gives a name.
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

/// A record as the keys of its JSON, with `liveness` `"flock"` for ours, `"lease"` for ours on
/// etcd and `None` for the original's. `token` is the lock's fencing token: the record's own in
/// a lock directory, the key's create revision on etcd.
pub(crate) fn record_dict<'py>(
    py: Python<'py>,
    record: &LockRecord,
    token: Option<u64>,
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
    dict.set_item("token", token)?;
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
    // On etcd the token is the key's, not the record's.
    let holder = conflict
        .holder()
        .map(|record| record_dict(py, record, conflict.token()))
        .transpose()?;
    dict.set_item("holder", holder)?;
    dict.set_item("rule", conflict.rule().as_str())?;
    Ok(dict)
}

/// An acquire's refusal as the conflict dict `acquire` returns; a failure is raised.
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
