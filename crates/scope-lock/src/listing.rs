//! What a scan of `.running/` finds: live locks, and files that are not (or no longer) readable
//! locks, reported rather than dropped.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

use crate::record::LockRecord;
use crate::request::lock_name_of;
use crate::sys::{self, FileId, FileType};

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
    /// when that cannot be read (another user's process, no `/proc`) or proven.
    pub fn holder_command(&self) -> Option<Vec<OsString>> {
        let pid = self.record.pid();
        match self.liveness {
            Liveness::Flock => proven_command(pid, self.id),
            Liveness::Pid => sys::command_line(pid),
        }
    }
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

/// A `*.lock` entry that a scan could not take for a live lock (or a stale ticket of the
/// waiting queue that it could not remove).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanProblem {
    pub(crate) path: PathBuf,
    pub(crate) kind: ProblemKind,
}

/// What is wrong with a [`ScanProblem`]; [`as_str`](Self::as_str) names each kind for machines.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// Not a regular file (a symlink, FIFO, socket or device): not a lock; left alone.
    NotRegular {
        /// What it is instead.
        file_kind: FileKind,
    },
    /// Could not be opened, probed or read. It might be a live lock, so it blocks acquires.
    Unreadable {
        /// The I/O error.
        reason: String,
    },
    /// Flocked, so its holder is alive, but its record is invalid. Its scope is unknown, so it
    /// blocks acquires.
    BlocksHeldInvalid {
        /// Why the record is invalid.
        reason: String,
    },
    /// Not flocked, its record is invalid, and nothing proves its holder gone: it has no
    /// marker of ours (so it may be the original's, which holds no flock) and its `pid` is
    /// alive or cannot be read. It might be a live lock of unknown scope, so it blocks
    /// acquires, and it is left as it is.
    BlocksMaybeLive {
        /// Why the record is invalid.
        reason: String,
        /// The pid read from it, alive; `None` when no pid could be read.
        pid: Option<u32>,
    },
    /// Not flocked, its record is invalid, and its holder is provably gone (our marker, or
    /// a dead pid): moved aside to a dot file that scans skip (never deleted). If even the
    /// move failed, it is left in place, `moved_to` is `None` and the reason says why.
    MovedAside {
        /// Why the record is invalid (and, when the move failed, why that failed).
        reason: String,
        /// Where it now is, if it was moved.
        moved_to: Option<PathBuf>,
    },
    /// As [`MovedAside`](Self::MovedAside) (not flocked, record invalid, holder provably
    /// gone), found by a [dry run](LockListing::is_dry_run), which left it in place: a
    /// cleaning scan would move it aside.
    WouldMoveAside {
        /// Why the record is invalid.
        reason: String,
    },
    /// Stale (its holder is gone) but could not be removed.
    ReclaimFailed {
        /// The I/O error.
        reason: String,
    },
}

impl ProblemKind {
    /// The kind's name for machines (the CLI's JSON, the Python binding): `not_regular`,
    /// `unreadable`, `held_invalid`, `invalid_maybe_live`, `invalid` (moved aside, or not
    /// movable), `invalid_stale` (would be moved aside) or `reclaim_failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProblemKind::NotRegular { .. } => "not_regular",
            ProblemKind::Unreadable { .. } => "unreadable",
            ProblemKind::BlocksHeldInvalid { .. } => "held_invalid",
            ProblemKind::BlocksMaybeLive { .. } => "invalid_maybe_live",
            ProblemKind::MovedAside { .. } => "invalid",
            ProblemKind::WouldMoveAside { .. } => "invalid_stale",
            ProblemKind::ReclaimFailed { .. } => "reclaim_failed",
        }
    }

    /// Why, in words: the error or the record's fault; for
    /// [`NotRegular`](Self::NotRegular), what the entry is instead.
    pub fn reason(&self) -> &str {
        match self {
            ProblemKind::NotRegular { file_kind } => file_kind.as_str(),
            ProblemKind::Unreadable { reason }
            | ProblemKind::BlocksHeldInvalid { reason }
            | ProblemKind::BlocksMaybeLive { reason, .. }
            | ProblemKind::MovedAside { reason, .. }
            | ProblemKind::WouldMoveAside { reason }
            | ProblemKind::ReclaimFailed { reason } => reason,
        }
    }
}

/// What a directory entry is when it is not a regular file. Named, in text and when
/// serialised, by [`as_str`](Self::as_str).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A symbolic link (never followed in the lock directory).
    Symlink,
    /// A directory.
    Directory,
    /// A named pipe.
    Fifo,
    /// A Unix domain socket.
    Socket,
    /// A block or character device.
    Device,
    /// Anything else the system may have.
    Other,
}

impl FileKind {
    /// What `file_type` is, or `None` for a regular file.
    pub(crate) fn of(file_type: FileType) -> Option<Self> {
        Some(match file_type {
            FileType::RegularFile => return None,
            FileType::Symlink => FileKind::Symlink,
            FileType::Directory => FileKind::Directory,
            FileType::Fifo => FileKind::Fifo,
            FileType::Socket => FileKind::Socket,
            FileType::BlockDevice | FileType::CharacterDevice => FileKind::Device,
            FileType::Unknown => FileKind::Other,
        })
    }

