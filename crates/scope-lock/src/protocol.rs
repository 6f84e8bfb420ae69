//! The lock protocol, top to bottom.
//!
//! A scope lock is a file `.running/<stem>.lock` holding a [`LockRecord`], **and** an open
//! descriptor of that file, exclusively `flock`ed, owned by a [`ScopeGuard`] for exactly as long
//! as the lock is held. The file says *what* is held; the flock says *that* it is held. The
//! kernel drops the flock when the holder's process dies, however it dies, so a lock can never
//! outlive its holder and no pid is ever consulted for our own locks.
//!
//! Every decision is taken while holding `flock(LOCK_EX)` on the directory sentinel
//! `.running/.acquire.lock` (the same file little-loops uses, so both implementations serialise
//! against each other). Each step that must run under it takes the [`Sentinel`] as a token, so
//! none can be called without it. An attempt to acquire ([`attempt`], which is all of
//! [`try_acquire`]) is steps 1 to 4 in this order, under one hold of the sentinel; a waiting
//! acquire ([`acquire_until`]) repeats attempts with step 6 between them; [`find_conflict`] is
//! steps 1 to 3 and [`list`] steps 1 and 2; [`release`] is step 5.
//! [`list`] with [`Stale::Report`] is an inspection: the same steps, but step 2 only reports
//! what it would reclaim, move aside or remove.
//!
//! 1. **Sentinel** ([`Sentinel::lock`]): open `.running/` (refusing a symlink there) and, in
//!    it, the sentinel without following symlinks, refuse anything but a
//!    regular file and filesystems whose flock is unreliable, try for the flock without blocking
//!    for at most the manager's bound, woken between tries by the holder closing the sentinel
//!    (so a stopped holder delays nobody longer; past it the error is `Busy` and names the
//!    holder's pid), then check the path still names the locked
//!    inode (a sentinel deleted and recreated meanwhile would split contenders across two
//!    inodes). Then, when acquiring, check that the lock file's name is
//!    not taken by a directory, symlink or FIFO ([`ensure_target_usable`]), so that is a clear
//!    error rather than a hang or a confusing `EEXIST`.
//! 2. **Scan** ([`scan`]): walk `.running/` recursively (nested stems included) through
//!    directory descriptors, never into a symlink, skipping dot entries, and classify each
//!    `*.lock`:
//!    - flock taken by someone and record valid → live ([`Liveness::Flock`]);
//!    - flock taken, record invalid → a live lock of unknown scope: blocks everything;
//!    - flock free, record ours (`"liveness": "flock"`) → its holder is gone: reclaim;
//!    - flock free, record the original's → `kill(pid, 0)`: `ESRCH` reclaims, anything else is
//!      live ([`Liveness::Pid`]);
//!    - flock free, record invalid → moved aside to a dot file, never deleted;
//!    - not a regular file → reported, left alone.
//!
//!    Reclaiming unlinks only if the path still names the inode just probed. Files that our own
//!    publication left behind when its process was killed mid-way are removed too: while we
//!    hold the sentinel nobody can be publishing. An inspection ([`Stale::Report`]) judges
//!    every file the same way and reports what it would reclaim, move aside or remove, but
//!    changes nothing.
//!
//!    Then the waiting queue (`.running/.queue/`, see [`queue`]): each live waiter's ticket,
//!    in arrival order; tickets whose flock is free (their waiter died) are removed.
//! 3. **Decide** ([`decide`]): the first live lock that holds our name, is a singleton of our
//!    name (when we are one), or overlaps our scope, unless its holder is one of our ancestor
//!    processes (a loop running a nested loop must not block itself; for our records, proven
//!    by [`Family`], not by a pid number that another pid namespace may reuse); else the
//!    first waiter that arrived before us and wants an overlapping scope (or the same
//!    singleton): it goes first, so `try_acquire` cannot jump the queue. (A waiter that is
//!    itself blocked by a lock of ours or of an ancestor's does not count: it cannot go before
//!    us.)
//! 4. **Publish** ([`publish`]): write the record to a fresh dot file in the target directory,
//!    flock it, and only then give it its final name with a no-overwrite rename. Nobody ever
//!    sees a lock file that is empty, partial, or not yet held.
//! 5. **Release** ([`release`]): under the sentinel, unlink the path only if it still names the
//!    inode we hold, then close the descriptor, which ends the flock. If the sentinel stays busy
//!    for the whole bound, close the descriptor anyway: the lock ends, and the file, now stale,
//!    is reclaimed by the next scan. A forked child that inherited the guard only closes its
//!    copy of the descriptor (the parent's lock stays held: flock belongs to the open file
//!    description, and we never call `LOCK_UN`).
//! 6. **Wait** ([`acquire_until`]): the first blocked attempt takes a ticket, in the same hold
//!    of the sentinel that saw the conflict. Between attempts, wait (never past the deadline)
//!    for an event about the file that blocks it: removed, or its descriptor closed, which is
//!    also how a holder's death shows. A waiter with a ticket is blocked by the earlier waiter
//!    ahead of it before any lock, so a release wakes the head of the queue and no one else.
//!    The watches are in place before the first attempt. The attempt that succeeds removes
//!    the ticket as it publishes; a waiter that gives up removes it on the way out; one that
//!    is killed leaves a ticket whose flock is free, which the next scan removes.
//!
//! Every system call goes through [`imp`](crate::sys::imp); `clippy.toml` forbids std's lock
//! methods anywhere else. Below `.running/`, nothing is reached by a path: every name is used
//! relative to a directory held open ([`imp::Dir`], opened from `.running/` down without
//! following symlinks), so a co-user who swaps a directory for a symlink between a check and
//! its use cannot redirect the use (docs/protocol.md, "Sharing a directory between users").

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::ancestry::Family;
use crate::backoff::{Backoff, deadline_after};
use crate::error::{AcquireError, Conflict, ConflictRule, Error, ErrorKind};
use crate::fault;
use crate::guard::ScopeGuard;
use crate::listing::{FileKind, LiveLock, Liveness, LockListing, ProblemKind, ScanProblem};
use crate::python_json::salvage;
use crate::queue::{self, Queue, Queued, Ticket};
use crate::record::{LockRecord, MAX_RECORD_BYTES};
use crate::request::{self, LOCK_SUFFIX, LockRequest, MAX_NESTING, NAME_MAX};
use crate::scope::{self, ScopeIndex};
use crate::sys::imp::{self, DirWatch, FileId, FileType, Interest};
use crate::wait::{WaitObserver, Waiting};

/// The directory sentinel's name, as in the original.
pub(crate) const SENTINEL_NAME: &str = ".acquire.lock";

/// Files being published are named `<PUBLISH_PREFIX><random><PUBLISH_SUFFIX>`.
const PUBLISH_PREFIX: &str = ".scope-lock-publish-";
const PUBLISH_SUFFIX: &str = ".tmp";

/// How often to retry when the sentinel we locked turns out to have been replaced.
const SENTINEL_ATTEMPTS: usize = 16;

/// The first and the longest pause between tries of a busy sentinel where no watch wakes the
/// waiter. Holds of the sentinel last well under a millisecond (a scan and a rename), so the
/// first retries come quickly; the cap keeps a long wait from spinning.
const SENTINEL_FIRST_PAUSE: Duration = Duration::from_micros(50);
const SENTINEL_MAX_PAUSE: Duration = Duration::from_millis(5);

/// The longest a waiter for a busy sentinel sleeps on its watch before trying again anyway. A
/// close wakes it at once; this is for the release it cannot see: a holder whose descriptor a
/// forked child still shares unlocks without closing the last copy, and a sentinel replaced
/// meanwhile is not the file the watch is on.
const SENTINEL_RECHECK: Duration = SENTINEL_MAX_PAUSE;

/// The first and the longest pause between looks at a conflict that no event can announce: a
/// lock of the original's, whose holder's death closes nothing we can watch (or any conflict,
/// on a system without a directory watch).
const POLL_FIRST_PAUSE: Duration = Duration::from_millis(2);
pub(crate) const POLL_MAX_PAUSE: Duration = Duration::from_millis(200);

// ---------------------------------------------------------------------------------------------
// The sequences: what acquiring, asking and listing do, in order
// ---------------------------------------------------------------------------------------------

/// A request made ready once for any number of attempts: validated, its scope normalised,
/// its lock file named, its directory created.
struct Prepared<'a> {
    running_dir: PathBuf,
    request: &'a LockRequest,
    /// The record to publish (restamped at each attempt), its scope normalised.
    record: LockRecord,
    target: PathBuf,
    /// See [`Scan::invalid_grace`].
    invalid_grace: Duration,
}

impl<'a> Prepared<'a> {
    fn new(
        running_dir: &'a Path,
        request: &'a LockRequest,
        invalid_grace: Duration,
    ) -> Result<Self, Error> {
        request.validate()?;
        let record = request.record(normalize_scope(request)?)?;
        // Resolved once, now: the guard must release this very file even if the process
        // changes its current directory while it holds the lock.
        let running_dir = imp::absolute(running_dir)
            .map_err(|err| Error::io("cannot resolve the lock directory", running_dir, err))?;
        let target = lock_path(&running_dir, request);
        // Usually there already: one `open` instead of `create_dir_all`'s `mkdir` and `stat`.
        // (What is there is judged when the sentinel opens it.)
        if imp::Dir::open(&running_dir).is_err() {
            imp::create_dir_all(&running_dir)
                .map_err(|err| Error::io("cannot create lock directory", &running_dir, err))?;
        }
        Ok(Self {
            running_dir,
            request,
            record,
            target,
            invalid_grace,
        })
    }
}

/// What one attempt came to.
enum Outcome {
    Held(ScopeGuard),
    Blocked(Conflict),
}

/// Acquires `request` without waiting for the scope: one attempt.
pub(crate) fn try_acquire(
    running_dir: &Path,
    request: &LockRequest,
    bound: Duration,
    invalid_grace: Duration,
) -> Result<ScopeGuard, AcquireError> {
    let prepared = Prepared::new(running_dir, request, invalid_grace)?;
    match attempt(&prepared, bound, &mut None, false)? {
        Outcome::Held(guard) => Ok(guard),
        Outcome::Blocked(conflict) => Err(AcquireError::Conflict(Box::new(conflict))),
    }
}

