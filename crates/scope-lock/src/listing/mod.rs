//! What a scan of `.running/` finds: live locks, and files that are not (or no longer) readable
//! locks, reported rather than dropped.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

mod problem;

use serde::{Serialize, Serializer};

use crate::record::LockRecord;
use crate::sys::{self, FileId};

pub use problem::{FileKind, ProblemKind, ScanProblem};

/// Every live lock in the directory, and everything the scan could not take for a lock.
///
/// ```
/// use scope_lock::{LockManager, LockRequest, Liveness};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let project = tempfile::tempdir()?;
/// let locks = LockManager::new(project.path().join(".loops"));
/// let _one = locks.try_acquire(&LockRequest::new("gen").instance_id("gen/run-1").scope(["out/1"]))?;
/// let _two = locks.try_acquire(&LockRequest::new("gen").instance_id("gen/run-2").scope(["out/2"]))?;
///
/// let listing = locks.list_locks()?;
/// let names: Vec<&str> = listing.locks().iter().map(|lock| lock.lock_name()).collect();
/// assert_eq!(names, ["gen/run-1", "gen/run-2"]);
/// assert!(listing.locks().iter().all(|lock| lock.liveness() == Liveness::Flock));
/// // Nothing else was found, and nothing was stale.
/// assert!(listing.problems().is_empty() && listing.reclaimed().is_empty());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockListing {
    pub(crate) locks: Vec<LiveLock>,
    pub(crate) problems: Vec<ScanProblem>,
    pub(crate) reclaimed: Vec<PathBuf>,
    pub(crate) orphans: Vec<PathBuf>,
    pub(crate) stale_tickets: Vec<PathBuf>,
    pub(crate) waiters: Vec<Waiter>,
    pub(crate) dry_run: bool,
    /// How long the scan let an unproven file (no flock, no record, no pid) stay unchanged
    /// before it took it for garbage; `None` for a listing no scan made, which never does.
    pub(crate) invalid_grace: Option<std::time::Duration>,
}

impl LockListing {
    /// The live locks, sorted by path.
    pub fn locks(&self) -> &[LiveLock] {
        &self.locks
    }

    /// Files named `*.lock` that are not readable live locks, and stale tickets that could
    /// not be removed ([`ProblemKind::ReclaimFailed`]), sorted by path.
    pub fn problems(&self) -> &[ScanProblem] {
        &self.problems
    }

    /// Stale lock files this scan removed (their holders are gone); for a
    /// [dry run](Self::is_dry_run), those it would have removed, still in place.
    pub fn reclaimed(&self) -> &[PathBuf] {
        &self.reclaimed
    }

    /// Publications left behind by acquirers killed half-way (dot files never given a lock
    /// file's name) that this scan removed; for a [dry run](Self::is_dry_run), those it
    /// would have removed, still in place.
    pub fn orphans(&self) -> &[PathBuf] {
        &self.orphans
    }

    /// Tickets in the waiting queue (`.running/.queue/`) whose waiters are gone (their flock
    /// is free: killed while waiting) that this scan removed, sorted by path; for a
    /// [dry run](Self::is_dry_run), those it would have removed, still in place. Only
    /// [`LockManager::list_locks`](crate::LockManager::list_locks) and
    /// [`list_locks_dry_run`](crate::LockManager::list_locks_dry_run) look at the queue; the
    /// tickets of live waiters are left alone and not listed.
    pub fn stale_tickets(&self) -> &[PathBuf] {
        &self.stale_tickets
    }

    /// The live waiters of the queue (`.running/.queue/`), first in line first: each waits
    /// for its scope in arrival order among those whose scopes overlap. Only
    /// [`LockManager::list_locks`](crate::LockManager::list_locks) and
    /// [`list_locks_dry_run`](crate::LockManager::list_locks_dry_run) read the queue.
    pub fn waiters(&self) -> &[Waiter] {
        &self.waiters
    }

    /// Whether this listing comes from
    /// [`LockManager::list_locks_dry_run`](crate::LockManager::list_locks_dry_run), which changes
    /// nothing: [`reclaimed`](Self::reclaimed), [`orphans`](Self::orphans) and
    /// [`stale_tickets`](Self::stale_tickets) then say what a cleaning scan would remove, and
    /// [`ProblemKind::WouldMoveAside`] what it would move aside.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }
}

/// How a live lock proves it is alive. Named, in text and when serialised, by
/// [`as_str`](Self::as_str).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Its file is flocked by its holder (written by this crate).
    Flock,
    /// Its pid answers `kill(pid, 0)` (written by the original, which holds no flock).
    Pid,
}

impl Liveness {
    /// `"flock"` or `"pid"`; `"flock"` is also the record's `liveness` key for a lock of ours.
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Flock => "flock",
            Liveness::Pid => "pid",
        }
    }
}

