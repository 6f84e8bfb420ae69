//! The guards that `LockManager.acquire` keeps, one table for the whole process.
//!
//! The original's `acquire` returns a bool and its caller later names the lock again in
//! `release(loop_name, instance_id)`. Our lock is a [`ScopeGuard`], so between the two calls
//! someone must own the guard: this table does, keyed by lock file, together with the id of the
//! manager that acquired it (`release` only releases what its own manager acquired), the lock's
//! name and a token (so that a `with manager.hold(...)` block ends only its own hold). The table
//! outlives the managers: a lock acquired through a manager that is then garbage-collected stays
//! held until the process ends, as the original's lock file stayed.
//!
//! The key is the guard's own path, which the crate made absolute when it acquired. A release
//! finds its lock by name (or by token), not by a path built again from the loops directory:
//! that directory is relative by default, and the current directory may have changed since.
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
    /// The request's lock name: the file's name under `.running/`, without `.lock`.
    name: String,
    guard: ScopeGuard,
}

/// Which of a manager's holds a release ends.
pub(crate) enum Hold<'a> {
    /// The hold that got this token (a `with manager.hold(...)` block's own).
    Token(u64),
    /// The lock of this name; if the manager holds several (acquired under different current
    /// directories), the one at `here`, the name's lock file under the current directory.
    Named {
        name: &'a str,
        here: Option<&'a Path>,
    },
}

/// A release by name that could mean more than one lock.
pub(crate) struct Ambiguous(pub(crate) Vec<PathBuf>);

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

/// Keeps `guard`, acquired by `manager` under `name`; returns its token.
pub(crate) fn keep(manager: u64, name: String, guard: ScopeGuard) -> u64 {
    let token = next_id();
    let path = guard.path().to_path_buf();
    let replaced = table().get_or_insert_with(HashMap::new).insert(
        path,
        Entry {
            manager,
            token,
            name,
            guard,
        },
    );
    // Only possible if the lock file was deleted by hand and the name acquired again: the old
    // guard's file is gone, and dropping it (outside the mutex) only closes its descriptor.
    drop(replaced);
    token
}

/// Takes out `manager`'s guard that `hold` names, if it has one.
///
/// # Errors
///
/// [`Ambiguous`] when `hold` is a name the manager holds several locks under, none at `here`.
pub(crate) fn take(manager: u64, hold: &Hold<'_>) -> Result<Option<ScopeGuard>, Ambiguous> {
    let mut table = table();
    let Some(map) = table.as_mut() else {
        return Ok(None);
    };
    let key = match *hold {
        Hold::Token(token) => map
            .iter()
            .find(|(_, entry)| entry.manager == manager && entry.token == token)
            .map(|(path, _)| path.clone()),
        Hold::Named { name, here } => {
            let mut named: Vec<&PathBuf> = map
                .iter()
                .filter(|(_, entry)| entry.manager == manager && entry.name == name)
                .map(|(path, _)| path)
                .collect();
            match named.as_slice() {
                [] => None,
                // Wherever the current directory is now: this manager has no other lock of
                // that name that the caller could mean.
                [only] => Some((*only).clone()),
                several => match several.iter().find(|path| Some(path.as_path()) == here) {
                    Some(path) => Some((*path).clone()),
                    None => {
                        named.sort();
                        return Err(Ambiguous(named.into_iter().cloned().collect()));
                    }
                },
            }
        }
    };
    Ok(key
        .and_then(|key| map.remove(&key))
        .map(|entry| entry.guard))
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
