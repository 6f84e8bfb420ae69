//! Errors: a public [`Error`] struct over a small public [`ErrorKind`]. What blocks an acquire
//! is not an error but a conflict (`conflict.rs`).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What kind of failure an [`Error`] is, for programs that branch on it.
///
/// ```
/// use scope_lock::{ErrorKind, LockManager, LockRequest};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let project = tempfile::tempdir()?;
/// let locks = LockManager::new(project.path().join(".loops"));
/// let err = locks.try_acquire(&LockRequest::new("a").scope(["nul\0byte"])).map(|_| ()).unwrap_err();
/// match err.error().map(|e| e.kind()) {
///     Some(ErrorKind::InvalidName | ErrorKind::InvalidScope) => println!("fix the request: {err}"),
///     Some(ErrorKind::Busy) => println!("try again later: {err}"),
///     _ => println!("{err}"),
/// }
/// assert_eq!(err.error().map(|e| e.kind()), Some(ErrorKind::InvalidScope));
/// # Ok(()) }
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A loop name or instance id that cannot name a lock file.
    InvalidName,
    /// A scope entry that cannot be a path (a NUL byte, a symlink loop), or a scope whose
    /// record would be larger than readers accept.
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
    /// A request to etcd failed (the etcd backend, feature `etcd`): it could not be reached
    /// within its timeout, refused the credentials, or answered with an error. The message
    /// names the endpoints or the key; the cause is the [`source`](std::error::Error::source).
    Etcd,
    /// The lock is no longer held (the etcd backend): its lease expired, because the holder
    /// was stopped or cut off from etcd for longer than the lease's time to live, or its key
    /// was deleted by someone else. Someone else may hold the scope now.
    Lost,
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
        let message = format!("{}: {problem}", path.display());
        Self::without_cause(kind, message, Some(path.to_path_buf()))
    }

    /// An error of etcd's (the etcd backend): `what` says what was asked of whom, `source` is
    /// etcd's (or the transport's) answer.
    #[cfg(feature = "etcd")]
    pub(crate) fn etcd(
        what: String,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind: ErrorKind::Etcd,
            message: what,
            path: None,
            source: Some(io::Error::other(source)),
        }
    }

    /// An error about a caller's input, quoted in the message.
    pub(crate) fn input(kind: ErrorKind, message: String) -> Self {
        Self::without_cause(kind, message, None)
    }

    fn without_cause(kind: ErrorKind, message: String, path: Option<PathBuf>) -> Self {
        debug_assert_ne!(
            kind,
            ErrorKind::Io,
            "an Io error needs its cause: use Error::io"
        );
        Self {
            kind,
            message,
            path,
            source: None,
        }
    }
}

/// An I/O error in the system's own words ("Permission denied"), without the " (os error 13)"
/// that std's `Display` adds: for the reasons the library writes into its reports, which are
/// read by people.
pub(crate) fn in_words(err: &io::Error) -> String {
    let text = err.to_string();
    match err.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .map_or_else(|| text.clone(), str::to_owned),
        None => text,
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
/// | `Etcd` | `ConnectionAborted` |
/// | `NotALockFile`, `Interference`, `NotInvalid`, `Lost` | `Other` |
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
            ErrorKind::Etcd => io::ErrorKind::ConnectionAborted,
            ErrorKind::NotALockFile
            | ErrorKind::Interference
            | ErrorKind::NotInvalid
            | ErrorKind::Lost => io::ErrorKind::Other,
        };
        io::Error::new(kind, err)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn io_errors_in_reports_are_in_words_without_the_os_error_number() {
        let denied = io::Error::from_raw_os_error(13);
        assert_eq!(in_words(&denied), "Permission denied");
        assert_eq!(in_words(&io::Error::other("no number")), "no number");
    }
    use crate::conflict::AcquireError;

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
}
