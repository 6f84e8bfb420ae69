//! Errors: a public [`Error`] struct over a small public [`ErrorKind`], plus [`AcquireError`],
//! which separates "someone else holds an overlapping scope" (a [`Conflict`], an ordinary
//! outcome) from everything that is actually wrong.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::record::LockRecord;

/// What kind of failure an [`Error`] is, for programs that branch on it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A loop name or instance id that cannot name a lock file.
    InvalidName,
    /// A scope entry that cannot be a path (a NUL byte, a symlink loop, not UTF-8 once
    /// resolved).
    InvalidScope,
    /// A lock file's content is not a lock record (empty, truncated, wrong types, too large).
    InvalidRecord,
    /// Something other than a regular file sits where a lock file or the sentinel must be
    /// (a symlink, a directory, a FIFO), or something other than a directory where `.running/`,
    /// its waiting queue or a directory of a nested name must be (a symlink there is refused,
    /// never followed).
    NotALockFile,
    /// Some other process is not following the locking protocol: a lock file appeared at our
    /// name while we held the directory sentinel, the sentinel kept being replaced while we
    /// locked it, a file we had just created was already locked, or a live ticket in the
    /// waiting queue holds the highest number there is, so no waiter can queue behind it.
    Interference,
    /// A stale file sits at the lock file's name (its holder is provably gone) but could not
    /// be removed or moved aside; the message says why. Someone has to remove it by hand.
    StaleInTheWay,
    /// The lock directory is on a filesystem where `flock` is emulated or not shared between
    /// clients (NFS, SMB, 9p, FUSE, CephFS, Lustre, AFS).
    UnsupportedFilesystem,
    /// The directory sentinel `.running/.acquire.lock` stayed locked by another process for
    /// longer than the manager's bound (a holder that is stopped, stuck or very slow). The
    /// message names the sentinel and, on Linux, the pid holding it. Trying again later may
    /// succeed.
    Busy,
    /// A system call failed. Always has the cause: [`Error::io_error`], which is also
    /// [`source`](std::error::Error::source).
    Io,
    /// [`LockManager::set_aside_invalid`](crate::LockManager::set_aside_invalid) was asked to
    /// move a lock file that is not one nobody holds with a record nobody can read: it is
    /// flocked, or its record is valid. Nothing was changed; the message says what to do.
    NotInvalid,
}

/// An error of this crate. Its message always names the path or the input at fault.
///
/// The message does not repeat the cause: an [`ErrorKind::Io`] error says what failed on which
/// path ("cannot lock /repo/.loops/.running/.acquire.lock") and its
/// [`source`](std::error::Error::source) says why, so that a report that prints the chain
/// (anyhow's `{:#}`, for one) prints each once.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let file = dir.path().join("file");
/// # std::fs::write(&file, "")?;
/// use std::error::Error as _;
///
/// // A loops directory "inside" a regular file cannot be used.
/// let locks = scope_lock::LockManager::new(file.join(".loops"));
/// let err = locks.list_locks().map(|_| ()).unwrap_err();
/// let cause = err.source().unwrap(); // ENOTDIR
/// assert!(err.to_string().contains(&*locks.running_dir().to_string_lossy()));
/// assert!(!err.to_string().contains(&cause.to_string()));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    path: Option<PathBuf>,
    source: Option<io::Error>,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The file or directory at fault, when there is one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The underlying I/O error, when there is one.
    pub fn io_error(&self) -> Option<&io::Error> {
        self.source.as_ref()
    }

    /// `<what> <path>`, caused by `source`; `what` is a verb phrase such as "cannot open". The
    /// only way to make an [`ErrorKind::Io`] error, so that every one has its cause.
    pub(crate) fn io(what: &str, path: &Path, source: io::Error) -> Self {
        Self {
            kind: ErrorKind::Io,
            message: format!("{what} {}", path.display()),
            path: Some(path.to_path_buf()),
            source: Some(source),
        }
    }

    /// An error about a path, with no I/O error behind it.
    pub(crate) fn at_path(kind: ErrorKind, path: &Path, problem: impl fmt::Display) -> Self {
        debug_assert_ne!(
            kind,
            ErrorKind::Io,
            "an Io error needs its cause: use Error::io"
        );
        Self {
            kind,
            message: format!("{}: {problem}", path.display()),
            path: Some(path.to_path_buf()),
            source: None,
        }
    }

    /// An error about a caller's input, quoted in the message.
    pub(crate) fn input(kind: ErrorKind, message: String) -> Self {
        debug_assert_ne!(
            kind,
            ErrorKind::Io,
            "an Io error needs its cause: use Error::io"
        );
        Self {
            kind,
            message,
            path: None,
            source: None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// For code that deals in `io::Error`: the kind is the cause's for [`ErrorKind::Io`] and the
/// closest match otherwise (table below). The message is this error's, path included; the cause
/// stays the [`source`](std::error::Error::source); [`io::Error::into_inner`] gives this error
/// back.
///
/// | [`ErrorKind`] | [`io::ErrorKind`] |
/// |---|---|
/// | `InvalidName`, `InvalidScope` | `InvalidInput` |
/// | `InvalidRecord` | `InvalidData` |
/// | `UnsupportedFilesystem` | `Unsupported` |
/// | `Busy` | `TimedOut` |
/// | `Io` | the cause's |
/// | `NotALockFile`, `Interference`, `NotInvalid` | `Other` |
impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        let kind = match err.kind {
            ErrorKind::InvalidName | ErrorKind::InvalidScope => io::ErrorKind::InvalidInput,
            ErrorKind::InvalidRecord => io::ErrorKind::InvalidData,
            ErrorKind::UnsupportedFilesystem => io::ErrorKind::Unsupported,
            ErrorKind::Busy => io::ErrorKind::TimedOut,
            ErrorKind::StaleInTheWay => io::ErrorKind::AlreadyExists,
            ErrorKind::Io => err
                .source
                .as_ref()
                .map_or(io::ErrorKind::Other, io::Error::kind),
            ErrorKind::NotALockFile | ErrorKind::Interference | ErrorKind::NotInvalid => {
                io::ErrorKind::Other
            }
        };
        io::Error::new(kind, err)
    }
}

