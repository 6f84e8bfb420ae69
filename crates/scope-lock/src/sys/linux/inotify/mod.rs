//! inotify: a waiter woken by the event that may have freed its scope, with no polling
//! interval. This file is the watch itself (what it watches, how it waits); [`narrow`] is how
//! a blocked waiter watches only the file that blocks it, and [`spares`] how a spent instance
//! is kept instead of closed.

mod narrow;
mod spares;

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fd::BorrowedFd;
use rustix::io::Errno;

use crate::sys::watch::Interest;
use spares::SPARE_INOTIFY;

/// Wakes a waiter when a watched directory sees an event that may have freed a scope: a name
/// removed or moved away (a release, a reclaim, a ticket withdrawn), or a file opened for
/// writing closed (a holder or waiter whose descriptor closed, including by death: the kernel
/// closes a dead process's descriptors, and a lock or ticket is always opened for writing).
///
/// On Linux this is inotify, so the wait ends within the kernel's wake-up latency, with no
/// polling interval. Other systems have no such watch here ([`DirWatch::is_precise`] says so)
/// and the caller polls with a backoff instead.
///
/// Scans do not wake anyone: they open files read-only, and their closes are not watched. The
/// sentinel is a dot file and ignored by directory watches; [`DirWatch::watch_closes`] watches
/// it on its own, for a process waiting to take it.
///
/// An instance is kept for this process's next wait when the watch is dropped (see
/// [`SPARE_INOTIFY`]): closing one costs the closer milliseconds.
#[derive(Debug)]
pub(crate) struct DirWatch {
    inotify: rustix::fd::OwnedFd,
    watches: Vec<(i32, PathBuf, Interest)>,
    /// While the watch is narrowed to one file ([`DirWatch::narrow_to`]): the directories
    /// whose watches it set aside, to watch again when it widens.
    set_aside: Vec<(PathBuf, Interest)>,
}

impl DirWatch {
    /// A watch with nothing watched yet: a spare instance of this process's, or a new one.
    pub(crate) fn new() -> io::Result<Self> {
        use rustix::fs::inotify::{CreateFlags, init};
        let inotify = match SPARE_INOTIFY.take(std::process::id()) {
            Some(inotify) => inotify,
            None => init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?,
        };
        Ok(Self {
            inotify,
            watches: Vec::new(),
            set_aside: Vec::new(),
        })
    }

    /// Also wakes [`wait`](Self::wait) whenever a descriptor of `file`'s inode is closed,
    /// read-only or not: what a process waiting for someone's flock on it to end needs, since
    /// flock's holders close their descriptor after unlocking (or to unlock). The watch stays
    /// on the inode if the name is removed or replaced; the waiter's own checks of the name
    /// (and its timeout) deal with that.
    pub(crate) fn watch_closes(&mut self, file: &Path) -> io::Result<()> {
        use rustix::fs::inotify::{WatchFlags, add_watch};
        let wd = add_watch(&self.inotify, file, WatchFlags::CLOSE)?;
        self.watches.push((wd, file.to_path_buf(), Interest::All));
        Ok(())
    }

    /// Whether [`wait`](Self::wait) ends on events (else it only sleeps).
    pub(crate) fn is_precise(&self) -> bool {
        true
    }

    /// Watches `dir`; `Ok(true)` when it was not watched before (events before this call were
    /// missed, so the caller must look again before it waits).
    pub(crate) fn watch(&mut self, dir: &Path, interest: Interest) -> io::Result<bool> {
        use rustix::fs::inotify::{WatchFlags, add_watch};
        if self.watches.iter().any(|(_, watched, _)| watched == dir) {
            return Ok(false);
        }
        // No DELETE_SELF: a deleted directory's watch ends with IGNORED, which wakes anyway.
        let flags = WatchFlags::DELETE
            | WatchFlags::MOVED_FROM
            | WatchFlags::CLOSE_WRITE
            | WatchFlags::MOVE_SELF
            | WatchFlags::ONLYDIR
            | WatchFlags::DONT_FOLLOW;
        let wd = add_watch(&self.inotify, dir, flags)?;
        self.watches.push((wd, dir.to_path_buf(), interest));
        Ok(true)
    }

