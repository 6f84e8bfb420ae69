//! Spent inotify instances, kept for this process's next wait instead of closed.

use std::io;

use super::DirWatch;

/// Inotify instances that this process no longer uses, kept for its next wait.
///
/// Closing an instance that has had watches blocks the closer until the kernel has freed them
/// (it waits out an RCU grace period: 8 to 16 ms measured on Linux 6.18, whatever the load).
/// A waiter drops its watch right after it got its lock, so every waiting acquire would pay
/// that before it returns, holding the lock. Removing the watches is cheap, so a spent
/// instance loses its watches and waits here instead; closing it later costs nothing, since
/// the kernel freed its watches long before.
pub(super) static SPARE_INOTIFY: Spares = Spares::new(4);

/// Spare descriptors, each with the pid of the process that put it there: a child created by
/// `fork` inherits its parent's, which share their event queues with the parent's, so it must
/// not use them.
#[derive(Debug)]
pub(super) struct Spares {
    spare: std::sync::Mutex<Vec<(u32, rustix::fd::OwnedFd)>>,
    max: usize,
}
impl Spares {
    const fn new(max: usize) -> Self {
        Self {
            spare: std::sync::Mutex::new(Vec::new()),
            max,
        }
    }

    /// A spare descriptor of process `pid`'s, if there is one. Drops those of other processes.
    /// Never blocks: a list held by another thread (or by a thread that did not survive a
    /// fork) is as good as empty.
    pub(super) fn take(&self, pid: u32) -> Option<rustix::fd::OwnedFd> {
        let mut spare = self.spare.try_lock().ok()?;
        spare.retain(|(owner, _)| *owner == pid);
        spare.pop().map(|(_, fd)| fd)
    }

    /// Keeps `fd` for process `pid`, unless `max` are kept already (then it is closed).
    fn give(&self, pid: u32, fd: rustix::fd::OwnedFd) {
        if let Ok(mut spare) = self.spare.try_lock()
            && spare.len() < self.max
        {
            spare.push((pid, fd));
        }
    }
}
impl DirWatch {
    /// Empties the instance of watches and events and gives a descriptor of it to `spares`,
    /// so that it closes late and cheaply instead of now, at the cost of a grace period; ours
    /// then closes without being the last.
    pub(super) fn retire(&mut self, spares: &Spares) {
        if self.reset().is_ok()
            && let Ok(kept) = self.inotify.try_clone()
        {
            spares.give(std::process::id(), kept);
        }
    }

    /// Removes every watch and reads every pending event: the instance is as good as new.
    fn reset(&mut self) -> io::Result<()> {
        use rustix::fs::inotify::remove_watch;
        // A removal fails only for a watch the kernel dropped already (its directory went).
        for (wd, _, _) in std::mem::take(&mut self.watches) {
            let _ = remove_watch(&self.inotify, wd);
        }
        self.set_aside.clear();
        // Each removal queued an `IN_IGNORED`: read them now, with whatever else was pending.
        // (Anything left could at worst wake the next user once for nothing.)
        self.drain(None).map(drop)
    }
}

#[cfg(test)]
mod tests {

    use super::super::tests::inotify_watches;
    use super::*;
    use crate::sys::unix::tests::{create_new, open_lock_file};
    use crate::sys::watch::Interest;
    use std::time::Duration;

    #[test]
    fn a_reset_watch_watches_nothing_and_has_nothing_pending() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut watch = DirWatch::new()?;
        let file = dir.path().join("x");
        drop(create_new(&file)?);
        assert!(watch.watch(dir.path(), Interest::All)?);
        watch.watch_closes(&file)?;
        drop(open_lock_file(&file)?);
        drop(create_new(&dir.path().join("a"))?);
        assert_eq!(inotify_watches(&watch.inotify)?, 2);
        watch.reset()?;
        assert_eq!(inotify_watches(&watch.inotify)?, 0);
        assert!(watch.watches.is_empty());
        // The close above and the removals' notices were read: nothing wakes it.
        drop(create_new(&dir.path().join("b"))?);
        assert!(!watch.wait(Duration::ZERO, None)?);
        // It can watch again, as new.
        assert!(watch.watch(dir.path(), Interest::All)?);
        drop(create_new(&dir.path().join("c"))?);
        assert!(watch.wait(Duration::from_secs(30), None)?);
        Ok(())
    }

    #[test]
    fn a_retired_watch_leaves_a_spare_without_watches_for_this_process() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let spares = Spares::new(4);
        let mut watch = DirWatch::new()?;
        watch.watch(dir.path(), Interest::All)?;
        watch.retire(&spares);
        let spare = spares
            .take(std::process::id())
            .ok_or("no spare was kept")
            .map_err(io::Error::other)?;
        assert_eq!(inotify_watches(&spare)?, 0);
        Ok(())
    }

    #[test]
    fn spare_instances_go_only_to_the_process_that_kept_them_and_only_so_many() -> io::Result<()> {
        use rustix::fs::inotify::{CreateFlags, init};
        let spares = Spares::new(2);
        let me = std::process::id();
        let new = || init(CreateFlags::CLOEXEC);
        // Another process's (a parent's, inherited through fork) is never handed out.
        spares.give(me.wrapping_add(1), new()?);
        assert!(spares.take(me).is_none());
        spares.give(me, new()?);
        assert!(spares.take(me).is_some());
        assert!(spares.take(me).is_none());
        for _ in 0..3 {
            spares.give(me, new()?);
        }
        assert!(spares.take(me).is_some());
        assert!(spares.take(me).is_some());
        assert!(spares.take(me).is_none(), "kept more than its maximum");
        Ok(())
    }
}