    /// The name used in messages: "symlink", "directory", "FIFO", "socket", "device",
    /// "special file".
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Symlink => "symlink",
            FileKind::Directory => "directory",
            FileKind::Fifo => "FIFO",
            FileKind::Socket => "socket",
            FileKind::Device => "device",
            FileKind::Other => "special file",
        }
    }
}

impl ScanProblem {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What is wrong.
    pub fn kind(&self) -> &ProblemKind {
        &self.kind
    }

    /// Whether this entry must be treated as a live lock of unknown scope.
    pub fn blocks(&self) -> bool {
        matches!(
            self.kind,
            ProblemKind::Unreadable { .. }
                | ProblemKind::BlocksHeldInvalid { .. }
                | ProblemKind::BlocksMaybeLive { .. }
        )
    }
}

/// Why a file of [`ProblemKind::BlocksMaybeLive`] at `path` is treated as held, and what the
/// user can do about it.
fn maybe_live_reason(path: &Path, pid: Option<u32>) -> String {
    let force = format!("`scope-lock break {} --force`", lock_name(path));
    match pid {
        Some(pid) => format!(
            "not flocked and not written by scope-lock, and its pid {pid} is alive: treated as \
             held. If pid {pid} is not the little-loops loop that wrote it, {force} moves it \
             aside"
        ),
        None => format!(
            "not flocked and not written by scope-lock, and no pid can be read to prove it \
             stale: treated as held while it may be a lock being written. Scans move it aside \
             once it has been left unchanged for the grace (a minute, unless \
             `LockManager::with_invalid_grace` or `--invalid-grace` says otherwise); if \
             nothing is writing it, {force} moves it aside now"
        ),
    }
}

/// A lock file's name as commands take it, for messages.
fn lock_name(path: &Path) -> String {
    lock_name_of(path).to_string_lossy().into_owned()
}

impl ScanProblem {
    /// What is wrong, what the scan did about it and, for a file that blocks, what the user
    /// can do: the message without the path in front.
    pub(crate) fn what(&self) -> String {
        match &self.kind {
            ProblemKind::NotRegular { file_kind } => {
                format!("is a {file_kind}, not a lock file; left alone")
            }
            ProblemKind::Unreadable { reason } => format!(
                "cannot be read ({reason}); treated as held. Its owner or root can make it \
                 readable or remove it"
            ),
            ProblemKind::BlocksHeldInvalid { reason } => format!(
                "held, but {reason}; treated as held. `scope-lock break {}` shows who holds it",
                lock_name(&self.path)
            ),
            ProblemKind::BlocksMaybeLive { reason, pid } => {
                format!("{reason}; {}", maybe_live_reason(&self.path, *pid))
            }
            ProblemKind::MovedAside {
                reason,
                moved_to: Some(to),
            } => format!("{reason}; not held, moved aside to {}", to.display()),
            ProblemKind::MovedAside {
                reason,
                moved_to: None,
            } => format!("{reason}; not held, could not be moved aside"),
            ProblemKind::WouldMoveAside { reason } => {
                format!("{reason}; not held, would be moved aside")
            }
            ProblemKind::ReclaimFailed { reason } => {
                format!("stale, but cannot be removed ({reason})")
            }
        }
    }
}