    /// Waits at most `timeout` for an event of interest, or for `woken` to be readable;
    /// `Ok(true)` when either came. Every pending event is consumed.
    ///
    /// With a `focus` (a watched directory and a name in it), only events about that name (or
    /// about the watched directories themselves) count: a waiter blocked by one file cannot
    /// go on before something happens to that file, so it need not wake for the others. That
    /// keeps a release from waking every waiter at once, only the one it concerns.
    pub(crate) fn wait_or_woken(
        &mut self,
        timeout: Duration,
        focus: Option<(&Path, &OsStr)>,
        woken: Option<BorrowedFd<'_>>,
    ) -> io::Result<bool> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let deadline = Instant::now() + timeout;
        loop {
            if self.drain(focus)? {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let left =
                Timespec::try_from(left).map_err(|_| io::Error::other("timeout too long"))?;
            let inotify = PollFd::new(&self.inotify, PollFlags::IN);
            let mut both;
            let mut alone;
            let fds: &mut [PollFd<'_>] = match woken {
                Some(fd) => {
                    both = [inotify, PollFd::from_borrowed_fd(fd, PollFlags::IN)];
                    &mut both
                }
                None => {
                    alone = [inotify];
                    &mut alone
                }
            };
            match poll(fds, Some(&left)) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(err) => return Err(err.into()),
            }
            if fds.get(1).is_some_and(|fd| !fd.revents().is_empty()) {
                return Ok(true);
            }
        }
    }

    /// Reads every pending event; whether any was of interest.
    fn drain(&mut self, focus: Option<(&Path, &OsStr)>) -> io::Result<bool> {
        use rustix::fs::inotify::{ReadFlags, Reader, remove_watch};
        let mut buf = [std::mem::MaybeUninit::uninit(); 4096];
        let mut reader = Reader::new(&self.inotify, &mut buf);
        let mut woken = false;
        loop {
            let event = match reader.next() {
                Ok(event) => event,
                Err(Errno::AGAIN) => return Ok(woken),
                Err(Errno::INTR) => continue,
                Err(err) => return Err(err.into()),
            };
            let flags = event.events();
            if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                // Events were lost: look again.
                woken = true;
                continue;
            }
            if flags.contains(ReadFlags::IGNORED) {
                // A watched directory (or file) went away: look again. The end of a watch we
                // removed ourselves, and no longer list, means nothing.
                let wd = event.wd();
                let listed = self.watches.len();
                self.watches.retain(|(watched, _, _)| *watched != wd);
                woken |= self.watches.len() != listed;
                continue;
            }
            if flags.contains(ReadFlags::MOVE_SELF) {
                // A watched directory was moved: its path now names another directory or none,
                // so its watch goes, and a later `watch` of the path starts afresh. The removal
                // queues an IGNORED, read before this drain ends, which forgets the entry (a
                // removal fails only for a watch that has had its IGNORED already).
                let _ = remove_watch(&self.inotify, event.wd());
            }
            let Some((_, dir, interest)) = self.watches.iter().find(|(wd, _, _)| *wd == event.wd())
            else {
                continue;
            };
            woken |= match (event.file_name(), focus) {
                (Some(name), Some((focus_dir, focus_name))) => {
                    dir == focus_dir
                        && name.to_bytes() == std::os::unix::ffi::OsStrExt::as_bytes(focus_name)
                }
                (Some(name), None) => interest.wants(name.to_bytes()),
                // An event on the watched inode itself: a directory moved, or a close of a
                // file that `watch_closes` watches.
                (None, _) => true,
            };
        }
    }
}

/// Gives the instance back to [`SPARE_INOTIFY`] (see [`DirWatch::retire`]).
impl Drop for DirWatch {
    fn drop(&mut self) {
        self.retire(&SPARE_INOTIFY);
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, OpenOptions, create_dir, remove_file};

    use super::*;
    use crate::sys::try_lock_exclusive;
    use crate::sys::unix::tests::{create_new, open_lock_file, open_sentinel};
    use crate::sys::unlock;

    #[test]
    fn a_dir_watch_wakes_on_release_and_on_close_but_not_on_reads() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let lock = dir.path().join("a.lock");
        let holder = create_new(&lock)?;
        let mut watch = DirWatch::new()?;
        assert!(watch.watch(dir.path(), Interest::LockFiles)?);
        assert!(!watch.watch(dir.path(), Interest::LockFiles)?);

        // Reading and probing wake nobody; nor does the sentinel, a dot file.
        drop(open_lock_file(&lock)?);
        drop(open_sentinel(&dir.path().join(".acquire.lock"))?);
        std::fs::write(dir.path().join("a.log"), b"x")?;
        assert!(!watch.wait(Duration::ZERO, None)?);

        // The holder's descriptor closing (a death looks the same) wakes.
        drop(holder);
        assert!(watch.wait(Duration::from_secs(30), None)?);
        // Removing the file wakes.
        remove_file(&lock)?;
        assert!(watch.wait(Duration::from_secs(30), None)?);
        assert!(!watch.wait(Duration::ZERO, None)?);