/// Shown and serialised as their `as_str()` names, which front ends print as they are.
macro_rules! named_by_as_str {
    ($($kind:ty),*) => {$(
        impl fmt::Display for $kind {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $kind {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    )*};
}

named_by_as_str!(Liveness, FileKind);

/// A live lock found by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveLock {
    pub(crate) path: PathBuf,
    pub(crate) lock_name: String,
    pub(crate) record: LockRecord,
    pub(crate) liveness: Liveness,
    /// The inode the scan found, whose flock holder proves who holds it (see `ancestry`).
    pub(crate) id: FileId,
}

impl LiveLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its name relative to `.running/`, without `.lock` (`generated/run-1` for a nested one).
    pub fn lock_name(&self) -> &str {
        &self.lock_name
    }

    /// Its record.
    pub fn record(&self) -> &LockRecord {
        &self.record
    }

    /// How it proved alive.
    pub fn liveness(&self) -> Liveness {
        self.liveness
    }
}

impl LiveLock {
    /// The command line of the process that holds the lock, where it can be read and that
    /// process is known to be the holder: for a lock of this crate, the process the record
    /// names, once proven to hold the file's flock through its own descriptor (a record can
    /// name any process, and a pid of another pid namespace names a stranger here); for the
    /// original's, the live process its pid names, which is what keeps it alive. `None`
    /// when that cannot be read (another user's process, no `/proc`) or proven. For every
    /// lock of a listing, [`LockListing::holder_commands`] reads each holder's descriptors
    /// once.
    pub fn holder_command(&self) -> Option<Vec<OsString>> {
        holder_commands(std::slice::from_ref(self)).pop().flatten()
    }
}

impl LockListing {
    /// [`LiveLock::holder_command`] of each of [`locks`](Self::locks), in that order, with
    /// each holder's descriptors read once for all its locks: a process holding many locks
    /// has as many descriptors, and proving each lock on its own would read all of them
    /// again for each.
    pub fn holder_commands(&self) -> Vec<Option<Vec<OsString>>> {
        holder_commands(&self.locks)
    }
}

/// The holders' command lines of `locks`, in their order: one walk of each holder's
/// descriptors for all the locks of this crate its record names it as holding, one read of
/// its command line.
fn holder_commands(locks: &[LiveLock]) -> Vec<Option<Vec<OsString>>> {
    let mut flock_files: HashMap<u32, HashSet<FileId>> = HashMap::new();
    for lock in locks.iter().filter(|lock| lock.liveness == Liveness::Flock) {
        flock_files
            .entry(lock.record.pid())
            .or_default()
            .insert(lock.id);
    }
    let proven: HashMap<u32, HashSet<FileId>> = flock_files
        .into_iter()
        .map(|(pid, files)| {
            (
                pid,
                sys::flocks_through_fds(pid, &files).unwrap_or_default(),
            )
        })
        .collect();
    let mut commands: HashMap<u32, Option<Vec<OsString>>> = HashMap::new();
    locks
        .iter()
        .map(|lock| {
            let pid = lock.record.pid();
            let holder = match lock.liveness {
                Liveness::Flock => proven.get(&pid).is_some_and(|held| held.contains(&lock.id)),
                Liveness::Pid => true,
            };
            if !holder {
                return None;
            }
            commands
                .entry(pid)
                .or_insert_with(|| sys::command_line(pid))
                .clone()
        })
        .collect()
}

/// `pid`'s command line, if it holds the flock of `file` through one of its own descriptors.
fn proven_command(pid: u32, file: FileId) -> Option<Vec<OsString>> {
    match sys::holds_flock_through_fd(pid, file) {
        Ok(true) => sys::command_line(pid),
        _ => None,
    }
}

/// A live waiter in the queue: a `run --wait` (or [`LockManager::acquire`](
/// crate::LockManager::acquire)) waiting for its scope, which holds the flock of its ticket
/// (`.running/.queue/<number>`) for as long as it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiter {
    pub(crate) ticket: u64,
    pub(crate) path: PathBuf,
    pub(crate) record: LockRecord,
    pub(crate) lock_name: Option<String>,
    pub(crate) id: FileId,
}

impl Waiter {
    /// Its place in the queue: among waiters whose scopes overlap, the lowest goes first.
    pub fn ticket(&self) -> u64 {
        self.ticket
    }

    /// Its ticket file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The record of the lock it waits to take: its loop name, pid, when it started waiting
    /// (`started_at`) and the scope it waits for.
    pub fn record(&self) -> &LockRecord {
        &self.record
    }

    /// The name of the lock it waits to take (its instance id, else its loop name), as
    /// [`LiveLock::lock_name`] will give it once taken; `None` for a ticket that does not say
    /// (one written by an older scope-lock, or kept in etcd).
    pub fn lock_name(&self) -> Option<&str> {
        self.lock_name.as_deref()
    }

    /// The waiter's command line, as [`LiveLock::holder_command`] reads a holder's: only for
    /// the process proven to hold the ticket's flock.
    pub fn command(&self) -> Option<Vec<OsString>> {
        proven_command(self.record.pid(), self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Front ends print and serialise the name as it is, so it must not drift.
    #[test]
    fn liveness_has_one_name() -> serde_json::Result<()> {
        assert_eq!(Liveness::Flock.to_string(), "flock");
        assert_eq!(serde_json::to_string(&Liveness::Pid)?, r#""pid""#);
        Ok(())
    }
}