impl fmt::Display for ScanProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.what())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::os::unix::net::UnixListener;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn kind_of(path: &Path) -> Result<Option<FileKind>, std::io::Error> {
        Ok(FileKind::of(crate::sys::lstat_type(path)?))
    }

    /// Every kind of entry a lock directory may hold is named for what it is; a regular file
    /// is not a "kind" at all. (FIFOs are covered by the bad-input tests, which need a FIFO
    /// made without spawning.)
    #[test]
    fn each_file_type_is_named_for_what_it_is() -> TestResult {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("file.lock");
        fs::write(&file, "{}")?;
        let link = dir.path().join("link.lock");
        symlink(&file, &link)?;
        let sub = dir.path().join("sub.lock");
        fs::create_dir(&sub)?;
        let socket = dir.path().join("socket.lock");
        let _listener = UnixListener::bind(&socket)?;

        assert_eq!(kind_of(&file)?, None);
        assert_eq!(kind_of(&link)?, Some(FileKind::Symlink));
        assert_eq!(kind_of(&sub)?, Some(FileKind::Directory));
        assert_eq!(kind_of(&socket)?, Some(FileKind::Socket));
        // A character device that every Unix has.
        assert_eq!(kind_of(Path::new("/dev/null"))?, Some(FileKind::Device));
        Ok(())
    }

    /// Front ends print and serialise these names as they are, so they must not drift.
    #[test]
    fn liveness_file_kinds_and_problem_kinds_have_one_name_each() -> serde_json::Result<()> {
        assert_eq!(Liveness::Flock.to_string(), "flock");
        assert_eq!(serde_json::to_string(&Liveness::Pid)?, r#""pid""#);
        assert_eq!(serde_json::to_string(&FileKind::Fifo)?, r#""FIFO""#);
        let reason = || "why".to_owned();
        let kinds = [
            (
                ProblemKind::NotRegular {
                    file_kind: FileKind::Socket,
                },
                "not_regular",
                "socket",
            ),
            (
                ProblemKind::Unreadable { reason: reason() },
                "unreadable",
                "why",
            ),
            (
                ProblemKind::BlocksHeldInvalid { reason: reason() },
                "held_invalid",
                "why",
            ),
            (
                ProblemKind::BlocksMaybeLive {
                    reason: reason(),
                    pid: Some(7),
                },
                "invalid_maybe_live",
                "why",
            ),
            (
                ProblemKind::MovedAside {
                    reason: reason(),
                    moved_to: None,
                },
                "invalid",
                "why",
            ),
            (
                ProblemKind::WouldMoveAside { reason: reason() },
                "invalid_stale",
                "why",
            ),
            (
                ProblemKind::ReclaimFailed { reason: reason() },
                "reclaim_failed",
                "why",
            ),
        ];
        for (kind, name, why) in kinds {
            assert_eq!((kind.as_str(), kind.reason()), (name, why), "{kind:?}");
        }
        Ok(())
    }

    #[test]
    fn file_kinds_and_problems_read_as_what_they_are() {
        let names = [
            (FileKind::Symlink, "symlink"),
            (FileKind::Directory, "directory"),
            (FileKind::Fifo, "FIFO"),
            (FileKind::Socket, "socket"),
            (FileKind::Device, "device"),
            (FileKind::Other, "special file"),
        ];
        for (kind, name) in names {
            assert_eq!(kind.as_str(), name);
            assert_eq!(kind.to_string(), name);
        }

        let problem = |kind: ProblemKind| ScanProblem {
            path: PathBuf::from("/r/.running/x.lock"),
            kind,
        };
        let reason = || "not a lock record: EOF".to_owned();
        let cases = [
            (
                ProblemKind::NotRegular {
                    file_kind: FileKind::Socket,
                },
                false,
                "/r/.running/x.lock: is a socket, not a lock file; left alone",
            ),
            (
                ProblemKind::Unreadable {
                    reason: "permission denied".into(),
                },
                true,
                "/r/.running/x.lock: cannot be read (permission denied); treated as held. Its \
                 owner or root can make it readable or remove it",
            ),
            (
                ProblemKind::BlocksHeldInvalid { reason: reason() },
                true,
                "/r/.running/x.lock: held, but not a lock record: EOF; treated as held. \
                 `scope-lock break x` shows who holds it",
            ),
            (
                ProblemKind::BlocksMaybeLive {
                    reason: reason(),
                    pid: None,
                },
                true,
                "/r/.running/x.lock: not a lock record: EOF; not flocked and not written by \
                 scope-lock, and no pid can be read to prove it stale: treated as held while it \
                 may be a lock being written. Scans move it aside once it has been left \
                 unchanged for the grace (a minute, unless `LockManager::with_invalid_grace` or \
                 `--invalid-grace` says otherwise); if nothing is writing it, `scope-lock break \
                 x --force` moves it aside now",
            ),
            (
                ProblemKind::BlocksMaybeLive {
                    reason: reason(),
                    pid: Some(7),
                },
                true,
                "/r/.running/x.lock: not a lock record: EOF; not flocked and not written by \
                 scope-lock, and its pid 7 is alive: treated as held. If pid 7 is not the \
                 little-loops loop that wrote it, `scope-lock break x --force` moves it aside",
            ),
            (
                ProblemKind::MovedAside {
                    reason: reason(),
                    moved_to: Some(PathBuf::from("/r/.running/.x.lock.invalid")),
                },
                false,
                "/r/.running/x.lock: not a lock record: EOF; not held, moved aside to \
                 /r/.running/.x.lock.invalid",
            ),
            (
                ProblemKind::MovedAside {
                    reason: reason(),
                    moved_to: None,
                },
                false,
                "/r/.running/x.lock: not a lock record: EOF; not held, could not be moved aside",
            ),
            (
                ProblemKind::ReclaimFailed {
                    reason: "read-only filesystem".into(),
                },
                false,
                "/r/.running/x.lock: stale, but cannot be removed (read-only filesystem)",
            ),
        ];
        // A nested lock is named as commands take it, from below `.running`.
        let nested = ScanProblem {
            path: PathBuf::from("/r/.running/gen/.running.d/run-7.lock"),
            kind: ProblemKind::BlocksHeldInvalid { reason: reason() },
        };
        assert!(
            nested
                .to_string()
                .contains("`scope-lock break gen/.running.d/run-7`")
        );
        for (kind, blocks, message) in cases {
            let problem = problem(kind);
            assert_eq!(problem.blocks(), blocks, "{problem}");
            assert_eq!(problem.to_string(), message);
        }
    }
}