        // Focused on one file, events about others do not wake.
        let (a, b) = (dir.path().join("a.lock"), dir.path().join("b.lock"));
        let (holder_a, holder_b) = (create_new(&a)?, create_new(&b)?);
        let focus = Some((dir.path(), std::ffi::OsStr::new("a.lock")));
        drop(holder_b);
        remove_file(&b)?;
        assert!(!watch.wait(Duration::ZERO, focus)?);
        drop(holder_a);
        assert!(watch.wait(Duration::from_secs(30), focus)?);
        Ok(())
    }

    #[test]
    fn a_close_watch_wakes_on_every_close_of_the_file_and_nothing_else() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let sentinel = dir.path().join(".acquire.lock");
        let holder = open_sentinel(&sentinel)?;
        let mut watch = DirWatch::new()?;
        watch.watch_closes(&sentinel)?;
        // Other files, and locking and unlocking without a close, wake nobody.
        drop(create_new(&dir.path().join("a.lock"))?);
        assert!(try_lock_exclusive(&holder)?);
        unlock(&holder)?;
        assert!(!watch.wait(Duration::ZERO, None)?);
        // A read-only descriptor closing (how ours and most holders let go) wakes.
        drop(holder);
        assert!(watch.wait(Duration::from_secs(30), None)?);
        assert!(!watch.wait(Duration::ZERO, None)?);
        // So does one opened for writing (the original's).
        drop(OpenOptions::new().write(true).open(&sentinel)?);
        assert!(watch.wait(Duration::from_secs(30), None)?);
        Ok(())
    }

    /// The watches that `/proc/self/fdinfo` lists for the inotify descriptor `fd`.
    pub(super) fn inotify_watches(fd: &rustix::fd::OwnedFd) -> io::Result<usize> {
        use std::os::fd::AsRawFd as _;
        let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
        Ok(info
            .lines()
            .filter(|l| l.starts_with("inotify wd:"))
            .count())
    }

    #[test]
    fn a_dir_watch_without_events_waits_out_its_timeout() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut watch = DirWatch::new()?;
        assert!(watch.watch(dir.path(), Interest::All)?);
        let timeout = Duration::from_millis(200);
        let started = Instant::now();
        assert!(!watch.wait(timeout, None)?);
        // A lower bound only: the wait may end later on a busy machine, never earlier.
        assert!(
            started.elapsed() >= timeout,
            "woke after {:?}",
            started.elapsed()
        );
        Ok(())
    }

    #[test]
    fn a_watched_directory_that_is_removed_and_made_again_is_watched_afresh() -> io::Result<()> {
        let parent = tempfile::tempdir()?;
        let dir = parent.path().join(".running");
        create_dir(&dir)?;
        let mut watch = DirWatch::new()?;
        assert!(watch.watch(&dir, Interest::LockFiles)?);
        // rmdir queues the directory's own deletion and the end of its watch in one go.
        fs::remove_dir(&dir)?;
        assert!(watch.wait(Duration::from_secs(30), None)?);
        create_dir(&dir)?;
        assert!(
            watch.watch(&dir, Interest::LockFiles)?,
            "the watch of the removed directory was not forgotten"
        );
        drop(create_new(&dir.join("a.lock"))?);
        assert!(watch.wait(Duration::from_secs(30), None)?);
        Ok(())
    }

    #[test]
    fn a_dir_watch_wakes_when_a_name_or_the_directory_itself_is_moved() -> io::Result<()> {
        let parent = tempfile::tempdir()?;
        let dir = parent.path().join(".running");
        create_dir(&dir)?;
        drop(create_new(&dir.join("a.lock"))?);
        let mut watch = DirWatch::new()?;
        assert!(watch.watch(&dir, Interest::LockFiles)?);
        fs::rename(dir.join("a.lock"), parent.path().join("a.lock"))?;
        assert!(watch.wait(Duration::from_secs(30), None)?);
        fs::rename(&dir, parent.path().join("moved"))?;
        assert!(watch.wait(Duration::from_secs(30), None)?);
        Ok(())
    }

    #[test]
    fn a_watched_directory_that_is_moved_away_and_made_again_is_watched_afresh() -> io::Result<()> {
        let parent = tempfile::tempdir()?;
        let dir = parent.path().join(".running");
        create_dir(&dir)?;
        let mut watch = DirWatch::new()?;
        assert!(watch.watch(&dir, Interest::LockFiles)?);
        // A rename ends no watch by itself (no IGNORED): the old one follows the directory.
        fs::rename(&dir, parent.path().join("moved"))?;
        assert!(watch.wait(Duration::from_secs(30), None)?);
        create_dir(&dir)?;
        assert!(
            watch.watch(&dir, Interest::LockFiles)?,
            "the watch of the moved directory was not forgotten"
        );
        // Only the new directory is watched: the moved one's watch is gone from the kernel.
        assert_eq!(inotify_watches(&watch.inotify)?, 1);
        // A timeout this long ends the wait only if nothing wakes it: `true` is the event.
        drop(create_new(&dir.join("a.lock"))?);
        assert!(
            watch.wait(Duration::from_secs(30), None)?,
            "a release in the new directory did not wake the wait"
        );
        Ok(())
    }

    #[test]
    fn a_dir_watch_refuses_a_file_and_a_symlink_to_a_directory() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("a.lock");
        drop(create_new(&file)?);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link)?;
        let mut watch = DirWatch::new()?;
        for path in [&file, &link] {
            let err = watch
                .watch(path, Interest::LockFiles)
                .expect_err("only a directory can be watched");
            assert_eq!(
                err.raw_os_error(),
                Some(Errno::NOTDIR.raw_os_error()),
                "{path:?}"
            );
        }
        Ok(())
    }
}
