//! A blocked waiter's watch narrowed to the one file that blocks it, and widened to the
//! directories again before it looks.

use std::io;
use std::path::Path;

use rustix::io::Errno;

use super::DirWatch;
use crate::sys::watch::Interest;

impl DirWatch {
    /// Narrows the watch to `file`, the one file that blocks the caller, until
    /// [`widen`](Self::widen): a watch on the file itself, and none on the directories, so
    /// that what happens to other names there (other waiters' tickets, other locks' dot files
    /// and renames) no longer wakes the caller. A waiter blocked by one file cannot go on
    /// before something happens to that file; with 8 waiters, each used to wake about 29
    /// times per handoff for events about other names.
    ///
    /// The file's watch wakes on what the directory watches woke on for its name: a writer's
    /// descriptor closing (a release or a death), the name removed or replaced (the inode's
    /// link count changes) or moved away, and the inode going. The file's watch is added
    /// before the directories' are removed, and the directories' events until then are read:
    /// `Ok(true)` when one was about `file` (or about the directories themselves, or events
    /// were lost), or when `file` is gone already: then the caller must look again before it
    /// waits. On an error nothing was narrowed, or the watch is no longer to be trusted (the
    /// caller gives it up).
    pub(crate) fn narrow_to(&mut self, file: &Path) -> io::Result<bool> {
        use rustix::fs::inotify::{WatchFlags, add_watch, remove_watch};
        let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
            return Err(io::Error::other("not a file in a directory"));
        };
        if !self.set_aside.is_empty() {
            self.widen();
        }
        let flags = WatchFlags::CLOSE_WRITE
            | WatchFlags::ATTRIB
            | WatchFlags::MOVE_SELF
            | WatchFlags::DELETE_SELF
            | WatchFlags::DONT_FOLLOW;
        let wd = match add_watch(&self.inotify, file, flags) {
            Ok(wd) => wd,
            Err(Errno::NOENT) => return Ok(true),
            Err(err) => return Err(err.into()),
        };
        self.watches.push((wd, file.to_path_buf(), Interest::All));
        let mut happened = self.drain(Some((dir, name)))?;
        let (kept, dirs): (Vec<_>, Vec<_>) = std::mem::take(&mut self.watches)
            .into_iter()
            .partition(|(watched, _, _)| *watched == wd);
        self.watches = kept;
        for (dir_wd, dir, interest) in dirs {
            let _ = remove_watch(&self.inotify, dir_wd);
            self.set_aside.push((dir, interest));
        }
        // The removals queued IGNOREDs for watches no longer listed, which `drain` skips; read
        // now, they wake nobody. What the file's own watch saw meanwhile counts.
        happened |= self.drain(None)?;
        Ok(happened)
    }

    /// Watches again the directories that [`narrow_to`](Self::narrow_to) set aside, and no
    /// longer the file. Called before the caller looks again, so that nothing after its look
    /// goes unseen. A directory that cannot be watched again is left for the caller's
    /// [`watch`](Self::watch), which then reports it as new.
    pub(crate) fn widen(&mut self) {
        use rustix::fs::inotify::remove_watch;
        if self.set_aside.is_empty() {
            return;
        }
        for (wd, _, _) in std::mem::take(&mut self.watches) {
            let _ = remove_watch(&self.inotify, wd);
        }
        for (dir, interest) in std::mem::take(&mut self.set_aside) {
            let _ = self.watch(&dir, interest);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, remove_file};
    use std::time::Duration;

    use super::super::tests::inotify_watches;
    use super::*;
    use crate::sys::unix::tests::{create_new, open_lock_file};

    /// Whether the instance has an event to read: what would wake a waiter's `poll`.
    fn readable(watch: &DirWatch) -> io::Result<bool> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let mut fds = [PollFd::new(&watch.inotify, PollFlags::IN)];
        Ok(poll(&mut fds, Some(&Timespec::default()))? > 0)
    }

    #[test]
    fn a_narrowed_watch_wakes_for_its_file_alone_and_widens_to_its_directories_again()
    -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let lock = dir.path().join("a.lock");
        let holder = create_new(&lock)?;
        let mut watch = DirWatch::new()?;
        assert!(watch.watch(dir.path(), Interest::LockFiles)?);
        assert!(!watch.narrow_to(&lock)?, "nothing happened to the file yet");
        assert_eq!(inotify_watches(&watch.inotify)?, 1);

        // Other names come and go, and the file is read (a scan): nothing to wake a poll.
        let other = dir.path().join("b.lock");
        drop(create_new(&other)?);
        fs::rename(&other, dir.path().join("c.lock"))?;
        remove_file(dir.path().join("c.lock"))?;
        drop(open_lock_file(&lock)?);
        assert!(
            !readable(&watch)?,
            "an event about another name woke the waiter"
        );
        assert!(!watch.wait(Duration::ZERO, None)?);

        // Its holder's descriptor closing (a release, or a death) wakes.
        drop(holder);
        assert!(watch.wait(Duration::from_secs(30), None)?);

        // Widened, the directory is watched again, and the file no longer.
        watch.widen();
        assert_eq!(inotify_watches(&watch.inotify)?, 1);
        assert!(
            !watch.watch(dir.path(), Interest::LockFiles)?,
            "not watched again"
        );
        drop(create_new(&other)?);
        assert!(watch.wait(Duration::from_secs(30), None)?);

        // Its name removed (a release, a reclaim) wakes.
        assert!(!watch.narrow_to(&lock)?);
        remove_file(&lock)?;
        assert!(watch.wait(Duration::from_secs(30), None)?);

        // Replaced by another file under its name: wakes.
        watch.widen();
        drop(create_new(&lock)?);
        assert!(
            watch.wait(Duration::from_secs(30), None)?,
            "the new file's close"
        );
        assert!(!watch.narrow_to(&lock)?);
        fs::rename(&other, &lock)?;
        assert!(watch.wait(Duration::from_secs(30), None)?);

        // Gone already, or gone between the look and the narrowing (the directory saw it):
        // look again.
        watch.widen();
        remove_file(&lock)?;
        assert!(watch.narrow_to(&lock)?);
        watch.widen();
        let holder = create_new(&lock)?;
        drop(holder);
        assert!(
            watch.narrow_to(&lock)?,
            "a close before the narrowing went unnoticed"
        );
        Ok(())
    }
}