/// Why a live lock blocks a request.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictRule {
    /// One of our (normalised) paths is equal to, inside, or an ancestor of one of theirs.
    Overlap {
        /// Our path.
        ours: String,
        /// The holder's path it overlaps.
        theirs: String,
    },
    /// Both are singletons of the same loop name; scopes do not matter.
    Singleton,
    /// The lock file name we need (instance id, or loop name) is held live. Taking it would
    /// overwrite the holder's record, so it is refused whatever the scopes.
    SameName,
    /// A lock file whose record cannot be read counts as held: its flock is taken, or nothing
    /// proves its holder gone (see [`ProblemKind`](crate::ProblemKind)). Its scope is unknown,
    /// so it is assumed to overlap.
    Unreadable {
        /// Why the record could not be read, why the file counts as held, and what the user
        /// can do about it.
        reason: String,
    },
    /// Another process has been waiting longer for a scope that overlaps ours (or for the same
    /// singleton): it goes first. [`Conflict::lock_path`] is its ticket, and
    /// [`Conflict::holder`] the waiter's record.
    Waiting {
        /// Its place in the queue; lower numbers arrived earlier.
        ticket: u64,
    },
}

/// A live lock that blocks a request: whose it is, where it is, and which rule fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub(crate) lock_path: PathBuf,
    pub(crate) holder: Option<LockRecord>,
    pub(crate) rule: ConflictRule,
    pub(crate) by_this_process: bool,
}

impl Conflict {
    /// The blocking lock file (for [`ConflictRule::Waiting`], the earlier waiter's ticket).
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// The holder's record; `None` only for [`ConflictRule::Unreadable`].
    pub fn holder(&self) -> Option<&LockRecord> {
        self.holder.as_ref()
    }

    /// Which rule fired.
    pub fn rule(&self) -> &ConflictRule {
        &self.rule
    }

    /// Whether the holder is this very process (its own guard, or an earlier acquire of the
    /// same process that is still held).
    pub fn is_held_by_this_process(&self) -> bool {
        self.by_this_process
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.lock_path.display();
        let Some(holder) = &self.holder else {
            if let ConflictRule::Unreadable { reason } = &self.rule {
                return write!(f, "{path} blocks every scope: {reason}");
            }
            return write!(f, "{path} is held");
        };
        match &self.rule {
            ConflictRule::Overlap { ours, theirs } => write!(f, "{ours} overlaps {theirs}")?,
            ConflictRule::Singleton => write!(f, "singleton loop `{}`", holder.loop_name())?,
            ConflictRule::SameName => write!(f, "lock name taken")?,
            ConflictRule::Unreadable { reason } => write!(f, "unreadable ({reason})")?,
            ConflictRule::Waiting { .. } => write!(f, "an earlier waiter goes first")?,
        }
        let (what, ticket) = match &self.rule {
            ConflictRule::Waiting { ticket } => ("waiting", format!(", ticket {ticket}")),
            _ => ("held", String::new()),
        };
        write!(
            f,
            ": {what} by loop `{}` (pid {}{}{ticket}) since {} in {path}",
            holder.loop_name(),
            holder.pid(),
            if self.by_this_process {
                ", this process"
            } else {
                ""
            },
            holder.started_at(),
        )
    }
}

