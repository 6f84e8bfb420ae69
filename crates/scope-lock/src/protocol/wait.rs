//! Step 6, the wait (docs/protocol.md, "How this crate takes a lock"): attempts repeated until
//! the deadline, a ticket taken in the queue, and between attempts a wait for an event about
//! what blocks us, or a poll where no event can announce it.

use std::path::Path;
use std::time::{Duration, Instant};

use super::acquire::{Outcome, Prepared, attempt};
use super::publish::Published;
use super::queue::{self, Ticket};
use crate::backoff::Backoff;
use crate::cancel::CancelWait;
use crate::conflict::{AcquireError, Conflict, ConflictRule};
use crate::error::ErrorKind;
use crate::fault;
use crate::record::LockRecord;
use crate::request::LockRequest;
use crate::sys::{DirWatch, Interest};
use crate::wait::{WaitObserver, Waiting};

/// The first and the longest pause between looks at a conflict that no event can announce: a
/// lock of the original's, whose holder's death closes nothing we can watch (or any conflict,
/// on a system without a directory watch).
const POLL_FIRST_PAUSE: Duration = Duration::from_millis(2);
pub(crate) const POLL_MAX_PAUSE: Duration = Duration::from_millis(200);

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
///
/// With a `cancel`, it also gives up, as at its deadline, once that is fired: at its next
/// look, and at once if it is asleep (the cancel wakes its watch). It then withdraws its
/// ticket on the way out, as a timeout does.
pub(crate) fn acquire_until(
    running_dir: &Path,
    request: &LockRequest,
    bound: Duration,
    invalid_grace: Duration,
    deadline: Instant,
    observer: &mut dyn WaitObserver,
    cancel: Option<&CancelWait>,
) -> Result<Published, AcquireError> {
    let cancelled = || cancel.is_some_and(CancelWait::is_cancelled);
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
    // What blocked the last attempt: a cancel that woke the wait ends it with that, without
    // one more attempt that might take a lock nobody wants any more.
    let mut last: Option<Conflict> = None;
    // Whether this waiter, at the head of the queue, was woken by the lock it waited for:
    // then its look will most likely take the lock, and it looks with the watch still
    // narrowed to that lock, sparing the directories' watches added and removed again. If
    // it is blocked after all, it widens and looks once more, so that nothing since that
    // look goes unseen.
    let mut woken_at_the_head = false;
    loop {
        if let Some(conflict) = last.take().filter(|_| cancelled()) {
            return Err(AcquireError::Timeout(Box::new(conflict)));
        }
        if let Some(watch) = &mut watch
            && !woken_at_the_head
        {
            // Watched again before the look, as before the first.
            watch.widen();
        }
        // The sentinel's bound, but not past the deadline (one try at least).
        let sentinel_bound = bound.min(deadline.saturating_duration_since(Instant::now()));
        let conflict = match attempt(&prepared, sentinel_bound, &mut ticket, true) {
            Ok(Outcome::Published(published)) => return Ok(published),
            Ok(Outcome::Blocked(conflict)) => conflict,
            // A stuck sentinel holder costs this wait time, not its end.
            Err(err)
                if err.kind() == ErrorKind::Busy && Instant::now() < deadline && !cancelled() =>
            {
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        let now = Instant::now();
        if now >= deadline || cancelled() {
            // Dropping the ticket on the way out withdraws it.
            return Err(AcquireError::Timeout(Box::new(conflict)));
        }
        if std::mem::take(&mut woken_at_the_head) {
            continue;
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
        // Nothing but an event about the file that blocks us can let us go on.
        let flocked = conflict.holder().is_some_and(LockRecord::is_flock_liveness);
        let path = conflict.lock_path();
        let focus = path.parent().zip(path.file_name()).filter(|_| flocked);
        let mut narrowed = false;
        if let (Some(active), Some(_), true) = (&mut watch, focus, precise) {
            match active.narrow_to(path) {
                // Something happened to it since the look: look again.
                Ok(true) => continue,
                Ok(false) => narrowed = true,
                // A watch that fails is given up for polling, not turned into an error.
                Err(_) => watch = None,
            }
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
        // A cancel that cannot wake the watch is seen at the next poll.
        let wakes_on_cancel = cancel.is_none_or(|cancel| cancel.wake_fd().is_some());
        if !precise || !flocked || watch.is_none() || !wakes_on_cancel {
            wake = wake.min(now + poll.next_delay(deadline));
        }
        let timeout = wake.saturating_duration_since(Instant::now());
        match &mut watch {
            // A watch that fails is given up for polling, not turned into an error.
            Some(active) => {
                match active.wait_or_woken(timeout, focus, cancel.and_then(CancelWait::wake_fd)) {
                    Ok(woken) => {
                        woken_at_the_head = woken
                            && narrowed
                            && !matches!(conflict.rule(), ConflictRule::Waiting { .. });
                    }
                    Err(_) => watch = None,
                }
            }
            None => std::thread::sleep(timeout),
        }
        last = Some(conflict);
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

#[cfg(test)]
mod tests {
    use super::super::sentinel::tests::hold_sentinel;
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

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

    /// What a waiter in a thread came to, and whether before its deadline.
    type Outcome = (Result<(), AcquireError>, bool);

    /// Starts a waiting acquire of `scope` in `running_dir` in a thread, with a deadline
    /// `wait` away; returns once it waits (its first report), with where its end will come.
    fn waiter_in_a_thread(
        running_dir: &Path,
        scope: &'static str,
        wait: Duration,
    ) -> Result<std::sync::mpsc::Receiver<Outcome>, Box<dyn std::error::Error>> {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let running_dir = running_dir.to_path_buf();
        std::thread::spawn(move || {
            let request = LockRequest::new("waiter").scope([scope]);
            let deadline = Instant::now() + wait;
            let result = acquire_until(
                &running_dir,
                &request,
                Duration::from_secs(5),
                crate::DEFAULT_INVALID_GRACE,
                deadline,
                &mut StartedOnce(started_tx),
                None,
            );
            let before_deadline = Instant::now() < deadline;
            let _ = done_tx.send((result.map(drop), before_deadline));
        });
        started_rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "the waiter never started waiting")?;
        Ok(done_rx)
    }

    /// The inodes that each inotify instance of this process watches (`/proc/self/fdinfo`).
    fn inotify_watches() -> std::io::Result<Vec<Vec<u64>>> {
        let mut instances = Vec::new();
        for entry in std::fs::read_dir("/proc/self/fd")? {
            let fd = entry?.file_name();
            let is_inotify = std::fs::read_link(Path::new("/proc/self/fd").join(&fd))
                .is_ok_and(|target| target.as_os_str() == "anon_inode:inotify");
            // Closed since the listing, or not an inotify instance.
            let Ok(info) = std::fs::read_to_string(Path::new("/proc/self/fdinfo").join(&fd)) else {
                continue;
            };
            if !is_inotify {
                continue;
            }
            let inodes = info
                .lines()
                .filter(|line| line.starts_with("inotify wd:"))
                .filter_map(|line| {
                    let ino = line
                        .split_whitespace()
                        .find_map(|f| f.strip_prefix("ino:"))?;
                    u64::from_str_radix(ino, 16).ok()
                })
                .collect();
            instances.push(inodes);
        }
        Ok(instances)
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_waiter_watches_only_the_file_that_blocks_it_and_goes_on_when_its_holder_closes_it()
    -> TestResult {
        use std::os::unix::fs::MetadataExt as _;
        use std::process::{Command, Stdio};

        let dir = tempfile::tempdir()?;
        let lock = dir.path().join("holder.lock");
        // A live lock of ours: its record names a live process (not us, not an ancestor), and
        // its flock is held here, through a descriptor opened for writing, as a holder's is.
        let mut stranger = Command::new("cat").stdin(Stdio::piped()).spawn()?;
        let record = LockRecord::new("holder", vec!["/srv/w".into()], stranger.id(), "t")
            .with_flock_liveness();
        std::fs::write(&lock, record.to_json())?;
        let holder = std::fs::OpenOptions::new().write(true).open(&lock)?;
        assert!(crate::sys::try_lock_exclusive(&holder)?);
        let lock_inode = std::fs::metadata(&lock)?.ino();

        let done_rx = waiter_in_a_thread(dir.path(), "/srv/w", Duration::from_secs(60))?;
        // Told once the waiter's watch is in place for its wait: its one instance that watches
        // the blocking file watches nothing else, so no other name's event can wake it.
        let watching: Vec<Vec<u64>> = inotify_watches()?
            .into_iter()
            .filter(|inodes| inodes.contains(&lock_inode))
            .collect();
        assert_eq!(
            watching,
            [vec![lock_inode]],
            "the waiter's watch is not the blocking file alone (instances watching it: \
             {watching:?}; all: {:?})",
            inotify_watches()?
        );
        // The holder's descriptor closes without a release, as at its death: the waiter wakes,
        // finds the lock stale, and takes the scope.
        drop(holder);
        let (result, _) = done_rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "the waiter never returned after the holder closed its lock")?;
        assert!(result.is_ok(), "{result:?}");
        drop(stranger.stdin.take());
        stranger.wait()?;
        Ok(())
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
                None,
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
        // Far enough never to be reached by a waiter that polls (every 200 ms at most). The
        // last attempt, at the deadline, would find the holder dead too: only an acquire
        // before it shows that something polled.
        let done_rx = waiter_in_a_thread(dir.path(), "/srv/l", Duration::from_secs(15))?;
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
}
