//! The lock manager: the public face of [the protocol](crate::protocol), which does the work.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::backoff::deadline_after;
use crate::cancel::CancelWait;
use crate::conflict::{AcquireError, Conflict};
use crate::error::Error;
use crate::guard::ScopeGuard;
use crate::listing::LockListing;
use crate::protocol::{self, Published, Question, Scan};
use crate::request::{DEFAULT_LOOPS_DIR, LockRequest, RUNNING_DIR};
use crate::wait::{Silent, WaitObserver};

/// How long, unless [`LockManager::with_sentinel_bound`] says otherwise, any call tries for the
/// directory sentinel before giving up with [`ErrorKind::Busy`](crate::ErrorKind::Busy). Its
/// holders keep it for well under a millisecond; seconds of it mean a stopped or stuck process.
pub const DEFAULT_SENTINEL_BOUND: Duration = Duration::from_secs(5);

/// How long, unless [`LockManager::with_invalid_grace`] says otherwise, a lock file that
/// nothing proves alive or dead must stay unchanged before scans move it aside. The original
/// writes its files by truncating and then writing, so a reader can catch one empty or half
/// written, and such a file holds no flock and may not show its pid yet; but no such write
/// lasts anywhere near a minute.
pub const DEFAULT_INVALID_GRACE: Duration = Duration::from_secs(60);

/// Scope locks in `<loops_dir>/.running/`.
///
/// ```
/// use scope_lock::{LockManager, LockRequest};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let locks = LockManager::new(dir.path().join(".loops"));
/// let guard = locks.try_acquire(&LockRequest::new("docs").scope(["docs"]))?;
///
/// // Anyone else asking for an overlapping scope is told who holds it.
/// let err = locks.try_acquire(&LockRequest::new("site").scope(["docs/api"])).unwrap_err();
/// assert_eq!(err.conflict().and_then(|c| c.holder()).map(|h| h.loop_name()), Some("docs"));
///
/// guard.release()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockManager {
    running_dir: PathBuf,
    sentinel_bound: Duration,
    invalid_grace: Duration,
}

impl Default for LockManager {
    /// The original's default: `.loops/.running/` under the current directory.
    fn default() -> Self {
        Self::new(DEFAULT_LOOPS_DIR)
    }
}

impl LockManager {
    /// A manager for `<loops_dir>/.running/`. Nothing is touched until it is used; a relative
    /// `loops_dir` is resolved against the current directory at each use, as in the original.
    pub fn new(loops_dir: impl AsRef<Path>) -> Self {
        Self {
            running_dir: loops_dir.as_ref().join(RUNNING_DIR),
            sentinel_bound: DEFAULT_SENTINEL_BOUND,
            invalid_grace: DEFAULT_INVALID_GRACE,
        }
    }

    /// Sets how long every call (and every release and drop of the guards it returns) tries
    /// for the directory sentinel before giving up with
    /// [`ErrorKind::Busy`](crate::ErrorKind::Busy); [`DEFAULT_SENTINEL_BOUND`] otherwise. This
    /// is the most a process that holds the sentinel and is stopped can delay anyone.
    #[must_use]
    pub fn with_sentinel_bound(mut self, bound: Duration) -> Self {
        self.sentinel_bound = bound;
        self
    }

    /// How long calls try for the directory sentinel.
    pub fn sentinel_bound(&self) -> Duration {
        self.sentinel_bound
    }

    /// Sets how long a `*.lock` file that nothing proves alive or dead must stay unchanged
    /// (by its modification time) before scans take it for garbage and move it aside;
    /// [`DEFAULT_INVALID_GRACE`] otherwise. Such a file is not flocked, its record cannot be
    /// read, and no pid can be read from it: it may be the original's lock caught half written,
    /// so until then it blocks every scope
    /// ([`ProblemKind::BlocksMaybeLive`](crate::ProblemKind::BlocksMaybeLive)). A file whose
    /// modification time is in the future blocks until then;
    /// [`set_aside_invalid`](Self::set_aside_invalid) moves one aside at once.
    #[must_use]
    pub fn with_invalid_grace(mut self, grace: Duration) -> Self {
        self.invalid_grace = grace;
        self
    }

