//! What blocks an acquire: a [`Conflict`] (who holds or waits for an overlapping scope, and by
//! which rule), and [`AcquireError`], which tells such an ordinary outcome from an [`Error`].

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::mode::LockMode;
use crate::record::LockRecord;
use crate::request::lock_name_of;

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

impl ConflictRule {
    /// The rule's name for machines (the CLI's JSON, the Python binding): `overlap`,
    /// `singleton`, `same_name`, `unreadable` or `waiting`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ConflictRule::Overlap { .. } => "overlap",
            ConflictRule::Singleton => "singleton",
            ConflictRule::SameName => "same_name",
            ConflictRule::Unreadable { .. } => "unreadable",
            ConflictRule::Waiting { .. } => "waiting",
        }
    }
}

/// A live lock that blocks a request: whose it is, where it is, and which rule fired. Its
/// `Display` is one sentence for people.
///
/// ```
/// use scope_lock::{ConflictRule, LockManager, LockRequest};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let project = tempfile::tempdir()?;
/// let locks = LockManager::new(project.path().join(".loops"));
/// let holder = locks.try_acquire(&LockRequest::new("nightly").singleton(true))?;
///
/// let again = LockRequest::new("nightly").instance_id("nightly-2").scope(["elsewhere"]).singleton(true);
/// let conflict = locks.find_conflict(&again)?.expect("one nightly at a time");
/// assert_eq!(conflict.rule(), &ConflictRule::Singleton);
/// assert_eq!(conflict.holder(), Some(holder.record()));
/// assert_eq!(conflict.lock_path(), holder.path());
/// assert!(conflict.is_held_by_this_process());
/// println!("{conflict}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub(crate) lock_path: PathBuf,
    pub(crate) holder: Option<LockRecord>,
    pub(crate) rule: ConflictRule,
    pub(crate) by_this_process: bool,
    /// On etcd: where the holder is, which its key's path cannot say.
    pub(crate) remote: Option<Remote>,
}

/// A holder (or waiter) on etcd: the host it runs on and its lock name (a key is not under a
/// `.running`, so [`lock_name_of`] cannot read a nested name from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Remote {
    pub(crate) host: String,
    pub(crate) name: String,
    /// A lock's fencing token (its key's create revision, kept outside the record); `None`
    /// for a waiter.
    pub(crate) token: Option<u64>,
}

impl Conflict {
    /// The blocking lock file (for [`ConflictRule::Waiting`], the earlier waiter's ticket).
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// The blocking lock file's name (see [`lock_name_of`]); for [`ConflictRule::Waiting`], the
    /// ticket's path below `.running`.
    pub fn lock_name(&self) -> PathBuf {
        match &self.remote {
            Some(remote) => PathBuf::from(&remote.name),
            None => lock_name_of(&self.lock_path),
        }
    }

    /// The same conflict with the holder's host and name on etcd.
    #[cfg(feature = "etcd")]
    pub(crate) fn with_remote(self, remote: Option<Remote>) -> Self {
        Self { remote, ..self }
    }

    /// The holder's fencing token: its record's locally (`None` in the original's records),
    /// its key's create revision on etcd; `None` for an earlier waiter, which holds nothing.
    pub fn token(&self) -> Option<u64> {
        match &self.remote {
            Some(remote) => remote.token,
            None => self.holder.as_ref().and_then(LockRecord::token),
        }
    }

    /// On etcd, the host the holder (or the earlier waiter) runs on; `None` for a lock
    /// directory, whose holders are on this machine.
    pub fn host(&self) -> Option<&str> {
        self.remote.as_ref().map(|remote| remote.host.as_str())
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

/// The one line every front end prints for a conflict: what blocks, and who holds (or waits
/// ahead), as
/// `<why>: held by loop `L`, instance `N`, pid P, since T (<lock file>)`.
impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.lock_path.display();
        let Some(holder) = &self.holder else {
            let reason = match &self.rule {
                ConflictRule::Unreadable { reason } => reason.as_str(),
                _ => "no record",
            };
            return write!(
                f,
                "{path} blocks every scope, its scope being unknown: {reason}"
            );
        };
        let this = if self.by_this_process {
            " (this process)"
        } else {
            ""
        };
        let (loop_name, pid, since) = (holder.loop_name(), holder.pid(), holder.started_at());
        // A pid means nothing without its machine, when that is another one.
        let on = self
            .host()
            .map(|host| format!(" on {host}"))
            .unwrap_or_default();
        let shared = match holder.mode() {
            LockMode::Shared => " shared",
            LockMode::Exclusive => "",
        };
        let name = self.lock_name();
        let name = name.to_string_lossy();
        match &self.rule {
            // The path is the waiter's ticket, not a lock file: it has no instance name.
            ConflictRule::Waiting { ticket } => {
                return write!(
                    f,
                    "an earlier waiter for an overlapping scope goes first: waiting{shared} is \
                     loop `{loop_name}`, pid {pid}{on}{this}, since {since}, ticket {ticket} ({path})"
                );
            }
            ConflictRule::Overlap { ours, theirs } => write!(f, "{ours} overlaps {theirs}")?,
            ConflictRule::Singleton => write!(f, "singleton `{loop_name}` is running")?,
            ConflictRule::SameName => write!(f, "lock name `{name}` is taken")?,
            ConflictRule::Unreadable { reason } => write!(f, "unreadable ({reason})")?,
        }
        write!(
            f,
            ": held{shared} by loop `{loop_name}`, instance `{name}`, pid {pid}{on}{this}, since \
             {since} ({path})"
        )
    }
}