/// One attempt, under one hold of the sentinel: sentinel, target check, scan (locks and
/// queue), decide, publish. `ticket` is this waiter's place in the queue, if it has one; with
/// `join_queue`, a blocked attempt that has none takes one, in the same hold of the sentinel
/// that saw the conflict, so arrival order is the order in which waiters found the scope taken.
fn attempt(
    prepared: &Prepared<'_>,
    bound: Duration,
    ticket: &mut Option<Ticket>,
    join_queue: bool,
) -> Result<Outcome, Error> {
    let Prepared {
        running_dir,
        request,
        record,
        target,
        invalid_grace,
    } = prepared;
    let sentinel = Sentinel::lock(running_dir, bound)?;
    fault::pause("acquire:sentinel-held");
    ensure_target_usable(target, &sentinel)?;
    let listing = scan(Scan::clean(*invalid_grace), &sentinel)?;
    let queue = queue::scan(Stale::Clean, &sentinel)?;
    let ours = ticket.as_ref().map(Ticket::number);
    let index = ScopeIndex::new(record.scope());
    let mut family = Family::default();
    if let Some(conflict) = decide(&listing, &queue, request, &index, target, ours, &mut family) {
        if join_queue && ticket.is_none() {
            let taken = Ticket::take(&queue, &record.restamped(), &sentinel)?;
            let number = taken.number();
            *ticket = Some(taken);
            // From now on a waiter with a ticket: what it waits for is the waiter just ahead
            // of it, if any, not the lock that every waiter behind a holder would watch.
            let as_waiter = decide(
                &listing,
                &queue,
                request,
                &index,
                target,
                Some(number),
                &mut family,
            );
            return Ok(Outcome::Blocked(as_waiter.unwrap_or(conflict)));
        }
        return Ok(Outcome::Blocked(conflict));
    }
    stale_file_in_the_way(&listing, target, &sentinel)?;
    let record = record.restamped();
    let (file, id) = publish(target, &record, &sentinel)?;
    // Leave the queue in the same hold of the sentinel that publishes the lock: whoever looks
    // next sees our lock, never neither.
    drop(ticket.take());
    // The new lock is flocked by `file` already; the sentinel can go.
    drop(sentinel);
    Ok(Outcome::Held(ScopeGuard::new(
        file,
        id,
        target.clone(),
        running_dir.to_path_buf(),
        record,
        bound,
    )))
}

/// Acquires `request`, waiting until `deadline` if the scope is taken: attempts, and between
/// them, waits for something that may have freed it.
///
/// A blocked attempt takes a ticket (see [`queue`]) and then waits for an event in `.running/`
/// (a release, a reclaim, a holder's descriptor closing, which is also how a death shows) or in
/// the queue (an earlier waiter leaving), with no polling interval. Locks of the original hold
/// no flock, so their holders' deaths make no event: those, and systems without a directory
/// watch, are polled with a jittered backoff of a few milliseconds growing to
/// [`POLL_MAX_PAUSE`]. Watches are added before the attempt that looks at their directory, so
/// nothing that happens after an attempt can be missed.
pub(crate) fn acquire_until(
    running_dir: &Path,
    request: &LockRequest,
    bound: Duration,
    invalid_grace: Duration,
    deadline: Instant,
    observer: &mut dyn WaitObserver,
) -> Result<ScopeGuard, AcquireError> {
    let prepared = Prepared::new(running_dir, request, invalid_grace)?;
    let started = Instant::now();
    let mut ticket = None;
    // Watched before the first attempt, so that the attempt that finds the scope taken is the
    // last look before the wait. A watch added only after it would need one more attempt
    // (events before it went unseen): one more hold of the sentinel per waiting acquire, just
    // when the waiter that a release woke wants it. The queue's directory exists once anyone
    // has waited; until then it is watched after the attempt that creates it.
    let mut watch = DirWatch::new().ok();
    if let Some(watch) = &mut watch {
        let _ = watch.watch(&prepared.running_dir, Interest::LockFiles);
        let _ = watch.watch(&queue::queue_dir(&prepared.running_dir), Interest::All);
    }
    let mut reported_at: Option<Instant> = None;
    let mut poll = Backoff::new(POLL_FIRST_PAUSE, POLL_MAX_PAUSE);
    loop {
        // The sentinel's bound, but not past the deadline (one try at least).
        let sentinel_bound = bound.min(deadline.saturating_duration_since(Instant::now()));
        let conflict = match attempt(&prepared, sentinel_bound, &mut ticket, true) {
            Ok(Outcome::Held(guard)) => return Ok(guard),
            Ok(Outcome::Blocked(conflict)) => conflict,
            // A stuck sentinel holder costs this wait time, not its end.
            Err(err) if err.kind() == ErrorKind::Busy && Instant::now() < deadline => continue,
            Err(err) => return Err(err.into()),
        };
        let now = Instant::now();
        if now >= deadline {
            // Dropping the ticket on the way out withdraws it.
            return Err(AcquireError::Timeout(Box::new(conflict)));
        }
        fault::pause("wait:blocked");
        if watch.is_none() {
            // No watch to be had (inotify instances are limited per user): poll instead.
            watch = DirWatch::new().ok();
        }
        let (precise, fresh) = match &mut watch {
            Some(watch) => watch_for(watch, &prepared.running_dir, &conflict),
            None => (false, false),
        };
        if fresh {
            // Something may have changed before the new watch was in place: look again.
            continue;
        }
        // Reported only from here on, where every event that could end the wait is caught:
        // whoever hears "waiting" may count on the waiter noticing what happens next.
        // When the observer wants to hear again; `None` when it does not.
        let interval = observer.interval();
        let next_report =
            |at: Instant| interval.map(|every| at.checked_add(every).unwrap_or(deadline));
        if reported_at.is_none_or(|at| next_report(at).is_some_and(|next| now >= next)) {
            observer.waiting(&Waiting {
                conflict: &conflict,
                waited: now - started,
                first: reported_at.is_none(),
                ticket: ticket.as_ref().map(Ticket::number),
            });
            reported_at = Some(now);
        }
        let mut wake = reported_at
            .and_then(next_report)
            .map_or(deadline, |next| deadline.min(next));
        let flocked = conflict.holder().is_some_and(LockRecord::is_flock_liveness);
        if !precise || !flocked {
            wake = wake.min(now + poll.next_delay(deadline));
        }
        let timeout = wake.saturating_duration_since(Instant::now());
        // Nothing but an event about the file that blocks us can let us go on.
        let path = conflict.lock_path();
        let focus = path.parent().zip(path.file_name()).filter(|_| flocked);
        match &mut watch {
            // A watch that fails is given up for polling, not turned into an error.
            Some(active) => {
                if active.wait(timeout, focus).is_err() {
                    watch = None;
                }
            }
            None => std::thread::sleep(timeout),
        }
    }
}

/// Watches the directories whose events can end this wait: `.running/`, the queue, and the
/// conflicting file's own directory (a nested name). Returns whether the watch is precise for
/// all of them, and whether any was added just now.
fn watch_for(watch: &mut DirWatch, running_dir: &Path, conflict: &Conflict) -> (bool, bool) {
    let queue_dir = queue::queue_dir(running_dir);
    let mut dirs = vec![
        (running_dir.to_path_buf(), Interest::LockFiles),
        (queue_dir.clone(), Interest::All),
    ];
    if let Some(parent) = conflict.lock_path().parent() {
        let interest = if parent == queue_dir {
            Interest::All
        } else {
            Interest::LockFiles
        };
        dirs.push((parent.to_path_buf(), interest));
    }
    let (mut precise, mut fresh) = (watch.is_precise(), false);
    for (dir, interest) in dirs {
        match watch.watch(&dir, interest) {
            Ok(added) => fresh |= added,
            Err(_) => precise = false,
        }
    }
    (precise, fresh)
}

/// The conflict that would make [`try_acquire`] refuse `request` right now: steps 1 to 3.
pub(crate) fn find_conflict(
    running_dir: &Path,
    request: &LockRequest,
    bound: Duration,
    invalid_grace: Duration,
) -> Result<Option<Conflict>, Error> {
    request.validate()?;
    let scope = normalize_scope(request)?;
    if !present(running_dir)? {
        return Ok(None);
    }
    let sentinel = Sentinel::lock(running_dir, bound)?;
    let listing = scan(Scan::clean(invalid_grace), &sentinel)?;
    let queue = queue::scan(Stale::Clean, &sentinel)?;
    let target = lock_path(running_dir, request);
    Ok(decide(
        &listing,
        &queue,
        request,
        &ScopeIndex::new(&scope),
        &target,
        None,
        &mut Family::default(),
    ))
}

/// Every live lock and every problem: steps 1 and 2 (the queue too, for its stale tickets),
/// cleaning or only reporting as `stale` says. A missing directory holds no locks.
pub(crate) fn list(
    running_dir: &Path,
    bound: Duration,
    scan_mode: Scan,
) -> Result<LockListing, Error> {
    let stale = scan_mode.stale;
    if !present(running_dir)? {
        return Ok(LockListing {
            inspection: stale == Stale::Report,
            ..LockListing::default()
        });
    }
    let sentinel = Sentinel::lock(running_dir, bound)?;
    let mut listing = scan(scan_mode, &sentinel)?;
    let queue = queue::scan(stale, &sentinel)?;
    listing.stale_tickets = queue.stale;
    listing.problems.extend(queue.problems);
    listing.problems.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(listing)
}

/// Moves aside the lock file `request` names if it is not flocked and its record cannot be
/// read, under the sentinel: `LockManager::set_aside_invalid`.
pub(crate) fn set_aside_invalid(
    running_dir: &Path,
    request: &LockRequest,
    bound: Duration,
) -> Result<PathBuf, Error> {
    request.validate()?;
    let sentinel = Sentinel::lock(running_dir, bound)?;
    let target = lock_path(sentinel.dir().path(), request);
    let missing = || Error::io("cannot open", &target, io::ErrorKind::NotFound.into());
    let Some((dir, name)) = open_parent(&sentinel, &target, false)? else {
        return Err(missing());
    };
    let entry = Entry::new(&dir, name);
    let file = entry
        .dir
        .open_file(&entry.name)
        .map_err(|err| open_error(entry.dir, &entry.name.to_string_lossy(), err))?;
    let meta = imp::metadata(&file).map_err(|err| Error::io("cannot stat", &target, err))?;
    if !meta.is_file() {
        return Err(not_a_lock_file(&target, imp::file_type_of(&meta)));
    }
    let not_invalid = |why: &str| Error::at_path(ErrorKind::NotInvalid, &target, why);
    if !imp::try_lock_exclusive(&file).map_err(|err| Error::io("cannot lock", &target, err))? {
        return Err(not_invalid(
            "is flocked, so its holder is alive: not moved; `scope-lock break` shows who holds \
             it, and `--kill` stops them",
        ));
    }
    let bytes = imp::read_sized(&file, meta.len(), MAX_RECORD_BYTES + 1)
        .map_err(|err| Error::io("cannot read", &target, err))?;
    let reason = match LockRecord::from_json(&bytes) {
        Ok(_) => {
            return Err(not_invalid(
                "holds a valid record: not moved; a scan reclaims it once its holder is gone \
                 (`scope-lock clean`), and `scope-lock break` shows its holder",
            ));
        }
        Err(err) => format!("{err}; moved aside on request"),
    };
    let mut listing = LockListing::default();
    move_aside(&entry, &file, reason, Stale::Clean, &mut listing, &sentinel);
    match listing.problems.pop().map(|problem| problem.kind) {
        Some(ProblemKind::Invalid {
            moved_to: Some(moved_to),
            ..
        }) => Ok(moved_to),
        Some(ProblemKind::Invalid { reason, .. }) => Err(Error::at_path(
            ErrorKind::StaleInTheWay,
            &target,
            format!("cannot be moved aside: {reason}"),
        )),
        // Removed or replaced between the open and the move: nothing of ours to move.
        _ => Err(Error::at_path(
            ErrorKind::Interference,
            &target,
            "was removed or replaced while it was being moved aside; look again",
        )),
    }
}