    /// How long an unproven lock file blocks before scans move it aside.
    pub fn invalid_grace(&self) -> Duration {
        self.invalid_grace
    }

    /// The directory that holds the lock files.
    pub fn running_dir(&self) -> &Path {
        &self.running_dir
    }

    /// The lock file `request` would take.
    pub fn lock_path(&self, request: &LockRequest) -> PathBuf {
        protocol::lock_path(&self.running_dir, request)
    }

    /// Acquires the scope if no live lock conflicts, without waiting for the scope.
    ///
    /// On success the returned guard holds the lock file open and flocked until it is released
    /// or dropped. Stale locks found on the way are reclaimed. The only wait is for the
    /// directory sentinel, which others hold for a scan at a time, and it lasts at most the
    /// [sentinel bound](Self::sentinel_bound).
    ///
    /// # Errors
    ///
    /// - [`AcquireError::Conflict`] when a live lock holds an overlapping path, the same
    ///   singleton loop, or the same lock name (also when the holder is this process: an
    ///   overlapping acquire never waits on itself), or when a waiter that arrived earlier
    ///   wants an overlapping scope ([`ConflictRule::Waiting`](crate::ConflictRule::Waiting):
    ///   `try_acquire` does not jump the queue);
    /// - [`AcquireError::Failed`] for an invalid name or scope, a directory that cannot be
    ///   created or locked, or something other than a regular file where the lock file or the
    ///   sentinel must be, or (kind [`ErrorKind::Busy`](crate::ErrorKind::Busy)) a sentinel
    ///   held by another process for the whole bound. Every error names the input or path at
    ///   fault.
    ///
    /// # Examples
    ///
    /// ```
    /// use scope_lock::{AcquireError, ConflictRule, LockManager, LockRequest};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let project = tempfile::tempdir()?;
    /// let locks = LockManager::new(project.path().join(".loops"));
    /// let docs = locks.try_acquire(&LockRequest::new("docs").scope(["docs/"]))?;
    ///
    /// match locks.try_acquire(&LockRequest::new("site").scope(["docs/api"])) {
    ///     Ok(_guard) => unreachable!("docs/api is inside docs/"),
    ///     Err(AcquireError::Conflict(conflict)) => {
    ///         assert!(matches!(conflict.rule(), ConflictRule::Overlap { .. }));
    ///         assert_eq!(conflict.holder().map(|h| h.loop_name()), Some("docs"));
    ///     }
    ///     Err(other) => return Err(other.into()),
    /// }
    /// // A disjoint scope is free.
    /// let src = locks.try_acquire(&LockRequest::new("build").scope(["src/"]))?;
    /// # drop(src);
    /// docs.release()?;
    /// # Ok(()) }
    /// ```
    pub fn try_acquire(&self, request: &LockRequest) -> Result<ScopeGuard, AcquireError> {
        protocol::try_acquire(
            &self.running_dir,
            request,
            self.sentinel_bound,
            self.invalid_grace,
        )
        .map(|published| self.guard(published))
    }