/// Why [`LockManager::try_acquire`](crate::LockManager::try_acquire) or
/// [`LockManager::acquire`](crate::LockManager::acquire) did not return a guard.
///
/// A conflict or a timeout is the answer "not now" (who holds the scope, by which rule);
/// [`Failed`](AcquireError::Failed) is something wrong, with an [`Error`] that names the path
/// or input at fault.
///
/// ```
/// use std::time::Duration;
/// use scope_lock::{AcquireError, ErrorKind, LockManager, LockRequest};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let project = tempfile::tempdir()?;
/// let locks = LockManager::new(project.path().join(".loops"));
/// let _held = locks.try_acquire(&LockRequest::new("docs").scope(["docs/"]))?;
///
/// for request in [
///     LockRequest::new("site").scope(["docs/"]),
///     LockRequest::new("../escape"),
/// ] {
///     match locks.acquire(&request, Duration::ZERO) {
///         Ok(guard) => guard.release()?,
///         Err(AcquireError::Conflict(conflict) | AcquireError::Timeout(conflict)) => {
///             // Try later: `conflict` says who holds the scope.
///             assert_eq!(conflict.holder().map(|h| h.loop_name()), Some("docs"));
///         }
///         Err(AcquireError::Failed(err)) => {
///             assert_eq!(err.kind(), ErrorKind::InvalidName);
///             assert!(err.to_string().contains("\"../escape\""));
///         }
///     }
/// }
/// # Ok(()) }
/// ```
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
                write!(f, "timed out waiting for scope: {conflict}")
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
    use std::io;

    use super::*;

    fn conflict(rule: ConflictRule, by_this_process: bool) -> Conflict {
        Conflict {
            lock_path: PathBuf::from("/r/.running/x.lock"),
            holder: Some(LockRecord::new("x", vec!["/r/src".into()], 42, "t0")),
            rule,
            by_this_process,
            remote: None,
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
            "/r/src/a overlaps /r/src: held by loop `x`, instance `x`, pid 42, since t0 \
             (/r/.running/x.lock)"
        );
        assert_eq!(
            conflict(ConflictRule::Singleton, true).to_string(),
            "singleton `x` is running: held by loop `x`, instance `x`, pid 42 (this process), \
             since t0 (/r/.running/x.lock)"
        );
        let mut waiting = conflict(ConflictRule::Waiting { ticket: 7 }, false);
        waiting.lock_path = PathBuf::from("/r/.running/.queue/7");
        assert_eq!(
            waiting.to_string(),
            "an earlier waiter for an overlapping scope goes first: waiting is loop `x`, pid 42, \
             since t0, ticket 7 (/r/.running/.queue/7)"
        );
        let mut taken = conflict(ConflictRule::SameName, false);
        taken.lock_path = PathBuf::from("/r/.running/gen/x-1.lock");
        assert_eq!(taken.lock_name(), Path::new("gen/x-1"));
        assert_eq!(
            taken.to_string(),
            "lock name `gen/x-1` is taken: held by loop `x`, instance `gen/x-1`, pid 42, since t0 \
             (/r/.running/gen/x-1.lock)"
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
            "/r/.running/x.lock blocks every scope, its scope being unknown: empty lock file"
        );
        let names = [
            (ConflictRule::Singleton, "singleton"),
            (ConflictRule::SameName, "same_name"),
            (ConflictRule::Waiting { ticket: 1 }, "waiting"),
            (
                ConflictRule::Unreadable {
                    reason: String::new(),
                },
                "unreadable",
            ),
            (
                ConflictRule::Overlap {
                    ours: String::new(),
                    theirs: String::new(),
                },
                "overlap",
            ),
        ];
        for (rule, name) in names {
            assert_eq!(rule.as_str(), name);
        }
    }

    /// Each variant answers to its own accessor only, and says what it is.
    #[test]
    fn an_acquire_error_is_a_conflict_a_timeout_or_a_failure() {
        let locked = AcquireError::Conflict(Box::new(conflict(ConflictRule::SameName, false)));
        let timed_out = AcquireError::Timeout(Box::new(conflict(ConflictRule::SameName, false)));
        let failed = AcquireError::from(Error::io(
            "cannot open",
            Path::new("/r"),
            io::Error::from(io::ErrorKind::NotFound),
        ));

        assert!(locked.conflict().is_some() && !locked.is_timeout() && locked.error().is_none());
        assert!(timed_out.conflict().is_some() && timed_out.is_timeout());
        assert!(timed_out.error().is_none());
        assert!(failed.conflict().is_none() && !failed.is_timeout() && failed.error().is_some());

        let held = "lock name `x` is taken: held by loop `x`, instance `x`, pid 42, since t0 \
                    (/r/.running/x.lock)";
        assert_eq!(locked.to_string(), format!("scope is locked: {held}"));
        assert_eq!(
            timed_out.to_string(),
            format!("timed out waiting for scope: {held}")
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