/// Whether the directory exists: asking and listing never create it.
fn present(running_dir: &Path) -> Result<bool, Error> {
    match open_running_dir(running_dir) {
        Err(err) if err.io_error().map(io::Error::kind) == Some(io::ErrorKind::NotFound) => {
            Ok(false)
        }
        Err(err) => Err(err),
        Ok(_) => Ok(true),
    }
}

/// Opens `.running/` itself, refusing a symlink there: a co-user who can write its parent could
/// point it anywhere, and everything the protocol removes or moves aside would be removed
/// there. (The path up to the loops directory is the caller's choice and is followed.)
fn open_running_dir(running_dir: &Path) -> Result<imp::Dir, Error> {
    imp::Dir::open(running_dir).map_err(|err| match imp::lstat_type(running_dir) {
        Ok(FileType::Symlink) => Error::at_path(
            ErrorKind::NotALockFile,
            running_dir,
            "is a symlink; the lock directory must be a real directory, since anyone who can \
             write its parent could point a symlink elsewhere and have stale files removed \
             there: use the directory it points to as the loops directory's .running, or \
             replace the link with a directory",
        ),
        Ok(file_type) if file_type != FileType::Directory => Error::at_path(
            ErrorKind::NotALockFile,
            running_dir,
            format!(
                "is a {}, not a directory; cannot hold lock files",
                describe(file_type)
            ),
        ),
        _ => Error::io("cannot open", running_dir, err),
    })
}

/// The lock file `request` takes in `running_dir`.
pub(crate) fn lock_path(running_dir: &Path, request: &LockRequest) -> PathBuf {
    running_dir.join(format!("{}{LOCK_SUFFIX}", request.stem()))
}

fn normalize_scope(request: &LockRequest) -> Result<Vec<String>, Error> {
    request
        .effective_scope()
        .into_iter()
        .map(scope::normalize_path)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. The sentinel
// ---------------------------------------------------------------------------------------------

/// The exclusive flock on `.running/.acquire.lock`, held while this value lives, and
/// `.running/` itself, held open: every step under the sentinel reaches the directory through
/// it, never again by its path.
pub(crate) struct Sentinel {
    file: File,
    dir: imp::Dir,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        // Unlike a lock file's, the sentinel's flock is ended explicitly: if another thread
        // forked meanwhile, the child shares this open file description, and merely closing
        // our descriptor would leave the whole directory locked until the child exits.
        let _ = imp::unlock(&self.file);
    }
}

impl Sentinel {
    /// `.running/`, as opened when the sentinel was locked.
    pub(crate) fn dir(&self) -> &imp::Dir {
        &self.dir
    }

    /// Takes the directory sentinel, trying for at most `bound` (at least once).
    ///
    /// flock has no timed form, so this tries without blocking, and while the sentinel is busy
    /// waits for its holder to close it: a watch wakes us on every close of the sentinel
    /// ([`DirWatch::watch_closes`]), and every holder closes its descriptor once it has
    /// unlocked (ours unlock explicitly first, then close). The watch is added after a
    /// failed try and followed by one more try, so a close between the two cannot be missed;
    /// a wait still ends after [`SENTINEL_RECHECK`] for a release that closes nothing we can
    /// see. Where there is no watch, it pauses between tries instead (a jittered backoff from
    /// microseconds up to a few milliseconds). Either way, a process that holds the sentinel
    /// and is stopped or stuck costs others at most `bound`, after which they get
    /// [`ErrorKind::Busy`] naming it, never a hang.
    pub(crate) fn lock(running_dir: &Path, bound: Duration) -> Result<Self, Error> {
        Self::lock_with(running_dir, bound, Patience::WATCH, &mut || {})
    }

    /// [`lock`](Self::lock), waiting as `patience` says and calling `before_wait` each time
    /// it is about to wait for a busy sentinel (tests use it to release the sentinel exactly
    /// then).
    fn lock_with(
        running_dir: &Path,
        bound: Duration,
        patience: Patience,
        before_wait: &mut dyn FnMut(),
    ) -> Result<Self, Error> {
        let dir = open_running_dir(running_dir)?;
        let path = dir.join(SENTINEL_NAME);
        let deadline = deadline_after(bound);
        let mut backoff = Backoff::new(patience.first_pause, patience.max_pause);
        // Made the first time the sentinel is busy; `None` inside when no watch can be had.
        let mut watch: Option<Option<DirWatch>> = None;
        for _ in 0..SENTINEL_ATTEMPTS {
            let file = dir
                .open_sentinel(SENTINEL_NAME)
                .map_err(|err| open_error(&dir, SENTINEL_NAME, err))?;
            // One `fstat` serves both: the type, and the inode the descriptor (so the lock
            // we take) refers to, which no later call can change.
            let meta = imp::metadata(&file).map_err(|err| Error::io("cannot stat", &path, err))?;
            if !meta.is_file() {
                return Err(not_a_lock_file(&path, imp::file_type_of(&meta)));
            }
            let locked = imp::id_of(&meta);
            if let Some(fs_name) = imp::unreliable_flock_filesystem(&file)
                .map_err(|err| Error::io("cannot inspect the filesystem of", &path, err))?
            {
                return Err(Error::at_path(
                    ErrorKind::UnsupportedFilesystem,
                    &path,
                    format!(
                        "is on {fs_name}, where flock is emulated or not shared between \
                         machines; scope locks there would not exclude each other"
                    ),
                ));
            }
            while !imp::try_lock_exclusive(&file)
                .map_err(|err| Error::io("cannot lock", &path, err))?
            {
                if watch.is_none() {
                    watch = Some(patience.watch.then(|| watch_closes(&path)).flatten());
                    if watch.as_ref().is_some_and(Option::is_some) {
                        // A close before the watch was in place went unseen: try again.
                        continue;
                    }
                }
                let now = Instant::now();
                if now >= deadline {
                    return Err(busy(&path, &file, bound));
                }
                before_wait();
                match watch.as_mut().and_then(Option::as_mut) {
                    Some(active) => {
                        let timeout = patience.max_pause.min(deadline - now);
                        if active.wait(timeout, None).is_err() {
                            // Given up for the backoff, not turned into an error.
                            watch = Some(None);
                        }
                    }
                    None => std::thread::sleep(backoff.next_delay(deadline)),
                }
            }
            let named = dir
                .id_of(SENTINEL_NAME)
                .map_err(|err| Error::io("cannot stat", &path, err))?;
            if named == Some(locked) {
                return Ok(Self { file, dir });
            }
        }
        Err(Error::at_path(
            ErrorKind::Interference,
            &path,
            "keeps being replaced while we lock it; is something deleting it?",
        ))
    }
}

/// How [`Sentinel::lock_with`] waits for a busy sentinel.
#[derive(Debug, Clone, Copy)]
struct Patience {
    /// Wake on the sentinel's closes where the system can watch them; else back off.
    watch: bool,
    /// The backoff's first pause, without a watch.
    first_pause: Duration,
    /// The backoff's longest pause without a watch ([`SENTINEL_MAX_PAUSE`]); with one, the
    /// longest wait on it before trying again anyway ([`SENTINEL_RECHECK`]).
    max_pause: Duration,
}

impl Patience {
    const WATCH: Self = Self {
        watch: true,
        first_pause: SENTINEL_FIRST_PAUSE,
        max_pause: SENTINEL_RECHECK,
    };
}

/// A watch on the closes of the sentinel at `path`, where the system has one.
fn watch_closes(path: &Path) -> Option<DirWatch> {
    let mut watch = DirWatch::new().ok()?;
    (watch.is_precise() && watch.watch_closes(path).is_ok()).then_some(watch)
}

/// The error for a sentinel that stayed locked for all of `bound`: names it and, where the
/// system can tell, who holds it.
fn busy(path: &Path, file: &File, bound: Duration) -> Error {
    let holders = imp::flock_holders(file);
    let who = match holders.as_slice() {
        [] => "another process".to_owned(),
        [pid] => format!("pid {pid}"),
        pids => format!(
            "pids {}",
            pids.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Error::at_path(
        ErrorKind::Busy,
        path,
        format!(
            "still locked by {who} after {bound:?}; a process holding the directory sentinel \
             may be stopped or stuck"
        ),
    )
}

/// Refuses a target that exists but is not a regular file (so acquiring over a directory,
/// symlink or FIFO is a clear error, not a hang or a confusing `EEXIST`). Under the sentinel,
/// so that what we checked is what publication finds.
pub(crate) fn ensure_target_usable(target: &Path, sentinel: &Sentinel) -> Result<(), Error> {
    let Some((dir, name)) = open_parent(sentinel, target, false)? else {
        return Ok(());
    };
    match dir.stat(&name) {
        Ok(Some(stat)) if stat.file_type != FileType::RegularFile => {
            Err(not_a_lock_file(target, stat.file_type))
        }
        Ok(_) => Ok(()),
        Err(err) => Err(Error::io("cannot stat", target, err)),
    }
}

/// `.running/` or one of its sub-directories, held open.
pub(crate) enum DirRef<'a> {
    Running(&'a imp::Dir),
    Nested(imp::Dir),
}

impl std::ops::Deref for DirRef<'_> {
    type Target = imp::Dir;

    fn deref(&self) -> &imp::Dir {
        match self {
            DirRef::Running(dir) => dir,
            DirRef::Nested(dir) => dir,
        }
    }
}

/// The directory of the lock file `target` (a path in the sentinel's `.running/`), opened
/// from `.running/` one component at a time, never through a symlink, and the file's name in
/// it. With `make`, missing directories are made (with `.running/`'s mode) and anything else
/// in the way is an error; without, a missing one is `None`: nothing is there.
fn open_parent<'a>(
    sentinel: &'a Sentinel,
    target: &Path,
    make: bool,
) -> Result<Option<(DirRef<'a>, OsString)>, Error> {
    let running = sentinel.dir();
    let relative = target.strip_prefix(running.path()).map_err(|_| {
        Error::at_path(
            ErrorKind::Interference,
            target,
            format!(
                "is not inside {}; this is a bug in scope-lock",
                running.path().display()
            ),
        )
    })?;
    let (Some(name), Some(parent)) = (relative.file_name(), relative.parent()) else {
        return Err(Error::at_path(
            ErrorKind::NotALockFile,
            target,
            "names no file in the lock directory",
        ));
    };
    let mut dir = DirRef::Running(running);
    for component in parent.components() {
        let component = component.as_os_str();
        let path = dir.join(component);
        let next = match dir.stat(component) {
            Ok(Some(stat)) if stat.file_type == FileType::Directory => dir.open_dir(component),
            Ok(Some(stat)) => {
                return Err(Error::at_path(
                    ErrorKind::NotALockFile,
                    &path,
                    format!(
                        "is a {}, not a directory; cannot hold nested lock files",
                        describe(stat.file_type)
                    ),
                ));
            }
            Ok(None) if !make => return Ok(None),
            Ok(None) => {
                fault::pause("acquire:directory-missing");
                let made = dir
                    .open_or_make_dir(component)
                    .map_err(|err| Error::io("cannot create directory", &path, err))?;
                dir = DirRef::Nested(made);
                continue;
            }
            Err(err) => return Err(Error::io("cannot stat", &path, err)),
        };
        dir = match next {
            Ok(next) => DirRef::Nested(next),
            Err(err) if !make && err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(Error::io("cannot open directory", &path, err)),
        };
    }
    Ok(Some((dir, name.to_os_string())))
}