    /// Acquires the scope, waiting for it for at most `timeout`; returns holding the lock or
    /// not at all. Same as [`acquire_until`](Self::acquire_until) with `now + timeout`.
    ///
    /// # Errors
    ///
    /// As [`acquire_until`](Self::acquire_until).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use scope_lock::{LockManager, LockRequest};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let project = tempfile::tempdir()?;
    /// let locks = LockManager::new(project.path().join(".loops"));
    /// let request = LockRequest::new("nightly").scope(["src/"]);
    /// let holder = locks.try_acquire(&request)?;
    ///
    /// // Another thread waits for the scope; it gets it once the holder lets go.
    /// let waiter = std::thread::spawn({
    ///     let locks = locks.clone();
    ///     let request = LockRequest::new("second").scope(["src/lib.rs"]);
    ///     move || locks.acquire(&request, Duration::from_secs(60)).map(|g| g.record().clone())
    /// });
    /// holder.release()?;
    /// assert_eq!(waiter.join().expect("no panic")?.loop_name(), "second");
    ///
    /// // A wait that runs out of time says who held the scope.
    /// let holder = locks.try_acquire(&request)?;
    /// let err = locks.acquire(&LockRequest::new("late").scope(["src/"]), Duration::ZERO)
    ///     .map(|_| ()).unwrap_err();
    /// assert!(err.is_timeout());
    /// assert_eq!(err.conflict().and_then(|c| c.holder()), Some(holder.record()));
    /// # Ok(()) }
    /// ```
    pub fn acquire(
        &self,
        request: &LockRequest,
        timeout: Duration,
    ) -> Result<ScopeGuard, AcquireError> {
        self.acquire_until(request, deadline_after(timeout))
    }

    /// Acquires the scope, waiting for it until `deadline`; returns holding the lock or not at
    /// all. There is deliberately no call that waits until the scope is free and then returns
    /// without the lock: someone else could take it before the caller's next acquire (the
    /// original's `wait_for_scope() -> bool` and its BUG-1281).
    ///
    /// Waiters whose scopes overlap get the lock in the order they started waiting; a waiter
    /// never waits for one whose scope is disjoint from its own. A waiter wakes when the holder
    /// releases, or dies, without a polling interval (on Linux; elsewhere, and for locks
    /// written by the original, which hold no flock, it polls with a backoff of at most
    /// 200 ms). A deadline already past means one attempt, like
    /// [`try_acquire`](Self::try_acquire).
    ///
    /// While it waits, the acquire holds a ticket in `.running/.queue/`, which it removes when
    /// it stops waiting for any reason; if it is killed, the next acquirer removes it, and it
    /// blocks nobody meanwhile.
    ///
    /// # Errors
    ///
    /// - [`AcquireError::Timeout`] when the deadline passed first, with the last conflict seen
    ///   (the holder, or the waiter ahead, and the rule);
    /// - [`AcquireError::Failed`] as for [`try_acquire`](Self::try_acquire). A sentinel that
    ///   stays busy is retried until the deadline; if that is how the time ran out, the error
    ///   is of kind [`ErrorKind::Busy`](crate::ErrorKind::Busy).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use scope_lock::{LockManager, LockRequest};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let project = tempfile::tempdir()?;
    /// let locks = LockManager::new(project.path().join(".loops"));
    /// // One deadline for several steps of a job.
    /// let deadline = Instant::now() + Duration::from_secs(30);
    /// let guard = locks.acquire_until(&LockRequest::new("job").scope(["out/"]), deadline)?;
    /// guard.release()?;
    /// # Ok(()) }
    /// ```
    pub fn acquire_until(
        &self,
        request: &LockRequest,
        deadline: Instant,
    ) -> Result<ScopeGuard, AcquireError> {
        self.acquire_with(request, deadline, &mut Silent)
    }

