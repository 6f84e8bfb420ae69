//! The guards that `LockManager.acquire` keeps, one table for the whole process.
//!
//! The original's `acquire` returns a bool and its caller later names the lock again in
//! `release(loop_name, instance_id)`. Our lock is a [`ScopeGuard`], so between the two calls
//! someone must own the guard: this table does, keyed by lock file, together with the id of the
//! manager that acquired it (`release` only releases what its own manager acquired) and a token
//! (so that a `with manager.hold(...)` block ends only its own hold). The table outlives the
//! managers: a lock acquired through a manager that is then garbage-collected stays held until
//! the process ends, as the original's lock file stayed.
//!
//! Locking discipline: the mutex is taken only while the GIL is held, and nothing inside the
//! critical section waits, calls into Python or drops a guard (dropping releases, which waits
//! for the directory sentinel). So when some thread calls `os.fork` (which holds the GIL),
//! no other thread is inside the critical section and the child finds the mutex free.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use pyo3::prelude::*;
use scope_lock::ScopeGuard;

use crate::errors;

struct Entry {
    manager: u64,
    token: u64,
    guard: ScopeGuard,
}

static TABLE: Mutex<Option<HashMap<PathBuf, Entry>>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh id for a manager or a hold token.
pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

fn table() -> MutexGuard<'static, Option<HashMap<PathBuf, Entry>>> {
    // A panic cannot happen inside the critical sections below (map operations only); if one
    // did, the map is still consistent, so poisoning is ignored.
    TABLE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps `guard` for `manager`; returns its token.
pub(crate) fn keep(manager: u64, guard: ScopeGuard) -> u64 {
    let token = next_id();
    let path = guard.path().to_path_buf();
    let replaced = table().get_or_insert_with(HashMap::new).insert(
        path,
        Entry {
            manager,
            token,
            guard,
        },
    );
    // Only possible if the lock file was deleted by hand and the name acquired again: the old
    // guard's file is gone, and dropping it (outside the mutex) only closes its descriptor.
    drop(replaced);
    token
}

/// Takes out the guard of `path` if `manager` holds it (and, given a token, if it is that
/// hold).
pub(crate) fn take(manager: u64, path: &Path, token: Option<u64>) -> Option<ScopeGuard> {
    let mut table = table();
    let map = table.as_mut()?;
    let entry = map.get(path)?;
    if entry.manager != manager || token.is_some_and(|t| t != entry.token) {
        return None;
    }
    map.remove(path).map(|entry| entry.guard)
}

/// The lock files `manager` holds, sorted.
pub(crate) fn paths_of(manager: u64) -> Vec<PathBuf> {
    let table = table();
    let mut paths: Vec<PathBuf> = table
        .iter()
        .flatten()
        .filter(|(_, entry)| entry.manager == manager)
        .map(|(path, _)| path.clone())
        .collect();
    paths.sort();
    paths
}

/// Registered with `os.register_at_fork(after_in_child=...)`: a child created by `os.fork`
/// (multiprocessing's "fork" start method included) gives up its copies of the parent's lock
/// descriptors at once. The locks stay the parent's, held for exactly as long as the parent
/// holds them: the child can neither release them (nothing of its own is in the table) nor
/// prolong them after the parent is gone. The guards' own fork check makes dropping them here
/// close the descriptors without touching the files.
#[pyfunction]
pub(crate) fn forget_inherited(py: Python<'_>) {
    let inherited = table().take();
    py.detach(move || drop(inherited));
}

/// Registered with `atexit`: releases everything still held when the interpreter exits
/// normally, so the lock files are removed rather than left for the next scan to reclaim. The
/// first failure is raised after all were tried.
#[pyfunction]
pub(crate) fn release_all(py: Python<'_>) -> PyResult<()> {
    let held = table().take();
    let failures = py.detach(move || {
        held.into_iter()
            .flatten()
            .filter_map(|(_, entry)| entry.guard.release().err())
            .collect::<Vec<_>>()
    });
    match failures.first() {
        Some(err) => Err(errors::to_py(py, err)),
        None => Ok(()),
    }
}