// ---------------------------------------------------------------------------------------------
// 2. The scan
// ---------------------------------------------------------------------------------------------

/// What a scan does with the stale files it finds: stale locks, unheld files of ours with
/// invalid records, and publications whose publisher died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stale {
    /// Reclaim, move aside, remove: what every acquire, question and listing does.
    Clean,
    /// Report them as a cleaning scan would, and change nothing (an inspection).
    Report,
}

/// How a scan judges and treats what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scan {
    /// What to do with stale files.
    pub(crate) stale: Stale,
    /// How long a lock file that nothing proves alive or dead (not flocked, no record, no pid:
    /// it may be the original's, caught half written) must stay unchanged before it is taken
    /// for garbage and moved aside. See `LockManager::with_invalid_grace`.
    pub(crate) invalid_grace: Duration,
}

impl Scan {
    /// A scan that cleans up, as acquires and questions do.
    pub(crate) fn clean(invalid_grace: Duration) -> Self {
        Self {
            stale: Stale::Clean,
            invalid_grace,
        }
    }

    /// An inspection: it judges as [`clean`](Self::clean) does, and changes nothing.
    pub(crate) fn report(invalid_grace: Duration) -> Self {
        Self {
            stale: Stale::Report,
            invalid_grace,
        }
    }
}

/// Scans the sentinel's `.running/`, doing with stale files what `mode` says.
pub(crate) fn scan(mode: Scan, sentinel: &Sentinel) -> Result<LockListing, Error> {
    let stale = mode.stale;
    let mut listing = LockListing {
        inspection: stale == Stale::Report,
        invalid_grace: Some(mode.invalid_grace),
        ..LockListing::default()
    };
    walk(sentinel.dir(), "", 0, stale, &mut listing, sentinel)?;
    listing.locks.sort_by(|a, b| a.path.cmp(&b.path));
    listing.problems.sort_by(|a, b| a.path.cmp(&b.path));
    listing.reclaimed.sort();
    listing.orphans.sort();
    Ok(listing)
}

/// Lists `dir` (at `depth` below `.running/`, its names starting with `prefix`) and visits
/// each entry, through the descriptor: a name swapped for a symlink meanwhile changes nothing
/// about which directory is listed.
fn walk(
    dir: &imp::Dir,
    prefix: &str,
    depth: usize,
    stale: Stale,
    listing: &mut LockListing,
    sentinel: &Sentinel,
) -> Result<(), Error> {
    let entries = dir
        .entries()
        .map_err(|err| Error::io("cannot list", dir.path(), err))?;
    for entry in entries {
        let entry = entry.map_err(|err| Error::io("cannot list", dir.path(), err))?;
        visit(dir, entry, prefix, depth, stale, listing, sentinel)?;
    }
    Ok(())
}

/// Files one entry of a directory at `depth` (whose names start with `prefix`) that [`walk`]
/// lists: skipped, removed as an orphaned publication, reported, walked into, or inspected.
fn visit(
    dir: &imp::Dir,
    entry: imp::DirEntry,
    prefix: &str,
    depth: usize,
    stale: Stale,
    listing: &mut LockListing,
    sentinel: &Sentinel,
) -> Result<(), Error> {
    let path = dir.join(&entry.name);
    let file_type = match entry.file_type {
        Ok(file_type) => file_type,
        // Removed between the listing and the `fstatat` that some filesystems need for it.
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(Error::io("cannot stat", &path, err)),
    };
    // Names are bytes: the original writes names that are not UTF-8 (an instance id made
    // from such a path), and its live locks must be seen whatever their names.
    let name = entry.name.as_bytes();
    if name.starts_with(b".") {
        if file_type == FileType::RegularFile && is_orphaned_publication(name) {
            // We hold the sentinel, so nobody is publishing: its publisher died mid-way.
            let removed = match stale {
                Stale::Clean => dir.remove_file(&entry.name).is_ok(),
                Stale::Report => true,
            };
            if removed {
                listing.orphans.push(path);
            }
        }
        return Ok(());
    }
    let stem = name.strip_suffix(LOCK_SUFFIX.as_bytes());
    let display = String::from_utf8_lossy(stem.unwrap_or(name));
    if let (Some(_), Some(file_kind)) = (stem, FileKind::of(file_type)) {
        // A directory named `x.lock` is reported too, and still walked below: it may be
        // the directory of nested names such as `x.lock/run-1`.
        listing.problems.push(ScanProblem {
            path: path.clone(),
            kind: ProblemKind::NotRegular { file_kind },
        });
    }
    if file_type == FileType::Directory {
        if depth < MAX_NESTING {
            let nested = match dir.open_dir(&entry.name) {
                Ok(nested) => nested,
                // Removed since the listing, or replaced by something that is not a
                // directory (a symlink is never followed): nothing of ours is below it.
                Err(err) if err.kind() == io::ErrorKind::NotFound || imp::is_not_a_dir(&err) => {
                    return Ok(());
                }
                Err(err) => return Err(Error::io("cannot open directory", &path, err)),
            };
            let name = String::from_utf8_lossy(name);
            walk(
                &nested,
                &format!("{prefix}{name}/"),
                depth + 1,
                stale,
                listing,
                sentinel,
            )?;
        }
        return Ok(());
    }
    if stem.is_some() && file_type == FileType::RegularFile {
        let stem = format!("{prefix}{display}");
        inspect(Entry::new(dir, entry.name), stem, stale, listing, sentinel);
    }
    Ok(())
}

fn is_orphaned_publication(name: &[u8]) -> bool {
    name.starts_with(PUBLISH_PREFIX.as_bytes()) && name.ends_with(PUBLISH_SUFFIX.as_bytes())
}

/// A name in a directory held open, with its path for messages and reports.
pub(crate) struct Entry<'a> {
    pub(crate) dir: &'a imp::Dir,
    pub(crate) name: OsString,
    pub(crate) path: PathBuf,
}

impl<'a> Entry<'a> {
    pub(crate) fn new(dir: &'a imp::Dir, name: OsString) -> Self {
        let path = dir.join(&name);
        Self { dir, name, path }
    }
}

/// Probes and reads one lock file and files it under live, reclaimed or problems.
fn inspect(
    entry: Entry<'_>,
    stem: String,
    stale: Stale,
    listing: &mut LockListing,
    sentinel: &Sentinel,
) {
    let problem = |listing: &mut LockListing, path: PathBuf, kind| {
        listing.problems.push(ScanProblem { path, kind });
    };
    let unreadable = |err: io::Error| ProblemKind::Unreadable {
        reason: err.to_string(),
    };
    let path = entry.path.clone();
    let file = match entry.dir.open_file(&entry.name) {
        Ok(file) => file,
        // Released between the listing and the open: nothing to see.
        Err(err) if err.kind() == io::ErrorKind::NotFound => return,
        Err(err) => {
            let kind = match entry.dir.stat(&entry.name) {
                Ok(Some(stat)) if stat.file_type != FileType::RegularFile => {
                    ProblemKind::NotRegular {
                        file_kind: FileKind::of(stat.file_type).unwrap_or(FileKind::Other),
                    }
                }
                _ => unreadable(err),
            };
            return problem(listing, path, kind);
        }
    };
    let (size, id, modified) = match imp::metadata(&file) {
        Ok(meta) if meta.is_file() => (meta.len(), imp::id_of(&meta), meta.modified().ok()),
        Ok(meta) => {
            let file_kind = FileKind::of(imp::file_type_of(&meta)).unwrap_or(FileKind::Other);
            return problem(listing, path, ProblemKind::NotRegular { file_kind });
        }
        Err(err) => return problem(listing, path, unreadable(err)),
    };
    let held = match imp::try_lock_exclusive(&file) {
        Ok(taken) => !taken,
        Err(err) => return problem(listing, path, unreadable(err)),
    };
    // One byte more than a record may have, so `from_json` can tell "too large".
    let bytes = match imp::read_sized(&file, size, MAX_RECORD_BYTES + 1) {
        Ok(bytes) => bytes,
        Err(err) => return problem(listing, path, unreadable(err)),
    };
    let parsed = LockRecord::from_json(&bytes);
    match (held, parsed) {
        (true, Ok(record)) => listing.locks.push(LiveLock {
            path,
            stem,
            record,
            liveness: Liveness::Flock,
            id,
        }),
        (true, Err(err)) => {
            let reason = err.to_string();
            problem(listing, path, ProblemKind::HeldInvalid { reason });
        }
        (false, Ok(record)) if record.is_flock_liveness() || imp::pid_is_dead(record.pid()) => {
            let found = (&mut listing.reclaimed, &mut listing.problems);
            reclaim(&entry, &file, stale, found, sentinel);
        }
        (false, Ok(record)) => listing.locks.push(LiveLock {
            path,
            stem,
            record,
            liveness: Liveness::Pid,
            id,
        }),
        (false, Err(err)) => {
            // Not flocked and not a record we can read. Only proof that its holder is gone
            // lets us move it: our marker (we always hold our files flocked, so unheld means
            // the holder died), or a pid that is dead. Anything else may be the original's
            // live lock, which holds no flock (B10): it blocks.
            let salvaged = if bytes.len() as u64 > MAX_RECORD_BYTES {
                // Stream the rest: the original sets no size limit, and its pid comes last.
                match imp::reader_from_start(&file) {
                    Ok(reader) => salvage(reader),
                    Err(err) => return problem(listing, path, unreadable(err)),
                }
            } else {
                salvage(bytes.as_slice())
            };
            let reason = err.to_string();
            match salvaged.pid {
                _ if salvaged.ours => move_aside(&entry, &file, reason, stale, listing, sentinel),
                Some(pid) if imp::pid_is_dead(pid) => {
                    move_aside(&entry, &file, reason, stale, listing, sentinel);
                }
                // Nothing to tell the original's write in progress from garbage but time: no
                // write of the original lasts anywhere near the grace.
                None if let Some(age) = abandoned_for(modified, listing.invalid_grace) => {
                    let reason = format!(
                        "{reason}; no flock, no pid, and unchanged for {}s, longer than any \
                         write of a lock file takes",
                        age.as_secs()
                    );
                    move_aside(&entry, &file, reason, stale, listing, sentinel);
                }
                pid => problem(listing, path, ProblemKind::InvalidMaybeLive { reason, pid }),
            }
        }
    }
}