    /// [`acquire_until`](Self::acquire_until), telling `observer` when it starts waiting and
    /// then about once every [`REPORT_INTERVAL`](crate::REPORT_INTERVAL) while it waits.
    ///
    /// # Errors
    ///
    /// As [`acquire_until`](Self::acquire_until).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use scope_lock::{LockManager, LockRequest, Waiting};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let project = tempfile::tempdir()?;
    /// let locks = LockManager::new(project.path().join(".loops"));
    /// let holder = locks.try_acquire(&LockRequest::new("first").scope(["src/"]))?;
    /// // The holder lets go once the waiter says it waits.
    /// let (told, heard) = std::sync::mpsc::channel();
    /// let releaser = std::thread::spawn(move || {
    ///     let _ = heard.recv();
    ///     holder.release()
    /// });
    ///
    /// let mut report = |waiting: &Waiting<'_>| {
    ///     if waiting.is_first() {
    ///         eprintln!("Blocking waiting for scope: {}", waiting.conflict());
    ///         let _ = told.send(());
    ///     }
    /// };
    /// let request = LockRequest::new("second").scope(["src/"]);
    /// let deadline = Instant::now() + Duration::from_secs(60);
    /// let guard = locks.acquire_with(&request, deadline, &mut report)?;
    /// releaser.join().expect("no panic")?;
    /// assert_eq!(guard.record().loop_name(), "second");
    /// # Ok(()) }
    /// ```
    pub fn acquire_with(
        &self,
        request: &LockRequest,
        deadline: Instant,
        observer: &mut dyn WaitObserver,
    ) -> Result<ScopeGuard, AcquireError> {
        self.acquire_or_cancelled(request, deadline, observer, None)
    }

    /// [`acquire_with`](Self::acquire_with) that also gives up once `cancel` is cancelled,
    /// from another thread: at once if the wait is asleep (the cancel wakes its directory
    /// watch, see [`CancelWait`]), else at its next look. The wait withdraws its ticket on the
    /// way out, as at its deadline. For a wait that must stop when something else happens
    /// (an async task cancelled, a shutdown) without polling for it.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use scope_lock::{CancelWait, LockManager, LockRequest, Waiting};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let project = tempfile::tempdir()?;
    /// let locks = LockManager::new(project.path().join(".loops"));
    /// // Kept where whoever must be able to stop the wait can reach it (another thread).
    /// let cancel = CancelWait::new();
    /// let request = LockRequest::new("job").scope(["out/"]);
    /// let deadline = Instant::now() + Duration::from_secs(30);
    /// let mut report = |waiting: &Waiting<'_>| eprintln!("waiting: {}", waiting.conflict());
    /// let guard = locks.acquire_cancellable(&request, deadline, &mut report, &cancel)?;
    /// guard.release()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`acquire_until`](Self::acquire_until). A cancelled wait ends as at its deadline,
    /// with [`AcquireError::Timeout`] naming what blocked it ([`CancelWait::is_cancelled`]
    /// tells the two apart). A cancel does not undo a lock the wait has taken by then: a
    /// caller that cancelled may still get a guard, and drops it if it no longer wants it.
    pub fn acquire_cancellable(
        &self,
        request: &LockRequest,
        deadline: Instant,
        observer: &mut dyn WaitObserver,
        cancel: &CancelWait,
    ) -> Result<ScopeGuard, AcquireError> {
        self.acquire_or_cancelled(request, deadline, observer, Some(cancel))
    }

    /// The one wait behind [`acquire_with`](Self::acquire_with) and
    /// [`acquire_cancellable`](Self::acquire_cancellable), with this manager's bounds.
    fn acquire_or_cancelled(
        &self,
        request: &LockRequest,
        deadline: Instant,
        observer: &mut dyn WaitObserver,
        cancel: Option<&CancelWait>,
    ) -> Result<ScopeGuard, AcquireError> {
        protocol::acquire_until(
            &self.running_dir,
            request,
            self.sentinel_bound,
            self.invalid_grace,
            deadline,
            observer,
            cancel,
        )
        .map(|published| self.guard(published))
    }

    /// The guard of a lock just published; it releases within this manager's sentinel bound.
    fn guard(&self, published: Published) -> ScopeGuard {
        ScopeGuard::new(published, self.sentinel_bound)
    }

