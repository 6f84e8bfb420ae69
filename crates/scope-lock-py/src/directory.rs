//! The lock directory `<loops_dir>/.running/` behind `_native.Manager`: the crate's
//! [`LockManager`], whose guards the process's table ([`held`]) keeps.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use scope_lock::{Conflict, Error, LockManager, LockRequest, ProblemKind};

use crate::held;
use crate::manager::{Acquired, Backend, Granted, Listed, Wait, release_taken};
use crate::wait::{self, Patience};

pub(crate) struct Directory {
    locks: LockManager,
    /// Which of the table's guards are this manager's.
    id: u64,
}

impl Directory {
    pub(crate) fn new(loops_dir: PathBuf) -> Self {
        Self {
            locks: LockManager::new(loops_dir),
            id: held::next_id(),
        }
    }
}

impl Backend for Directory {
    fn acquire(&self, py: Python<'_>, request: &LockRequest, wait: Wait<'_>) -> Acquired {
        let outcome = match wait.patience {
            Patience::Once => py.detach(|| self.locks.try_acquire(request)),
            Patience::Until(deadline) => {
                wait::acquire_until(py, &self.locks, request, deadline, wait.cancel)?
            }
        };
        Ok(outcome.map(|guard| {
            let record = guard.record().clone();
            Granted {
                token: record.token(),
                record,
                hold: held::keep(self.id, request.lock_name().to_owned(), guard),
            }
        }))
    }

    /// A relative loops directory means another file once the current directory changes, so
    /// the lock is found by its name among this manager's; only if the manager holds that name
    /// under several directories does the current one choose.
    fn release(&self, py: Python<'_>, request: &LockRequest, token: Option<u64>) -> PyResult<bool> {
        // Resolved as the crate resolves it when it acquires; unresolvable (the current
        // directory is gone) only means no lock is here.
        let here = std::path::absolute(self.locks.lock_path(request)).ok();
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
        release_taken(py, guard, |guard| guard.release())
    }

    fn find_scope_conflict(&self, request: &LockRequest) -> Result<Option<Conflict>, Error> {
        self.locks.find_scope_conflict(request)
    }

    /// A file there whose record cannot be read counts when it blocks acquires as a live lock
    /// does.
    fn is_locked(&self, request: &LockRequest) -> Result<bool, Error> {
        let listing = self.locks.list_locks_dry_run()?;
        let path = self.locks.lock_path(request);
        Ok(listing
            .locks()
            .iter()
            .any(|lock| lock.lock_name() == request.lock_name())
            || listing
                .problems()
                .iter()
                .any(|problem| problem.blocks() && problem.path() == path))
    }

    fn list_locks(&self) -> Result<Listed, Error> {
        let listing = self.locks.list_locks()?;
        Ok(Listed {
            locks: listing
                .locks()
                .iter()
                .map(|lock| (lock.record().clone(), lock.record().token()))
                .collect(),
            problems: listing
                .problems()
                .iter()
                .filter(|problem| !matches!(problem.kind(), ProblemKind::NotRegular { .. }))
                .map(ToString::to_string)
                .collect(),
        })
    }

    fn held(&self) -> Vec<PathBuf> {
        held::paths_of(self.id)
    }
}