/// Why [`LockManager::try_acquire`](crate::LockManager::try_acquire) or
/// [`LockManager::acquire`](crate::LockManager::acquire) did not return a guard.
#[derive(Debug)]
pub enum AcquireError {
    /// A live lock (or an earlier waiter) blocks the request. Nothing was written; trying again
    /// later may succeed.
    Conflict(Box<Conflict>),
    /// A waiting acquire reached its deadline without the lock. The conflict is the last one
    /// seen: who held the scope (or waited ahead) when time ran out. Nothing was left behind.
    Timeout(Box<Conflict>),
    /// The request, the directory or the system is at fault.
    Failed(Error),
}

impl AcquireError {
    /// The conflict: what blocks the request, or what blocked it last when waiting timed out.
    pub fn conflict(&self) -> Option<&Conflict> {
        match self {
            AcquireError::Conflict(conflict) | AcquireError::Timeout(conflict) => Some(conflict),
            AcquireError::Failed(_) => None,
        }
    }

    /// Whether this is a waiting acquire that ran out of time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, AcquireError::Timeout(_))
    }

    /// The error, when this is neither a conflict nor a timeout.
    pub fn error(&self) -> Option<&Error> {
        match self {
            AcquireError::Conflict(_) | AcquireError::Timeout(_) => None,
            AcquireError::Failed(err) => Some(err),
        }
    }
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::Conflict(conflict) => write!(f, "scope is locked: {conflict}"),
            AcquireError::Timeout(conflict) => {
                write!(f, "timed out waiting for the scope: {conflict}")
            }
            AcquireError::Failed(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for AcquireError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AcquireError::Conflict(_) | AcquireError::Timeout(_) => None,
            AcquireError::Failed(err) => err.source(),
        }
    }
}

impl From<Error> for AcquireError {
    fn from(err: Error) -> Self {
        AcquireError::Failed(err)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// What anyhow's `{:#}` prints: the error, then each source in turn.
    fn chain(err: &dyn std::error::Error) -> String {
        let mut out = err.to_string();
        let mut next = err.source();
        while let Some(cause) = next {
            out.push_str(": ");
            out.push_str(&cause.to_string());
            next = cause.source();
        }
        out
    }

    fn enoent() -> io::Error {
        io::Error::from(io::ErrorKind::NotFound)
    }

    #[test]
    fn the_cause_is_printed_once_in_a_chain() {
        let cause = enoent().to_string();
        let err = Error::io("cannot open", Path::new("/r/.running/x.lock"), enoent());
        assert_eq!(err.to_string(), "cannot open /r/.running/x.lock");
        assert_eq!(chain(&err).matches(&cause).count(), 1, "{}", chain(&err));
        let failed = AcquireError::from(err);
        assert_eq!(
            chain(&failed).matches(&cause).count(),
            1,
            "{}",
            chain(&failed)
        );
    }

    #[test]
    fn a_real_failure_prints_its_cause_once() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("file");
        std::fs::write(&file, "")?;
        let locks = crate::LockManager::new(file.join(".loops"));
        let Err(err) = locks.try_acquire(&crate::LockRequest::new("a")) else {
            panic!("acquired a lock in a directory under a regular file");
        };
        let cause = err.source().ok_or("an I/O failure without its cause")?;
        let line = chain(&err);
        assert_eq!(line.matches(&cause.to_string()).count(), 1, "{line}");
        assert!(line.contains(&*file.to_string_lossy()), "{line}");
        Ok(())
    }

    #[test]
    fn into_io_error_keeps_kind_path_and_cause() {
        let path = Path::new("/r/.running/x.lock");
        let io_err = io::Error::from(Error::io("cannot open", path, enoent()));
        assert_eq!(io_err.kind(), io::ErrorKind::NotFound);
        assert_eq!(io_err.to_string(), "cannot open /r/.running/x.lock");
        assert_eq!(chain(&io_err).matches(&enoent().to_string()).count(), 1);
        let inner = io_err.into_inner().map(|inner| inner.downcast::<Error>());
        let Some(Ok(inner)) = inner else {
            panic!("the io::Error does not carry the crate's Error");
        };
        assert_eq!(inner.path(), Some(path));

        let kinds = [
            (ErrorKind::InvalidName, io::ErrorKind::InvalidInput),
            (ErrorKind::InvalidScope, io::ErrorKind::InvalidInput),
            (ErrorKind::InvalidRecord, io::ErrorKind::InvalidData),
            (ErrorKind::UnsupportedFilesystem, io::ErrorKind::Unsupported),
            (ErrorKind::Busy, io::ErrorKind::TimedOut),
            (ErrorKind::NotALockFile, io::ErrorKind::Other),
            (ErrorKind::Interference, io::ErrorKind::Other),
        ];
        for (ours, theirs) in kinds {
            let io_err = io::Error::from(Error::at_path(ours, path, "is wrong"));
            assert_eq!(io_err.kind(), theirs, "{ours:?}");
            assert_eq!(io_err.to_string(), "/r/.running/x.lock: is wrong");
        }
    }