    /// The live lock that would make [`try_acquire`](Self::try_acquire) refuse `request`, if
    /// any. Stale locks are reclaimed on the way. The answer can be out of date as soon as it
    /// is returned: to hold a scope, acquire it.
    ///
    /// # Errors
    ///
    /// As `try_acquire`, for everything but the conflict itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use scope_lock::{LockManager, LockRequest};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let project = tempfile::tempdir()?;
    /// let locks = LockManager::new(project.path().join(".loops"));
    /// let request = LockRequest::new("site").scope(["docs/"]);
    /// assert!(locks.find_conflict(&request)?.is_none());
    /// let _docs = locks.try_acquire(&LockRequest::new("docs").scope(["docs/guide"]))?;
    /// let conflict = locks.find_conflict(&request)?.expect("docs/guide is inside docs/");
    /// assert_eq!(conflict.holder().map(|h| h.loop_name()), Some("docs"));
    /// # Ok(()) }
    /// ```
    pub fn find_conflict(&self, request: &LockRequest) -> Result<Option<Conflict>, Error> {
        protocol::find_conflict(
            &self.running_dir,
            request,
            Question::Request,
            self.sentinel_bound,
            self.invalid_grace,
        )
    }

    /// The live lock (or earlier waiter) that would block *any* acquire of `request`'s scope,
    /// if any: "is this scope free?". Unlike [`find_conflict`](Self::find_conflict) it leaves
    /// out the lock file the request would take, so no name has to be made up that no lock
    /// file has. Only the overlap rules, unreadable lock files, earlier waiters and, for a
    /// singleton request, live singletons of its loop name count; the loop name is looked at
    /// only then, and the instance id never. The answer can be out of date as soon as it is
    /// returned: to hold a scope, acquire it.
    ///
    /// ```
    /// use scope_lock::{LockManager, LockRequest};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let locks = LockManager::new(dir.path().join(".loops"));
    /// let guard = locks.try_acquire(&LockRequest::new("docs").scope(["docs"]))?;
    /// // A lock file named `docs` is no conflict here; the overlap is.
    /// let asked = LockRequest::new("docs").scope(["docs/api"]);
    /// let conflict = locks.find_scope_conflict(&asked)?.expect("docs/api is in docs");
    /// assert_eq!(conflict.rule().as_str(), "overlap");
    /// assert!(locks.find_scope_conflict(&LockRequest::new("docs").scope(["src"]))?.is_none());
    /// guard.release()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`find_conflict`](Self::find_conflict): an invalid scope entry (or singleton loop
    /// name), or a directory that cannot be opened, locked or scanned.
    pub fn find_scope_conflict(&self, request: &LockRequest) -> Result<Option<Conflict>, Error> {
        protocol::find_conflict(
            &self.running_dir,
            request,
            Question::Scope,
            self.sentinel_bound,
            self.invalid_grace,
        )
    }

    /// Every live lock, nested names included, every live waiter ([`LockListing::waiters`]),
    /// and every `*.lock` file that is not a readable live lock. Stale locks are reclaimed on
    /// the way, and so are the tickets that waiters killed while waiting left in the queue
    /// ([`LockListing::stale_tickets`]); a live waiter's ticket (its flock is held) is left
    /// alone. To look without changing anything, see
    /// [`list_locks_dry_run`](Self::list_locks_dry_run).
    ///
    /// # Errors
    ///
    /// An [`Error`] naming the path when the directory, its sentinel or its waiting queue
    /// (`.queue/`) cannot be opened, locked (within the sentinel bound:
    /// [`ErrorKind::Busy`](crate::ErrorKind::Busy)) or listed. A missing directory is not an
    /// error: there are no locks (and a missing queue has no tickets).
    ///
    /// # Examples
    ///
    /// ```
    /// use scope_lock::{LockManager, LockRequest};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let project = tempfile::tempdir()?;
    /// let locks = LockManager::new(project.path().join(".loops"));
    /// let _guard = locks.try_acquire(&LockRequest::new("docs").scope(["docs/"]))?;
    ///
    /// let listing = locks.list_locks()?;
    /// for lock in listing.locks() {
    ///     let record = lock.record();
    ///     println!("{} pid {} since {}: {:?}", lock.lock_name(), record.pid(), record.started_at(), record.scope_paths());
    /// }
    /// for problem in listing.problems() {
    ///     eprintln!("not a live lock: {problem}");
    /// }
    /// assert_eq!(listing.locks()[0].lock_name(), "docs");
    /// # Ok(()) }
    /// ```
    pub fn list_locks(&self) -> Result<LockListing, Error> {
        protocol::list(
            &self.running_dir,
            self.sentinel_bound,
            Scan::clean(self.invalid_grace),
        )
    }

