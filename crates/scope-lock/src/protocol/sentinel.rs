//! Step 1, the sentinel (docs/protocol.md, "How this crate takes a lock"): `.running/` opened
//! and the directory sentinel locked within a bound; and, under it, the lock file's directory
//! reached from `.running/` one component at a time, never through a symlink.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use super::in_the_way::{describe, not_a_lock_file, open_error};
use crate::backoff::{Backoff, deadline_after};
use crate::error::{Error, ErrorKind};
use crate::fault;
use crate::sys::{self, DirWatch, FileType};

/// The directory sentinel's name, as in the original.
pub(crate) const SENTINEL_NAME: &str = ".acquire.lock";

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

/// The exclusive flock on `.running/.acquire.lock`, held while this value lives, and
/// `.running/` itself, held open: every step under the sentinel reaches the directory through
/// it, never again by its path.
///
/// A [look](Self::look) into a directory that has no sentinel holds none (`file` is `None`):
/// it creates nothing, and it changes nothing either, so there is nothing for the sentinel to
/// keep anyone from seeing half done.
pub(crate) struct SentinelGuard {
    file: Option<File>,
    dir: sys::Dir,
}

impl Drop for SentinelGuard {
    fn drop(&mut self) {
        // Unlike a lock file's, the sentinel's flock is ended explicitly: if another thread
        // forked meanwhile, the child shares this open file description, and merely closing
        // our descriptor would leave the whole directory locked until the child exits.
        if let Some(file) = &self.file {
            let _ = sys::unlock(file);
        }
    }
}

/// What [`SentinelGuard::lock_with`] does when the directory has no sentinel yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// Create it, as every call that may change the directory must.
    Create,
    /// Go on without it: a look that writes nothing, not even the sentinel.
    LookWithout,
}

impl SentinelGuard {
    /// `.running/`, as opened when the sentinel was locked.
    pub(crate) fn dir(&self) -> &sys::Dir {
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
        Self::lock_with(
            running_dir,
            bound,
            Patience::WATCH,
            Missing::Create,
            &mut || {},
        )
    }

    /// [`lock`](Self::lock) for a look that changes nothing (a dry run): the sentinel is opened
    /// read-only and never created, so a read-only directory, or one nobody has locked in yet,
    /// can be looked at. Without a sentinel the look holds none; the caller must then change
    /// nothing.
    pub(crate) fn look(running_dir: &Path, bound: Duration) -> Result<Self, Error> {
        Self::lock_with(
            running_dir,
            bound,
            Patience::WATCH,
            Missing::LookWithout,
            &mut || {},
        )
    }

    /// [`lock`](Self::lock), waiting as `patience` says and calling `before_wait` each time
    /// it is about to wait for a busy sentinel (tests use it to release the sentinel exactly
    /// then).
    fn lock_with(
        running_dir: &Path,
        bound: Duration,
        patience: Patience,
        missing: Missing,
        before_wait: &mut dyn FnMut(),
    ) -> Result<Self, Error> {
        let dir = open_running_dir(running_dir)?;
        let path = dir.join(SENTINEL_NAME);
        let deadline = deadline_after(bound);
        let mut backoff = Backoff::new(patience.first_pause, patience.max_pause);
        // Made the first time the sentinel is busy; `None` inside when no watch can be had.
        let mut watch: Option<Option<DirWatch>> = None;
        for _ in 0..SENTINEL_ATTEMPTS {
            let opened = match missing {
                Missing::Create => dir.open_sentinel(SENTINEL_NAME).map(Some),
                Missing::LookWithout => match dir.open_file(SENTINEL_NAME) {
                    Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
                    opened => opened.map(Some),
                },
            };
            let Some(file) = opened.map_err(|err| open_error(&dir, SENTINEL_NAME, err))? else {
                return Ok(Self { file: None, dir });
            };
            // One `fstat` serves both: the type, and the inode the descriptor (so the lock
            // we take) refers to, which no later call can change.
            let meta = file
                .metadata()
                .map_err(|err| Error::io("cannot stat", &path, err))?;
            if !meta.is_file() {
                return Err(not_a_lock_file(&path, sys::file_type_of(&meta)));
            }
            let locked = sys::id_of(&meta);
            if let Some(fs_name) = sys::unreliable_flock_filesystem(&file)
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
            while !sys::try_lock_exclusive(&file)
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
                return Ok(Self {
                    file: Some(file),
                    dir,
                });
            }
        }
        Err(Error::at_path(
            ErrorKind::Interference,
            &path,
            "keeps being replaced while we lock it; is something deleting it?",
        ))
    }
}