    fn conflict(rule: ConflictRule, by_this_process: bool) -> Conflict {
        Conflict {
            lock_path: PathBuf::from("/r/.running/x.lock"),
            holder: Some(LockRecord::new("x", vec!["/r/src".into()], 42, "t0")),
            rule,
            by_this_process,
        }
    }

    /// Each rule reads as what happened, and a waiter ahead of us is told apart from a holder.
    #[test]
    fn a_conflict_says_which_rule_fired_and_who_is_in_the_way() {
        let overlap = ConflictRule::Overlap {
            ours: "/r/src/a".into(),
            theirs: "/r/src".into(),
        };
        assert_eq!(
            conflict(overlap, false).to_string(),
            "/r/src/a overlaps /r/src: held by loop `x` (pid 42) since t0 in /r/.running/x.lock"
        );
        assert_eq!(
            conflict(ConflictRule::Singleton, true).to_string(),
            "singleton loop `x`: held by loop `x` (pid 42, this process) since t0 in \
             /r/.running/x.lock"
        );
        assert_eq!(
            conflict(ConflictRule::Waiting { ticket: 7 }, false).to_string(),
            "an earlier waiter goes first: waiting by loop `x` (pid 42, ticket 7) since t0 in \
             /r/.running/x.lock"
        );
        let mut unreadable = conflict(
            ConflictRule::Unreadable {
                reason: "empty lock file".into(),
            },
            false,
        );
        unreadable.holder = None;
        assert_eq!(
            unreadable.to_string(),
            "/r/.running/x.lock blocks every scope: empty lock file"
        );
    }

    /// Each variant answers to its own accessor only, and says what it is.
    #[test]
    fn an_acquire_error_is_a_conflict_a_timeout_or_a_failure() {
        let locked = AcquireError::Conflict(Box::new(conflict(ConflictRule::SameName, false)));
        let timed_out = AcquireError::Timeout(Box::new(conflict(ConflictRule::SameName, false)));
        let failed = AcquireError::from(Error::io("cannot open", Path::new("/r"), enoent()));

        assert!(locked.conflict().is_some() && !locked.is_timeout() && locked.error().is_none());
        assert!(timed_out.conflict().is_some() && timed_out.is_timeout());
        assert!(timed_out.error().is_none());
        assert!(failed.conflict().is_none() && !failed.is_timeout() && failed.error().is_some());

        let held = "lock name taken: held by loop `x` (pid 42) since t0 in /r/.running/x.lock";
        assert_eq!(locked.to_string(), format!("scope is locked: {held}"));
        assert_eq!(
            timed_out.to_string(),
            format!("timed out waiting for the scope: {held}")
        );
        assert_eq!(failed.to_string(), "cannot open /r");
        assert!(locked.source().is_none() && timed_out.source().is_none());
    }

    /// A lock held by another live process is not "this process"; one held under our own pid
    /// is.
    #[test]
    fn a_conflict_knows_whether_this_process_holds_it() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let root = std::fs::canonicalize(dir.path())?;
        let locks = crate::LockManager::new(root.join(".loops"));
        std::fs::create_dir_all(locks.running_dir())?;
        // A live process that is not one of our ancestors (whose locks never block us),
        // killed and reaped however the test ends.
        struct Reaped(std::process::Child);
        impl Drop for Reaped {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let other = Reaped(std::process::Command::new("sleep").arg("60").spawn()?);
        for (name, pid, ours) in [
            ("theirs", other.0.id(), false),
            ("ours", std::process::id(), true),
        ] {
            let path = root.join(name).to_string_lossy().into_owned();
            let record = LockRecord::new(name, vec![path.clone()], pid, "t0");
            let file = locks.running_dir().join(format!("{name}.lock"));
            std::fs::write(&file, record.to_json())?;
            let request = crate::LockRequest::new("asker").scope([path]);
            let Err(AcquireError::Conflict(conflict)) = locks.try_acquire(&request) else {
                return Err(format!("no conflict with the lock of {name}").into());
            };
            assert_eq!(conflict.lock_path(), file);
            assert_eq!(conflict.is_held_by_this_process(), ours, "{conflict}");
            assert_eq!(conflict.to_string().contains("this process"), ours);
        }
        Ok(())
    }
}