    /// What [`list_locks`](Self::list_locks) would report, without changing anything: the
    /// same scan judges every file the same way, but leaves stale lock files, unheld files of
    /// ours with invalid records, publications orphaned by killed acquirers and tickets of dead
    /// waiters where they are. [`LockListing::reclaimed`], [`LockListing::orphans`] and
    /// [`LockListing::stale_tickets`] name what a cleaning scan would remove, and problems of
    /// kind [`WouldMoveAside`](crate::ProblemKind::WouldMoveAside) what it would move aside;
    /// [`LockListing::waiters`] are the live waiters.
    ///
    /// It writes nothing at all, not even the directory sentinel: it opens the sentinel
    /// read-only and holds its flock while it looks, and where there is no sentinel it looks
    /// without one (nobody has taken a lock there through it). So it works on a directory it
    /// may not write, or a read-only filesystem. Probing whether a file is held takes its
    /// flock for an instant, as every scan does; that is the only trace it leaves. The answer
    /// can be out of date as soon as it is returned.
    ///
    /// # Errors
    ///
    /// As [`list_locks`](Self::list_locks), but for a missing sentinel, which is not one.
    pub fn list_locks_dry_run(&self) -> Result<LockListing, Error> {
        protocol::list(
            &self.running_dir,
            self.sentinel_bound,
            Scan::dry_run(self.invalid_grace),
        )
    }

    /// Moves aside, now, the lock file `request` would take, if it is not flocked and its
    /// record cannot be read: to `.<name>.invalid-<pid>-<n>` beside it, where scans no longer
    /// see it (nothing is deleted). This is for a file that blocks every scope because nothing
    /// proves it alive or dead, when the caller knows no process of the original is writing it,
    /// and will not wait for [the grace](Self::with_invalid_grace). A file whose pid can be read
    /// is moved too: the caller takes it for garbage.
    ///
    /// # Errors
    ///
    /// An [`Error`] naming the file when it does not exist or cannot be opened, probed, read
    /// or moved; of kind [`ErrorKind::NotInvalid`](crate::ErrorKind::NotInvalid) when it is
    /// flocked (a live holder, or a half-published lock of ours) or its record is valid (a lock
    /// that `break --kill` or `clean` handles); [`ErrorKind::NotALockFile`](crate::ErrorKind::NotALockFile)
    /// when it is not a regular file; and as for [`list_locks`](Self::list_locks) for the
    /// directory and its sentinel.
    pub fn set_aside_invalid(&self, request: &LockRequest) -> Result<PathBuf, Error> {
        protocol::set_aside_invalid(&self.running_dir, request, self.sentinel_bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sentinel_bound_is_the_default_until_set() {
        let locks = LockManager::new("loops");
        assert_eq!(locks.sentinel_bound(), DEFAULT_SENTINEL_BOUND);
        let locks = locks.with_sentinel_bound(Duration::from_millis(250));
        assert_eq!(locks.sentinel_bound(), Duration::from_millis(250));
        assert_eq!(locks.running_dir(), Path::new("loops/.running"));
        assert_eq!(locks.invalid_grace(), DEFAULT_INVALID_GRACE);
        let locks = locks.with_invalid_grace(Duration::from_secs(5));
        assert_eq!(locks.invalid_grace(), Duration::from_secs(5));
    }
}
