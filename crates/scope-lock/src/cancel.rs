//! A way to end a waiting acquire from another thread: what an async acquire whose future is
//! dropped needs, since its wait runs on a thread of its own, and what the Python binding's
//! `async with` gives up a cancelled task's wait with.

use std::io::{PipeReader, PipeWriter, Write as _};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Gives up a waiting acquire ([`LockManager::acquire_cancellable`]) from another thread.
///
/// Cancelled once, from any thread: a wait that was given it ends at its next look, and a wait
/// asleep on its directory watch is woken at once (a pipe it polls along with the watch
/// becomes readable), so the wait ends without polling, withdrawing its ticket from the
/// waiting queue on the way out as a timeout does.
///
/// ```
/// use std::time::{Duration, Instant};
/// use scope_lock::{AcquireError, CancelWait, LockManager, LockRequest, Waiting};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let project = tempfile::tempdir()?;
/// let locks = LockManager::new(project.path().join(".loops"));
/// let _holder = locks.try_acquire(&LockRequest::new("first").scope(["src/"]))?;
/// let cancel = CancelWait::new();
/// let (told, heard) = std::sync::mpsc::channel();
/// let outcome = std::thread::scope(|threads| {
///     let cancel = &cancel;
///     threads.spawn(move || {
///         // Once the waiter says it waits, give its wait up.
///         let _ = heard.recv();
///         cancel.cancel();
///     });
///     let mut report = move |_: &Waiting<'_>| {
///         let _ = told.send(());
///     };
///     let request = LockRequest::new("second").scope(["src/"]);
///     let deadline = Instant::now() + Duration::from_secs(3600);
///     locks.acquire_cancellable(&request, deadline, &mut report, cancel)
/// });
/// assert!(cancel.is_cancelled());
/// assert!(matches!(outcome, Err(AcquireError::Timeout(_))));
/// assert!(locks.list_locks()?.waiters().is_empty());
/// # Ok(()) }
/// ```
///
/// [`LockManager::acquire_cancellable`]: crate::LockManager::acquire_cancellable
#[derive(Debug)]
pub struct CancelWait {
    set: AtomicBool,
    /// `None` when no pipe could be had: the wait then polls (see [`Cancel::wake_fd`]).
    pipe: Option<(PipeReader, Mutex<PipeWriter>)>,
}

impl Default for CancelWait {
    fn default() -> Self {
        Self::new()
    }
}

impl CancelWait {
    /// Not yet cancelled. It holds a pipe (two file descriptors) until it is dropped; where
    /// none can be had, a wait given it polls for the cancel every few milliseconds instead.
    pub fn new() -> Self {
        Self {
            set: AtomicBool::new(false),
            pipe: std::io::pipe()
                .ok()
                .map(|(reader, writer)| (reader, Mutex::new(writer))),
        }
    }

    /// Cancels: the wait given this ends as soon as it can. Only the first call does anything.
    pub fn cancel(&self) {
        if self.set.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some((_, writer)) = &self.pipe
            && let Ok(mut writer) = writer.lock()
        {
            // One byte in an empty pipe cannot block; if it fails the waiter still sees the
            // flag at its next look.
            let _ = writer.write_all(&[1]);
        }
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// What a directory watch's wait also polls, so that [`cancel`](Self::cancel) wakes it.
    /// `None` when there is none: the waiter must then not sleep for long.
    pub(crate) fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        self.pipe.as_ref().map(|(reader, _)| reader.as_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancelling_sets_the_flag_and_makes_the_wake_fd_readable_once() {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let cancel = CancelWait::new();
        let readable = |cancel: &CancelWait| {
            let Some(fd) = cancel.wake_fd() else {
                return false;
            };
            let mut fds = [PollFd::from_borrowed_fd(fd, PollFlags::IN)];
            let zero = Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            matches!(poll(&mut fds, Some(&zero)), Ok(1))
        };
        assert!(!cancel.is_cancelled());
        assert!(!readable(&cancel));
        cancel.cancel();
        cancel.cancel();
        assert!(cancel.is_cancelled());
        assert!(readable(&cancel));
    }
}