/// How long a file last modified at `modified` has been left alone, if that is at least
/// `grace`. A time in the future, or none, counts as just now: it blocks (fails closed).
fn abandoned_for(modified: Option<SystemTime>, grace: Option<Duration>) -> Option<Duration> {
    let age = SystemTime::now().duration_since(modified?).ok()?;
    (age >= grace?).then_some(age)
}

/// Removes a stale lock file (or a dead waiter's ticket) if its name still names the inode we
/// probed through `file`, and adds it to `removed`; a failure goes to `problems`. Under the
/// sentinel, so nobody can publish a new lock (or take a ticket) at that name between the
/// check and the unlink; both go through the directory held open, so no symlink swapped in
/// meanwhile can point them elsewhere. An inspection only reports it.
pub(crate) fn reclaim(
    entry: &Entry<'_>,
    file: &File,
    stale: Stale,
    (removed, problems): (&mut Vec<PathBuf>, &mut Vec<ScanProblem>),
    _sentinel: &Sentinel,
) {
    let path = entry.path.clone();
    if stale == Stale::Report {
        return removed.push(path);
    }
    match still_names(entry, file) {
        Ok(true) => {
            fault::pause("scan:reclaim-checked");
            match entry.dir.remove_file(&entry.name) {
                Ok(()) => removed.push(path),
                // Removed by someone else since the check: not in anyone's way.
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => problems.push(ScanProblem {
                    path,
                    kind: ProblemKind::ReclaimFailed {
                        reason: err.to_string(),
                    },
                }),
            }
        }
        // Gone, or the name now belongs to another inode: not ours to touch.
        Ok(false) => {}
        Err(err) => problems.push(ScanProblem {
            path,
            kind: ProblemKind::ReclaimFailed {
                reason: err.to_string(),
            },
        }),
    }
}

/// Moves a stale file with an invalid record to `.<name>.invalid-<pid>-<n>` beside it (the
/// name shortened to fit a file name), so that it no longer blocks anyone but nothing is lost:
/// one rename that never replaces an existing file, so a rename refused (by a sticky
/// directory, say) leaves no second name behind. When that fails, the reason says why and
/// what to do. Under the sentinel, for the same reason as [`reclaim`]. An inspection only
/// reports it.
fn move_aside(
    entry: &Entry<'_>,
    file: &File,
    reason: String,
    stale: Stale,
    listing: &mut LockListing,
    _sentinel: &Sentinel,
) {
    let path = entry.path.clone();
    if stale == Stale::Report {
        let kind = ProblemKind::InvalidStale { reason };
        return listing.problems.push(ScanProblem { path, kind });
    }
    let moved = (|| -> io::Result<Option<PathBuf>> {
        if !still_names(entry, file)? {
            // Gone, or replaced by another file: not the file we judged.
            return Ok(None);
        }
        let name = entry.name.as_bytes();
        let pid = imp::current_pid();
        for n in 0..100 {
            let aside = aside_name(name, pid, n);
            match entry.dir.rename_noreplace(&entry.name, &aside) {
                Ok(()) => return Ok(Some(entry.dir.join(aside))),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "a hundred names to move it to are all taken",
        ))
    })();
    let (reason, moved_to) = match moved {
        Ok(moved_to) => (reason, moved_to),
        Err(err) => (
            format!(
                "{reason}; moving it aside failed: {err}{}",
                what_to_do_when_moving_fails(&err, file)
            ),
            None,
        ),
    };
    listing.problems.push(ScanProblem {
        path,
        kind: ProblemKind::Invalid { reason, moved_to },
    });
}

/// What the user can do about a stale file that could not be moved aside.
fn what_to_do_when_moving_fails(err: &io::Error, file: &File) -> String {
    let owner = imp::metadata(file).map(|meta| imp::owner_of(&meta)).ok();
    match (err.kind(), owner) {
        (io::ErrorKind::PermissionDenied, Some(uid)) => format!(
            "; this user may not rename it (in a sticky directory only the file's owner, \
             uid {uid}, the directory's owner and root may): one of them can run \
             `scope-lock clean`, or remove the file"
        ),
        _ => "; remove the file by hand once its cause is fixed".to_owned(),
    }
}

/// `.<name>.invalid-<pid>-<n>`, with `name` cut short so the whole fits in a file name.
fn aside_name(name: &[u8], pid: u32, n: usize) -> OsString {
    let suffix = format!(".invalid-{pid}-{n}");
    let keep = name.len().min(NAME_MAX - 1 - suffix.len());
    let mut aside = Vec::with_capacity(NAME_MAX);
    aside.push(b'.');
    aside.extend_from_slice(&name[..keep]);
    aside.extend_from_slice(suffix.as_bytes());
    OsString::from_vec(aside)
}

/// Whether the entry's name names, right now, the inode `file` is open on.
fn still_names(entry: &Entry<'_>, file: &File) -> io::Result<bool> {
    Ok(entry.dir.id_of(&entry.name)? == Some(imp::file_id(file)?))
}

// ---------------------------------------------------------------------------------------------
// 3. The decision
// ---------------------------------------------------------------------------------------------

/// What blocks `request` (whose normalised scope is `scope` and whose lock file would be
/// `target`): a live lock ([`first_conflict`]), else a waiter ahead of us in the queue
/// ([`waiter_ahead`]). `ticket` is our own place in the queue, if we have one. `family` is
/// our ancestry, read at most once for all the decisions of one hold of the sentinel.
fn decide(
    listing: &LockListing,
    queue: &Queue,
    request: &LockRequest,
    scope: &ScopeIndex<'_>,
    target: &Path,
    ticket: Option<u64>,
    family: &mut Family,
) -> Option<Conflict> {
    if ticket.is_some() {
        // A waiter behind an earlier one cannot go before it, whatever the locks: report (and
        // so wait for) the one just ahead of it, so that a release wakes only the head of the
        // queue, and a waiter leaving wakes only the one behind it. Waiting on the head
        // instead would wake every waiter at every turn, each to take the sentinel and find
        // the next head.
        waiter_ahead(listing, queue, request, scope, ticket, family)
            .or_else(|| first_conflict(listing, request, scope, target, family))
    } else {
        first_conflict(listing, request, scope, target, family)
            .or_else(|| waiter_ahead(listing, queue, request, scope, ticket, family))
    }
}

/// The first live lock that blocks `request`, in path order.
fn first_conflict(
    listing: &LockListing,
    request: &LockRequest,
    scope: &ScopeIndex<'_>,
    target: &Path,
    family: &mut Family,
) -> Option<Conflict> {
    if let Some(problem) = listing.problems.iter().find(|p| p.blocks()) {
        // Why it blocks, and what the user can do about it.
        let reason = problem.what();
        return Some(Conflict {
            lock_path: problem.path.clone(),
            holder: None,
            rule: ConflictRule::Unreadable { reason },
            by_this_process: false,
        });
    }
    for lock in &listing.locks {
        let record = &lock.record;
        let rule = if lock.path == target {
            // Never carved out for ancestors: the file cannot hold two records.
            ConflictRule::SameName
        } else {
            let Some(rule) = scope_rule(request, scope, record) else {
                continue;
            };
            if family.is_ancestor(record, lock.id) {
                continue;
            }
            rule
        };
        return Some(Conflict {
            lock_path: lock.path.clone(),
            holder: Some(record.clone()),
            rule,
            by_this_process: family.is_this_process(record, lock.id),
        });
    }
    None
}

/// The rule by which a holder (or waiter) with `record` blocks `request`, scopes and
/// singletons only: the same singleton name, else the first overlapping pair of paths.
fn scope_rule(
    request: &LockRequest,
    scope: &ScopeIndex<'_>,
    record: &LockRecord,
) -> Option<ConflictRule> {
    if request.is_singleton() && record.singleton() && record.loop_name() == request.loop_name() {
        return Some(ConflictRule::Singleton);
    }
    let (ours, theirs) = first_overlap_with(scope, record)?;
    Some(ConflictRule::Overlap {
        ours: ours.clone(),
        theirs,
    })
}

/// The first of our paths that overlaps one of `record`'s, with that path of theirs as text.
/// Compared as paths, byte for byte: the original's may not be UTF-8.
fn first_overlap_with<'a>(
    ours: &ScopeIndex<'a>,
    record: &LockRecord,
) -> Option<(&'a String, String)> {
    let paths = record.scope_paths();
    if paths.iter().all(|path| path.is_absolute()) {
        // As recorded: nothing to normalise, nothing to copy.
        let (i, j) = ours.first_overlap(paths.iter().map(PathBuf::as_path))?;
        return Some((ours.paths().get(i)?, record.scope().get(j)?.clone()));
    }
    let theirs = holder_scope(record);
    let (i, j) = ours.first_overlap(theirs.iter().map(|(path, _)| path.as_path()))?;
    Some((ours.paths().get(i)?, theirs.get(j)?.1.clone()))
}

/// Whether two records' scopes or singletons collide (a waiter against a holder).
fn records_collide(waiter: &LockRecord, holder: &LockRecord) -> bool {
    (waiter.singleton() && holder.singleton() && waiter.loop_name() == holder.loop_name())
        || first_overlap_with(&ScopeIndex::new(waiter.scope()), holder).is_some()
}

/// A live waiter that arrived before us and whose scope collides with ours: it goes first, so
/// that overlapping waiters are served in arrival order. With a `ticket`, the last such waiter
/// ahead of it (while that one waits it cannot go, whatever those further ahead do);
/// without one, the earliest of all (the head of the queue, the one that goes next).
///
/// Two exceptions keep the queue from deadlocking what runs without it. A waiter that is one of
/// our ancestors is skipped, as its lock would be. And a waiter that is itself blocked by a
/// lock of ours or of an ancestor's is skipped: it cannot go before that lock is released,
/// which may depend on us (a loop holding a scope runs a nested loop over part of it while
/// someone waits for the whole).
fn waiter_ahead(
    listing: &LockListing,
    queue: &Queue,
    request: &LockRequest,
    scope: &ScopeIndex<'_>,
    ticket: Option<u64>,
    family: &mut Family,
) -> Option<Conflict> {
    let mut blocking = |waiter: &Queued| {
        let record = &waiter.record;
        scope_rule(request, scope, record)?;
        if family.is_ancestor(record, waiter.id) {
            return None;
        }
        let waits_on_our_family = listing.locks.iter().any(|lock| {
            records_collide(record, &lock.record) && family.contains(&lock.record, lock.id)
        });
        if waits_on_our_family {
            return None;
        }
        Some(Conflict {
            lock_path: waiter.path.clone(),
            holder: Some(record.clone()),
            rule: ConflictRule::Waiting {
                ticket: waiter.number,
            },
            by_this_process: family.is_this_process(record, waiter.id),
        })
    };
    // The tickets are in number order.
    let mut ahead = queue
        .tickets
        .iter()
        .filter(|waiter| ticket.is_none_or(|ours| waiter.number < ours));
    match ticket {
        Some(_) => ahead.rev().find_map(blocking),
        None => ahead.find_map(&mut blocking),
    }
}

