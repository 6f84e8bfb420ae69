//! A way to end a waiting acquire from another thread: what an async acquire whose future is
//! dropped needs, since its wait runs on a thread of its own.

use std::io::{PipeReader, PipeWriter, Write as _};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once, from any thread; a wait that was given it ends at its next look, and a wait
/// asleep on its directory watch is woken at once (the pipe's read end becomes readable).
#[derive(Debug)]
pub(crate) struct Cancel {
    set: AtomicBool,
    /// `None` when no pipe could be had: the wait then polls (see [`Cancel::wake_fd`]).
    pipe: Option<(PipeReader, Mutex<PipeWriter>)>,
}

impl Cancel {
    pub(crate) fn new() -> Self {
        Self {
            set: AtomicBool::new(false),
            pipe: std::io::pipe()
                .ok()
                .map(|(reader, writer)| (reader, Mutex::new(writer))),
        }
    }

    /// Cancels, once; later calls do nothing.
    pub(crate) fn fire(&self) {
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

    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// What a directory watch's wait also polls, so that [`fire`](Self::fire) wakes it.
    /// `None` when there is none: the waiter must then not sleep for long.
    pub(crate) fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        self.pipe.as_ref().map(|(reader, _)| reader.as_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firing_sets_the_flag_and_makes_the_wake_fd_readable_once() {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let cancel = Cancel::new();
        let readable = |cancel: &Cancel| {
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
        assert!(!cancel.is_set());
        assert!(!readable(&cancel));
        cancel.fire();
        cancel.fire();
        assert!(cancel.is_set());
        assert!(readable(&cancel));
    }
}