/// How [`SentinelGuard::lock_with`] waits for a busy sentinel.
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
    let holders = sys::flock_holders(file);
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

/// Opens `.running/` itself, refusing a symlink there: a co-user who can write its parent could
/// point it anywhere, and everything the protocol removes or moves aside would be removed
/// there. (The path up to the loops directory is the caller's choice and is followed.)
pub(super) fn open_running_dir(running_dir: &Path) -> Result<sys::Dir, Error> {
    sys::Dir::open(running_dir).map_err(|err| match sys::lstat_type(running_dir) {
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

/// Refuses a target that exists but is not a regular file (so acquiring over a directory,
/// symlink or FIFO is a clear error, not a hang or a confusing `EEXIST`). Under the sentinel,
/// so that what we checked is what publication finds.
pub(crate) fn ensure_target_usable(target: &Path, sentinel: &SentinelGuard) -> Result<(), Error> {
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
    Running(&'a sys::Dir),
    Nested(sys::Dir),
}

impl std::ops::Deref for DirRef<'_> {
    type Target = sys::Dir;

    fn deref(&self) -> &sys::Dir {
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
pub(super) fn open_parent<'a>(
    sentinel: &'a SentinelGuard,
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::LockRequest;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn dropping_the_sentinel_frees_it_even_when_its_descriptor_was_shared() -> TestResult {
        let dir = tempfile::tempdir()?;
        let sentinel = SentinelGuard::lock(dir.path(), Duration::from_secs(60))?;
        // A duplicate shares the open file description, exactly as a forked child's copy does.
        let shared = sentinel
            .file
            .as_ref()
            .ok_or("no sentinel held")?
            .try_clone()?;
        drop(sentinel);
        let other = open_sentinel_of(dir.path())?;
        assert!(
            sys::try_lock_exclusive(&other)?,
            "the directory stayed locked after the sentinel was dropped"
        );
        drop(shared);
        Ok(())
    }

    /// Opens the sentinel of `running_dir`, as another process would.
    fn open_sentinel_of(running_dir: &Path) -> io::Result<File> {
        sys::Dir::open(running_dir)?.open_sentinel(SENTINEL_NAME)
    }

    /// Holds the sentinel of `running_dir` through an open file description of its own, as
    /// another process would.
    pub(crate) fn hold_sentinel(running_dir: &Path) -> Result<File, Box<dyn std::error::Error>> {
        let file = open_sentinel_of(running_dir)?;
        assert!(sys::try_lock_exclusive(&file)?);
        Ok(file)
    }

    #[test]
    fn a_held_sentinel_makes_calls_fail_busy_within_their_bound_naming_the_holder() -> TestResult {
        let dir = tempfile::tempdir()?;
        let bound = Duration::from_millis(200);
        let locks = crate::LockManager::new(dir.path()).with_sentinel_bound(bound);
        let request = LockRequest::new("a").scope([dir.path().join("src")]);
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
            let me = format!("pid {}", std::process::id());
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

    /// Runs [`SentinelGuard::lock_with`] on a thread while the test holds the sentinel, and calls
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
            let got = SentinelGuard::lock_with(
                &running_dir,
                bound,
                patience,
                Missing::Create,
                &mut before_wait,
            );
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
            sys::unlock(&held).ok().map(|()| held)
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
}
