//! Step 5, release (docs/protocol.md, "How this crate takes a lock"): under the sentinel, the
//! lock file unlinked only if its name still names the inode we hold.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::Duration;

use super::sentinel::{SentinelGuard, open_parent};
use crate::error::{Error, ErrorKind};
use crate::fault;
use crate::sys::FileId;

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
    let sentinel = match SentinelGuard::lock(running_dir, bound) {
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
pub(super) fn unlink_if_ours(
    path: &Path,
    id: FileId,
    sentinel: &SentinelGuard,
) -> Result<(), Error> {
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

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::time::{Duration, Instant};

    use super::super::sentinel::tests::hold_sentinel;
    use crate::LockRequest;
    use crate::sys;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

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
            sys::try_lock_exclusive(&probe)?,
            "the dropped guard's flock outlived it"
        );
        drop(held);
        Ok(())
    }
}
