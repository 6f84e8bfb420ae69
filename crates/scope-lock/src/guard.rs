//! The scope guard: the lock itself, for as long as it lives.

use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;
use crate::protocol::{self, Published};
use crate::record::LockRecord;
use crate::sys::FileId;

/// A held scope lock.
///
/// The guard owns the open, exclusively flocked descriptor of its lock file: the lock is held
/// exactly as long as the guard lives, and the kernel ends it if the process dies first.
/// Release it with [`release`](ScopeGuard::release) to learn about failures, or drop it.
///
/// A guard that reaches a child created by `fork` is inert there: dropping or releasing it in
/// the child closes the child's copy of the descriptor and never removes the parent's lock.
/// Conversely, while another thread of this process is spawning a child, that child holds a
/// copy of the descriptor until it `exec`s (descriptors are close-on-exec); a flock can outlast
/// a release by that instant. The released file is already unlinked by then, so nobody waits
/// on it.
///
/// The guard lends its descriptor through [`AsFd`], so that a program it runs can hold the lock
/// too (see [`AsFd for ScopeGuard`](#impl-AsFd-for-ScopeGuard)).
///
/// ```
/// use scope_lock::{LockManager, LockRequest, LockRecord};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let project = tempfile::tempdir()?;
/// let locks = LockManager::new(project.path().join(".loops"));
/// let guard = locks.try_acquire(&LockRequest::new("docs").scope(["docs/"]))?;
/// // The lock file holds the record, as the original writes it.
/// assert_eq!(&LockRecord::from_json(&std::fs::read(guard.path())?)?, guard.record());
/// assert_eq!(guard.record().pid(), std::process::id());
///
/// guard.release()?; // or drop it: the same, without the error
/// assert!(locks.list_locks()?.locks().is_empty());
/// # Ok(()) }
/// ```
#[must_use = "the scope is released as soon as the guard is dropped"]
pub struct ScopeGuard {
    /// Open until the guard itself is dropped, released or not: [`AsFd`] lends it for as long
    /// as the guard can be borrowed.
    file: File,
    released: bool,
    id: FileId,
    path: PathBuf,
    running_dir: PathBuf,
    record: LockRecord,
    owner_pid: u32,
    token: u64,
    sentinel_bound: Duration,
}

impl ScopeGuard {
    /// The guard of a lock the protocol just published, released within `sentinel_bound`.
    pub(crate) fn new(published: Published, sentinel_bound: Duration) -> Self {
        let Published {
            file,
            id,
            path,
            running_dir,
            record,
            token,
        } = published;
        Self {
            file,
            released: false,
            id,
            path,
            running_dir,
            // The record was made for this process just now: its pid is ours.
            owner_pid: record.pid(),
            token,
            record,
            sentinel_bound,
        }
    }

    /// The record in the lock file.
    pub fn record(&self) -> &LockRecord {
        &self.record
    }

    /// The lock's fencing token: larger than that of every lock acquired before this one in
    /// the same lock directory, whatever its scope, by any process (docs/protocol.md,
    /// "Fencing tokens"). Hand it to a resource that remembers the largest token it has seen
    /// and refuses smaller ones: a holder that lost its lock (its process was stopped while
    /// someone reclaimed the lock, say) can then no longer write there.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Releases the lock: removes the lock file if it is still this guard's, then closes the
    /// descriptor, which ends the flock. A lock file already gone (removed by hand, or by a
    /// tool that thought it stale) is not an error, and a file that now belongs to another
    /// holder is left alone.
    ///
    /// Release takes the directory sentinel, for at most the manager's
    /// [sentinel bound](crate::LockManager::sentinel_bound); so does dropping the guard. Neither
    /// waits longer.
    ///
    /// # Errors
    ///
    /// An [`Error`] naming the path when the directory sentinel cannot be locked (of kind
    /// [`ErrorKind::Busy`](crate::ErrorKind::Busy) when another process held it for the whole
    /// bound) or the file cannot be inspected or removed. The flock ends all the same (the
    /// descriptor is closed), so the file left behind is stale and the next scan reclaims it.
    ///
    /// Release consumes the guard, so it cannot happen twice:
    ///
    /// ```compile_fail,E0382
    /// # fn twice(guard: scope_lock::ScopeGuard) -> Result<(), scope_lock::Error> {
    /// guard.release()?;
    /// guard.release()?; // error[E0382]: use of moved value: `guard`
    /// # Ok(()) }
    /// ```
    pub fn release(mut self) -> Result<(), Error> {
        self.release_once()
    }

    /// Removes the lock file if this is the owner's first release. The descriptor, and with
    /// it the flock, is closed when the guard is dropped, which follows at once: `release`
    /// consumes the guard, and `Drop` calls this.
    fn release_once(&mut self) -> Result<(), Error> {
        if std::mem::replace(&mut self.released, true) {
            return Ok(());
        }
        if std::process::id() != self.owner_pid {
            // A forked child: closing our copy leaves the parent's flock in place.
            return Ok(());
        }
        protocol::release(
            &self.running_dir,
            &self.path,
            &self.file,
            self.id,
            self.sentinel_bound,
        )
    }
}

/// The descriptor that holds the lock, lent so that a program this process runs can inherit it
/// and keep the lock for as long as it runs, as `flock(1)` does: `scope-lock run` gives its
/// command a duplicate of it, so the lock lives while either process does.
///
/// The flock belongs to the open file description, which every duplicate shares: do not unlock
/// it (that would end the lock for the guard too) and close only duplicates of your own. A
/// process that inherits a duplicate holds the lock but cannot release it: only this guard
/// removes the lock file (B4), and once it has, a duplicate still open holds a flock on a name
/// nobody looks up, which blocks nobody.
impl AsFd for ScopeGuard {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; the flock ends regardless, which is what makes
        // the lock free, and a busy sentinel delays us by its bound at most. `release` is there
        // for callers who want to know.
        let _ = self.release_once();
    }
}

impl fmt::Debug for ScopeGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeGuard")
            .field("path", &self.path)
            .field("record", &self.record)
            .field("held", &!self.released)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::{LockManager, LockRequest};

    #[test]
    fn debug_names_the_lock_file_its_holder_and_whether_it_is_held()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let locks = LockManager::new(dir.path());
        let guard = locks.try_acquire(&LockRequest::new("docs-fixer").scope(["docs"]))?;
        let text = format!("{guard:?}");
        assert!(text.starts_with("ScopeGuard {"), "{text}");
        assert!(text.contains(&format!("{:?}", guard.path())), "{text}");
        assert!(text.contains("\"docs-fixer\""), "{text}");
        assert!(text.contains("held: true"), "{text}");
        guard.release()?;
        Ok(())
    }
}