/// A stale file at our own name that the scan could not remove or move aside would make
/// publication fail with a confusing `EEXIST`: say what is in the way, and why.
fn stale_file_in_the_way(
    listing: &LockListing,
    target: &Path,
    sentinel: &Sentinel,
) -> Result<(), Error> {
    for problem in listing.problems.iter().filter(|p| p.path == target) {
        if let ProblemKind::Invalid {
            reason,
            moved_to: None,
        }
        | ProblemKind::ReclaimFailed { reason } = &problem.kind
            && open_parent(sentinel, target, false)
                .ok()
                .flatten()
                .is_some_and(|(dir, name)| dir.id_of(name).ok().flatten().is_some())
        {
            return Err(Error::at_path(
                ErrorKind::StaleInTheWay,
                target,
                format!("a stale lock file is in the way and could not be removed ({reason})"),
            ));
        }
    }
    Ok(())
}

/// A holder's scope as compared, each entry as a path (byte for byte, see
/// [`LockRecord::scope_paths`]) and as text for messages: absolute entries as recorded
/// (normalised when acquired); relative ones, which only legacy files have, normalised here as
/// the original does.
fn holder_scope(record: &LockRecord) -> Vec<(PathBuf, String)> {
    record
        .scope_paths()
        .iter()
        .zip(record.scope())
        .map(|(path, text)| {
            if path.is_absolute() {
                (path.clone(), text.clone())
            } else {
                let resolved = scope::normalize_path(text).unwrap_or_else(|_| text.clone());
                (PathBuf::from(&resolved), resolved)
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 4. Publication
// ---------------------------------------------------------------------------------------------

/// Writes `record`, flocks it, and gives it the name `target` without ever overwriting.
/// Returns the open, flocked descriptor and the identity of its inode. Under the sentinel, so
/// that the scan's verdict still holds when the name appears. Everything happens in the
/// target's directory held open (made, for a nested name, with `.running/`'s mode): the file
/// is created there (`O_EXCL`, mode 0444 whatever the umask) and renamed there.
pub(crate) fn publish(
    target: &Path,
    record: &LockRecord,
    sentinel: &Sentinel,
) -> Result<(File, FileId), Error> {
    let json = readable_json(record, target)?;
    let Some((dir, name)) = open_parent(sentinel, target, true)? else {
        // `open_parent` makes what is missing.
        return Err(Error::at_path(
            ErrorKind::Interference,
            target,
            "its directory vanished while it was made",
        ));
    };
    let (staged, file) = dir
        .create_unique(PUBLISH_PREFIX, PUBLISH_SUFFIX, imp::LOCK_FILE_MODE)
        .map_err(|err| Error::io("cannot write a new lock file in", dir.path(), err))?;
    let staged = Staged {
        dir: &dir,
        name: staged,
        published: false,
    };
    let staged_path = dir.join(&staged.name);
    fault::pause("acquire:staged-created");
    imp::write_all(&file, json.as_bytes())
        .map_err(|err| Error::io("cannot write a new lock file", &staged_path, err))?;
    fault::pause("acquire:staged-written");
    let locked = imp::try_lock_exclusive(&file)
        .map_err(|err| Error::io("cannot lock", &staged_path, err))?;
    if !locked {
        return Err(Error::at_path(
            ErrorKind::Interference,
            &staged_path,
            "a freshly created file is already locked by someone else",
        ));
    }
    fault::pause("acquire:staged-locked");
    staged.publish_as(&name).map_err(|err| {
        if err.kind() == io::ErrorKind::AlreadyExists {
            match dir.stat(&name) {
                Ok(Some(stat)) if stat.file_type != FileType::RegularFile => {
                    not_a_lock_file(target, stat.file_type)
                }
                _ => Error::at_path(
                    ErrorKind::Interference,
                    target,
                    "appeared while we held the directory sentinel; some writer does not \
                     follow the locking protocol",
                ),
            }
        } else {
            Error::io("cannot publish lock file", target, err)
        }
    })?;
    let id = imp::file_id(&file).map_err(|err| Error::io("cannot stat", target, err))?;
    fault::pause("acquire:published");
    Ok((file, id))
}

/// A file being published, under its hidden name: removed again unless it gets its final one.
struct Staged<'a> {
    dir: &'a imp::Dir,
    name: OsString,
    published: bool,
}

impl Staged<'_> {
    /// Gives it the name `target` in the same directory, never replacing a file there.
    fn publish_as(mut self, target: &OsStr) -> io::Result<()> {
        self.dir.rename_noreplace(&self.name, target)?;
        self.published = true;
        Ok(())
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if !self.published {
            let _ = self.dir.remove_file(&self.name);
        }
    }
}

/// The JSON of `record`, refused if a scan could not read it back as the same record (B10).
/// [`LockRequest::record`] refused an oversized one already; this is the last check before
/// anything is published.
fn readable_json(record: &LockRecord, target: &Path) -> Result<String, Error> {
    let json = request::json_that_fits(record, &target.display().to_string())?;
    match LockRecord::from_json(json.as_bytes()) {
        Ok(read_back) if read_back == *record => Ok(json),
        _ => Err(Error::input(
            ErrorKind::InvalidScope,
            format!(
                "the lock record for {} would not read back as written; this is a bug in \
                 scope-lock",
                target.display()
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Release
// ---------------------------------------------------------------------------------------------

/// Releases a lock held through `file` (whose inode is `id`) at `path`: removes the file if
/// it is still ours. Must only be called by the process that acquired it, which closes `file`
/// when this returns, ending the flock strictly after the unlink.
pub(crate) fn release(
    running_dir: &Path,
    path: &Path,
    _file: &File,
    id: FileId,
    bound: Duration,
) -> Result<(), Error> {
    // If the directory itself is gone, so is our file.
    let sentinel = match Sentinel::lock(running_dir, bound) {
        Ok(sentinel) => Some(sentinel),
        Err(err) if err.io_error().map(io::Error::kind) == Some(io::ErrorKind::NotFound) => None,
        // Our descriptor is closed all the same once we return, so the flock ends and the next
        // scan reclaims the file: a stuck sentinel holder delays a release by `bound`, no more.
        Err(err) if err.kind() == ErrorKind::Busy => {
            return Err(Error::at_path(
                ErrorKind::Busy,
                path,
                format!(
                    "not removed, because {err}; its descriptor is closed anyway, so the lock \
                     has ended and the next scan reclaims the file"
                ),
            ));
        }
        Err(err) => return Err(err),
    };
    fault::pause("release:sentinel-held");
    let result = match &sentinel {
        Some(sentinel) => unlink_if_ours(path, id, sentinel),
        None => Ok(()),
    };
    fault::pause("release:unlinked");
    drop(sentinel);
    result
}

/// Unlinks `path` if it still names inode `id`. Under the sentinel nobody can publish a new
/// lock at `path` between the check and the unlink, so we never remove someone else's; both
/// go through its directory, opened from the sentinel's `.running/` without following a
/// symlink.
fn unlink_if_ours(path: &Path, id: FileId, sentinel: &Sentinel) -> Result<(), Error> {
    let (dir, name) = match open_parent(sentinel, path, false) {
        Ok(Some(found)) => found,
        // Its directory is gone, so is our file.
        Ok(None) => return Ok(()),
        Err(err) => return Err(err),
    };
    match dir.id_of(&name) {
        Ok(Some(named)) if named == id => {
            fault::pause("release:checked");
            match dir.remove_file(&name) {
                Ok(()) => Ok(()),
                // Removed by someone else since the check: gone all the same.
                Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(err) => Err(Error::io("cannot remove lock file", path, err)),
            }
        }
        // Already gone, or the name was reclaimed and re-acquired by another holder.
        Ok(_) => Ok(()),
        Err(err) => Err(Error::io("cannot stat", path, err)),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Maps a failure to open `name` in `dir` to an error that says what is in the way when it is
/// not a file.
fn open_error(dir: &imp::Dir, name: &str, err: io::Error) -> Error {
    let path = dir.join(name);
    match dir.stat(name) {
        Ok(Some(stat)) if stat.file_type != FileType::RegularFile => {
            not_a_lock_file(&path, stat.file_type)
        }
        _ => Error::io("cannot open", &path, err),
    }
}

fn not_a_lock_file(path: &Path, file_type: FileType) -> Error {
    Error::at_path(
        ErrorKind::NotALockFile,
        path,
        format!(
            "is a {}, not a regular lock file; refusing to use it",
            describe(file_type)
        ),
    )
}

fn describe(file_type: FileType) -> &'static str {
    FileKind::of(file_type).map_or("regular file", FileKind::as_str)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn dropping_the_sentinel_frees_it_even_when_its_descriptor_was_shared() -> TestResult {
        let dir = tempfile::tempdir()?;
        let sentinel = Sentinel::lock(dir.path(), Duration::from_secs(60))?;
        // A duplicate shares the open file description, exactly as a forked child's copy does.
        let shared = sentinel.file.try_clone()?;
        drop(sentinel);
        let other = open_sentinel_of(dir.path())?;
        assert!(
            imp::try_lock_exclusive(&other)?,
            "the directory stayed locked after the sentinel was dropped"
        );
        drop(shared);
        Ok(())
    }

    /// Opens the sentinel of `running_dir`, as another process would.
    fn open_sentinel_of(running_dir: &Path) -> io::Result<File> {
        imp::Dir::open(running_dir)?.open_sentinel(SENTINEL_NAME)
    }

    /// Holds the sentinel of `running_dir` through an open file description of its own, as
    /// another process would.
    fn hold_sentinel(running_dir: &Path) -> Result<File, Box<dyn std::error::Error>> {
        let file = open_sentinel_of(running_dir)?;
        assert!(imp::try_lock_exclusive(&file)?);
        Ok(file)
    }

    /// Hears only that a wait started, and never asks to hear again: nothing but the
    /// protocol's own wakeups (events, polls) can end the wait early.
    struct StartedOnce(std::sync::mpsc::Sender<()>);

    impl WaitObserver for StartedOnce {
        fn waiting(&mut self, wait: &Waiting<'_>) {
            if wait.is_first() {
                let _ = self.0.send(());
            }
        }

        fn interval(&self) -> Option<Duration> {
            None
        }
    }

    #[test]
    fn a_waiting_acquire_retries_a_busy_sentinel_until_its_deadline_then_fails_busy() -> TestResult
    {
        let dir = tempfile::tempdir()?;
        let held = hold_sentinel(dir.path())?;
        // Each attempt gives up on the sentinel after `bound`; the wait must outlast many.
        let bound = Duration::from_millis(20);
        let wait = Duration::from_millis(300);
        let started = Instant::now();
        let deadline = started + wait;
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let running_dir = dir.path().to_path_buf();
        std::thread::spawn(move || {
            let request = LockRequest::new("b").scope(["/elsewhere"]);
            let result = acquire_until(
                &running_dir,
                &request,
                bound,
                crate::DEFAULT_INVALID_GRACE,
                deadline,
                &mut crate::wait::Silent,
            );
            let _ = done_tx.send(result.map(drop));
        });
        // Only a bound on a hang: a wait that goes on past its deadline fails here.
        let result = done_rx
            .recv_timeout(wait + Duration::from_secs(10))
            .map_err(|_| "the acquire kept retrying the busy sentinel past its deadline")?;
        assert!(
            started.elapsed() >= wait,
            "a busy sentinel ended the wait before its deadline: {result:?}"
        );
        let err = result
            .map(|()| "acquired while the sentinel was held")
            .unwrap_err();
        let err = err.error().ok_or("expected a failure, not a conflict")?;
        assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
        drop(held);
        Ok(())
    }

    #[test]
    fn a_waiter_polls_for_the_death_of_an_original_lock_holder_which_no_event_announces()
    -> TestResult {
        use std::process::{Command, Stdio};

        let dir = tempfile::tempdir()?;
        // A holder of the original's kind: its lock file names its pid and holds no flock, so
        // its death closes nothing and changes nothing in the directory.
        let mut holder = Command::new("cat").stdin(Stdio::piped()).spawn()?;
        let record = format!(
            r#"{{"loop_name": "legacy", "scope": ["/srv/l"], "pid": {}, "started_at": "2026-01-01T00:00:00+00:00"}}"#,
            holder.id()
        );
        std::fs::write(dir.path().join("legacy.lock"), record)?;
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let running_dir = dir.path().to_path_buf();
        std::thread::spawn(move || {
            let request = LockRequest::new("b").scope(["/srv/l"]);
            // Far enough never to be reached by a waiter that polls (every 200 ms at most).
            let deadline = Instant::now() + Duration::from_secs(15);
            let mut observer = StartedOnce(started_tx);
            let result = acquire_until(
                &running_dir,
                &request,
                Duration::from_secs(5),
                crate::DEFAULT_INVALID_GRACE,
                deadline,
                &mut observer,
            );
            // The last attempt, at the deadline, would find the holder dead too: only an
            // acquire before it shows that something polled.
            let before_deadline = Instant::now() < deadline;
            let _ = done_tx.send((result.map(drop), before_deadline));
        });
        started_rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "the waiter never started waiting")?;
        // The holder dies (end of input) and is reaped: its pid is no longer alive.
        drop(holder.stdin.take());
        holder.wait()?;
        let (result, before_deadline) = done_rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "the waiter never returned")?;
        assert!(
            result.is_ok() && before_deadline,
            "the waiter did not poll for the holder's death (acquired before the deadline: \
             {before_deadline}): {result:?}"
        );
        Ok(())
    }

    #[test]
    fn a_held_sentinel_makes_calls_fail_busy_within_their_bound_naming_the_holder() -> TestResult {
        let dir = tempfile::tempdir()?;
        let bound = Duration::from_millis(200);
        let locks = crate::LockManager::new(dir.path()).with_sentinel_bound(bound);
        let request = LockRequest::new("a").scope([dir.path().join("src").to_string_lossy()]);
        let guard = locks.try_acquire(&request)?;
        let held = hold_sentinel(locks.running_dir())?;

        let started = Instant::now();
        let err = locks
            .try_acquire(&LockRequest::new("b").scope(["/elsewhere"]))
            .map(drop)
            .unwrap_err();
        let err = err.error().ok_or("expected an error, not a conflict")?;
        // Generous: the point is that it returns at all, not how fast.
        assert!(started.elapsed() < bound + Duration::from_secs(5));
        assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
        let sentinel = locks.running_dir().join(SENTINEL_NAME);
        assert!(
            err.to_string().contains(&sentinel.display().to_string()),
            "{err}"
        );
        if cfg!(target_os = "linux") {
            let me = format!("pid {}", imp::current_pid());
            assert!(err.to_string().contains(&me), "{err}");
        }
        assert_eq!(
            locks.list_locks().map(drop).unwrap_err().kind(),
            ErrorKind::Busy
        );
        let find = locks.find_conflict(&request).map(drop).unwrap_err();
        assert_eq!(find.kind(), ErrorKind::Busy);

        // Release cannot unlink, but it ends the lock anyway and says so.
        let path = guard.path().to_path_buf();
        let err = guard.release().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
        assert!(err.to_string().contains("closed anyway"), "{err}");
        assert!(
            path.exists(),
            "nothing could have removed it without the sentinel"
        );

        drop(held);
        let again = locks.try_acquire(&request)?;
        assert_eq!(
            again.path(),
            path,
            "the stale file was reclaimed and the name reused"
        );
        again.release()?;
        assert!(!path.exists());
        Ok(())
    }

    #[test]
    fn dropping_a_guard_while_the_sentinel_is_held_returns_within_the_bound() -> TestResult {
        let dir = tempfile::tempdir()?;
        let bound = Duration::from_millis(100);
        let locks = crate::LockManager::new(dir.path()).with_sentinel_bound(bound);
        let guard = locks.try_acquire(&LockRequest::new("a"))?;
        let path = guard.path().to_path_buf();
        let held = hold_sentinel(locks.running_dir())?;
        let started = Instant::now();
        drop(guard);
        assert!(started.elapsed() < bound + Duration::from_secs(5));
        let probe = File::open(&path)?;
        assert!(
            imp::try_lock_exclusive(&probe)?,
            "the dropped guard's flock outlived it"
        );
        drop(held);
        Ok(())
    }

    /// A directory with its sentinel held, for calling the scan's steps one by one: what a
    /// scan does when the directory changes between its listing and its look at one entry.
    fn held_dir() -> Result<(tempfile::TempDir, Sentinel), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let sentinel = Sentinel::lock(dir.path(), Duration::from_secs(60))?;
        Ok((dir, sentinel))
    }

    /// `x.lock` in the sentinel's directory.
    fn x_lock(sentinel: &Sentinel) -> Entry<'_> {
        Entry::new(sentinel.dir(), "x.lock".into())
    }

    /// What [`inspect`] makes of `x.lock`, listed as a regular file a moment ago.
    fn inspect_listed(stale: Stale, sentinel: &Sentinel) -> LockListing {
        let mut listing = LockListing::default();
        inspect(x_lock(sentinel), "x".into(), stale, &mut listing, sentinel);
        listing
    }

    #[test]
    fn a_lock_file_removed_between_listing_and_opening_is_no_lock_and_no_problem() -> TestResult {
        let (_dir, sentinel) = held_dir()?;
        let listing = inspect_listed(Stale::Clean, &sentinel);
        assert_eq!(listing, LockListing::default());
        Ok(())
    }

    #[test]
    fn a_symlink_put_in_place_of_a_listed_lock_file_is_reported_not_regular() -> TestResult {
        let (dir, sentinel) = held_dir()?;
        let path = dir.path().join("x.lock");
        std::os::unix::fs::symlink("elsewhere", &path)?;
        let listing = inspect_listed(Stale::Clean, &sentinel);
        let kind = ProblemKind::NotRegular {
            file_kind: FileKind::Symlink,
        };
        assert_eq!(listing.problems, [ScanProblem { path, kind }]);
        assert!(listing.locks.is_empty() && listing.reclaimed.is_empty());
        Ok(())
    }

    /// A directory opens (read-only, as every lock file is): only its `fstat` tells.
    #[test]
    fn a_directory_put_in_place_of_a_listed_lock_file_is_reported_not_regular() -> TestResult {
        let (dir, sentinel) = held_dir()?;
        let path = dir.path().join("x.lock");
        std::fs::create_dir(&path)?;
        let listing = inspect_listed(Stale::Clean, &sentinel);
        let kind = ProblemKind::NotRegular {
            file_kind: FileKind::Directory,
        };
        assert_eq!(
            listing.problems,
            [ScanProblem {
                path: path.clone(),
                kind
            }]
        );
        assert!(listing.locks.is_empty() && listing.reclaimed.is_empty());
        assert!(path.is_dir());
        Ok(())
    }

    /// Judged stale through `file`, then replaced at its name by another file: a cleaning scan
    /// must leave the newcomer alone, whether it would reclaim or move aside what it judged.
    #[test]
    fn a_stale_file_replaced_after_it_was_judged_is_neither_reclaimed_nor_moved() -> TestResult {
        let (dir, sentinel) = held_dir()?;
        let path = dir.path().join("x.lock");
        std::fs::write(&path, "judged")?;
        let judged = File::open(&path)?;
        let newcomer = dir.path().join("newcomer");
        std::fs::write(&newcomer, "newcomer")?;
        std::fs::rename(&newcomer, &path)?;

        let mut listing = LockListing::default();
        let found = (&mut listing.reclaimed, &mut listing.problems);
        reclaim(&x_lock(&sentinel), &judged, Stale::Clean, found, &sentinel);
        assert_eq!(listing, LockListing::default());
        assert_eq!(std::fs::read(&path)?, b"newcomer");

        move_aside(
            &x_lock(&sentinel),
            &judged,
            "invalid".into(),
            Stale::Clean,
            &mut listing,
            &sentinel,
        );
        let kind = ProblemKind::Invalid {
            reason: "invalid".into(),
            moved_to: None,
        };
        assert_eq!(
            listing.problems,
            [ScanProblem {
                path: path.clone(),
                kind
            }]
        );
        assert_eq!(std::fs::read(&path)?, b"newcomer");
        let names: Vec<_> = std::fs::read_dir(dir.path())?
            .map(|entry| entry.map(|entry| entry.file_name()))
            .collect::<Result<_, _>>()?;
        assert_eq!(names.len(), 2, "moved aside after all: {names:?}");
        Ok(())
    }

    /// An unlink that fails is reported, by a reclaim and by a release alike, never passed
    /// over as if the file were gone. (A directory stands in for a file that cannot be
    /// unlinked: `unlink` refuses it whoever asks, root included.)
    #[test]
    fn an_unlink_that_fails_is_reported_by_reclaim_and_release() -> TestResult {
        let (dir, sentinel) = held_dir()?;
        let path = dir.path().join("x.lock");
        std::fs::create_dir(&path)?;
        let judged = File::open(&path)?;

        let mut listing = LockListing::default();
        let found = (&mut listing.reclaimed, &mut listing.problems);
        reclaim(&x_lock(&sentinel), &judged, Stale::Clean, found, &sentinel);
        match listing.problems.as_slice() {
            [
                ScanProblem {
                    path: reported,
                    kind: ProblemKind::ReclaimFailed { .. },
                },
            ] if *reported == path => {}
            problems => panic!("the failed unlink is not reported: {problems:?}"),
        }
        assert!(listing.reclaimed.is_empty());

        let err = unlink_if_ours(&path, imp::file_id(&judged)?, &sentinel).unwrap_err();
        assert_eq!(err.path(), Some(path.as_path()), "{err}");
        assert!(path.is_dir());
        Ok(())
    }

    /// What [`visit`] makes of an entry of the sentinel's directory listed as `name`, of type
    /// `file_type`, with nothing found before.
    fn visit_alone(
        name: &str,
        file_type: io::Result<FileType>,
        sentinel: &Sentinel,
    ) -> Result<LockListing, Error> {
        let entry = imp::DirEntry {
            name: name.into(),
            file_type,
        };
        let mut listing = LockListing::default();
        visit(
            sentinel.dir(),
            entry,
            "",
            0,
            Stale::Clean,
            &mut listing,
            sentinel,
        )
        .map(|()| listing)
    }

    #[test]
    fn a_nested_directory_removed_before_it_is_listed_holds_nothing() -> TestResult {
        let (_dir, sentinel) = held_dir()?;
        let listing = visit_alone("gone", Ok(FileType::Directory), &sentinel)?;
        assert_eq!(listing, LockListing::default());
        Ok(())
    }

    /// A nested directory swapped, after the listing, for a symlink to a directory elsewhere
    /// (or for a file) is not walked: nothing there is ours, and the stale lock there stays.
    #[test]
    fn a_nested_directory_swapped_for_a_symlink_or_a_file_is_not_walked() -> TestResult {
        let (dir, sentinel) = held_dir()?;
        let elsewhere = tempfile::tempdir()?;
        let victim = elsewhere.path().join("x.lock");
        let dead = LockRecord::new("x", vec!["/x".into()], 99_999_999, "t");
        std::fs::write(&victim, dead.to_json())?;
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("nested"))?;
        std::fs::write(dir.path().join("file"), "")?;
        for name in ["nested", "file"] {
            let listing = visit_alone(name, Ok(FileType::Directory), &sentinel)?;
            assert_eq!(listing, LockListing::default(), "{name}");
        }
        assert!(
            victim.exists(),
            "a stale lock outside .running was reclaimed"
        );
        Ok(())
    }

    #[test]
    fn an_entry_removed_before_its_type_is_read_is_skipped() -> TestResult {
        let (_dir, sentinel) = held_dir()?;
        let listing = visit_alone("x.lock", Err(io::ErrorKind::NotFound.into()), &sentinel)?;
        assert_eq!(listing, LockListing::default());
        Ok(())
    }

    #[test]
    fn an_entry_whose_type_cannot_be_read_is_an_error_naming_it() -> TestResult {
        let (dir, sentinel) = held_dir()?;
        let denied = Err(io::ErrorKind::PermissionDenied.into());
        let err = visit_alone("x.lock", denied, &sentinel).unwrap_err();
        assert_eq!(
            err.path(),
            Some(dir.path().join("x.lock").as_path()),
            "{err}"
        );
        Ok(())
    }

    /// A lock of the original's (no flock; its pid, ours, alive) nested `depth` directories
    /// deep in `running_dir`.
    fn write_nested_lock(
        running_dir: &Path,
        depth: usize,
    ) -> Result<PathBuf, Box<dyn std::error::Error>> {
        let path = running_dir.join(format!("{}x.lock", "d/".repeat(depth)));
        std::fs::create_dir_all(path.parent().ok_or("no parent")?)?;
        let record = LockRecord::new("x", vec!["/x".into()], imp::current_pid(), "t");
        std::fs::write(&path, record.to_json())?;
        Ok(path)
    }

    /// Scans look as deep as names may be nested, and no deeper.
    #[test]
    fn scans_see_locks_nested_as_deep_as_names_may_be_and_no_deeper() -> TestResult {
        let dir = tempfile::tempdir()?;
        let deepest = write_nested_lock(dir.path(), MAX_NESTING)?;
        let too_deep = write_nested_lock(dir.path(), MAX_NESTING + 1)?;
        let listing = list(
            dir.path(),
            Duration::from_secs(60),
            Scan::report(crate::DEFAULT_INVALID_GRACE),
        )?;
        let listed: Vec<&Path> = listing
            .locks
            .iter()
            .map(|lock| lock.path.as_path())
            .collect();
        assert_eq!(listed, [deepest.as_path()]);
        assert!(listing.problems.is_empty(), "{listing:?}");
        assert!(too_deep.exists());
        Ok(())
    }

    /// The reader's size cap is exactly [`MAX_RECORD_BYTES`]: a record padded to it is a lock,
    /// one byte more is a file too large to be one (and says so).
    #[test]
    fn a_record_of_the_size_cap_is_read_and_one_byte_more_is_too_large() -> TestResult {
        let dir = tempfile::tempdir()?;
        let pid = imp::current_pid();
        let json = LockRecord::new("x", vec!["/x".into()], pid, "t").to_json();
        let mut padded = json.into_bytes();
        padded.resize(usize::try_from(MAX_RECORD_BYTES)?, b' ');
        let at_cap = dir.path().join("at-cap.lock");
        std::fs::write(&at_cap, &padded)?;
        padded.push(b' ');
        let over = dir.path().join("over.lock");
        std::fs::write(&over, &padded)?;

        let listing = list(
            dir.path(),
            Duration::from_secs(60),
            Scan::report(crate::DEFAULT_INVALID_GRACE),
        )?;
        let listed: Vec<&Path> = listing
            .locks
            .iter()
            .map(|lock| lock.path.as_path())
            .collect();
        assert_eq!(listed, [at_cap.as_path()]);
        match listing.problems.as_slice() {
            [
                ScanProblem {
                    path,
                    kind:
                        ProblemKind::InvalidMaybeLive {
                            reason,
                            pid: Some(read),
                        },
                },
            ] if *path == over && *read == pid => {
                assert!(reason.contains("larger than"), "{reason}");
            }
            problems => panic!("not reported as too large: {problems:?}"),
        }
        Ok(())
    }

    /// A record whose JSON is `len` bytes long: its one scope entry padded to fit.
    fn record_of_len(len: usize) -> Result<LockRecord, Box<dyn std::error::Error>> {
        let with = |entry: usize| {
            let path = format!("/{}", "p".repeat(entry));
            LockRecord::new("x", vec![path], 5, "t")
        };
        let base = with(0).to_json().len();
        let record = with(len.checked_sub(base).ok_or("too short")?);
        assert_eq!(record.to_json().len(), len);
        Ok(record)
    }

    /// Writers refuse exactly what readers would: a record of [`MAX_RECORD_BYTES`] is
    /// published, one byte more is refused as too large.
    #[test]
    fn a_record_of_the_size_cap_is_written_and_one_byte_more_is_refused() -> TestResult {
        let cap = usize::try_from(MAX_RECORD_BYTES)?;
        let target = Path::new("/run/x.lock");
        let at_cap = record_of_len(cap)?;
        assert_eq!(readable_json(&at_cap, target)?, at_cap.to_json());
        let err = readable_json(&record_of_len(cap + 1)?, target).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidScope, "{err}");
        assert!(err.to_string().contains("over the limit"), "{err}");
        Ok(())
    }

    /// Runs [`Sentinel::lock_with`] on a thread while the test holds the sentinel, and calls
    /// `let_go` with the held file once the waiter is about to wait for it (so strictly after
    /// its tries, never instead of them); what `let_go` returns stays open until the waiter
    /// has answered. Returns what the waiter got, or `None` when it had got nothing after a
    /// while (a waiter that never noticed).
    fn wait_for_held_sentinel(
        bound: Duration,
        patience: Patience,
        let_go: impl FnOnce(File) -> Option<File>,
    ) -> Result<Option<Result<(), Error>>, Box<dyn std::error::Error>> {
        use std::sync::mpsc;
        let dir = tempfile::tempdir()?;
        let running_dir = dir.path().to_path_buf();
        let held = hold_sentinel(&running_dir)?;
        let (waiting_tx, waiting) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        // Not joined: a waiter that never notices would hold the test up for its bound.
        std::thread::spawn(move || {
            let mut before_wait = || {
                let _ = waiting_tx.send(());
            };
            let got = Sentinel::lock_with(&running_dir, bound, patience, &mut before_wait);
            let _ = done_tx.send(got.map(drop));
        });
        // Generous: the waiter needs microseconds.
        let patience_of_the_test = Duration::from_secs(20);
        let kept = match waiting.recv_timeout(patience_of_the_test) {
            Ok(()) => let_go(held),
            Err(_) => Some(held),
        };
        let got = done.recv_timeout(patience_of_the_test).ok();
        drop(kept);
        drop(dir);
        Ok(got)
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_waiter_for_the_sentinel_is_woken_by_its_holder_closing_it() -> TestResult {
        // Were the close not to wake it (or were there no watch), the waiter would sleep for
        // an hour before its next try.
        let patience = Patience {
            watch: true,
            first_pause: HOUR,
            max_pause: HOUR,
        };
        let got = wait_for_held_sentinel(HOUR, patience, |_| None)?;
        assert!(
            matches!(got, Some(Ok(()))),
            "the waiter did not take the sentinel its holder closed: {got:?}"
        );
        Ok(())
    }

    #[test]
    fn a_waiter_for_the_sentinel_tries_again_after_its_recheck_without_a_close() -> TestResult {
        // Unlocked but not closed, as by a holder whose forked child shares its descriptor: no
        // event comes, and only trying again finds the sentinel free.
        let patience = Patience {
            watch: true,
            first_pause: HOUR,
            max_pause: Duration::from_millis(1),
        };
        let got = wait_for_held_sentinel(HOUR, patience, |held| {
            imp::unlock(&held).ok().map(|()| held)
        })?;
        assert!(matches!(got, Some(Ok(()))), "{got:?}");
        Ok(())
    }

    #[test]
    fn without_a_watch_a_waiter_for_the_sentinel_backs_off_and_tries_again() -> TestResult {
        let patience = Patience {
            watch: false,
            ..Patience::WATCH
        };
        let got = wait_for_held_sentinel(HOUR, patience, |_| None)?;
        assert!(matches!(got, Some(Ok(()))), "{got:?}");
        Ok(())
    }

    #[test]
    fn a_waiter_for_the_sentinel_still_gives_up_busy_at_its_bound() -> TestResult {
        // The holder never lets go; the waiter must not sleep for its recheck past the bound.
        for watch in [true, false] {
            let patience = Patience {
                watch,
                first_pause: HOUR,
                max_pause: HOUR,
            };
            let got = wait_for_held_sentinel(Duration::from_millis(50), patience, Some)?;
            match got {
                Some(Err(err)) => assert_eq!(err.kind(), ErrorKind::Busy, "{err}"),
                other => panic!("watch {watch}: expected Busy, got {other:?}"),
            }
        }
        Ok(())
    }

    /// Whatever a scan would not read back as written is never published. A pid of 0 is one
    /// such record (the reader wants a positive process id); acquiring never makes one, but
    /// the check is what keeps any such mistake from blocking a directory.
    #[test]
    fn a_record_that_would_not_read_back_is_refused() {
        let record = LockRecord::new("x", vec!["/x".into()], 0, "t");
        let err = readable_json(&record, Path::new("/run/x.lock")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidScope, "{err}");
        assert!(err.to_string().contains("would not read back"), "{err}");
    }

    #[test]
    fn orphaned_publications_are_recognised_by_name_only() {
        assert!(is_orphaned_publication(b".scope-lock-publish-AbC123.tmp"));
        assert!(!is_orphaned_publication(b".acquire.lock"));
        assert!(!is_orphaned_publication(b".x.lock.invalid-1-0"));
        assert!(!is_orphaned_publication(b"scope-lock-publish-x.tmp"));
    }
}
