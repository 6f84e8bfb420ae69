//! A lock that `run` holds, whichever backend holds it: its fencing token, what CMD inherits,
//! and whether it can be lost while it is held.
//!
//! A local lock cannot be lost: it is an flocked descriptor, which lives as long as a process
//! holding it does. A lock on etcd can: its key lives as long as its lease, which this process
//! must keep renewing, and a process stopped or cut off past the lease's TTL finds it gone.

use std::os::fd::{AsFd as _, BorrowedFd};
use std::path::PathBuf;

use scope_lock::{Error, ScopeGuard};

/// What `run` needs of a held lock.
pub(crate) trait HeldLock {
    /// The lock's fencing token (`SCOPE_LOCK_TOKEN`).
    fn token(&self) -> u64;

    /// A descriptor for CMD to inherit, so that the lock lives as long as CMD does (the local
    /// lock's flocked descriptor); `None` for a lock that no descriptor holds.
    fn descriptor(&self) -> Option<BorrowedFd<'_>>;

    /// Arranges for `then` to be called once, from another thread, when the lock is lost;
    /// a lock that cannot be lost never calls it (and may drop it at once).
    fn on_lost(&self, then: Box<dyn FnOnce() + Send>);

    /// Whether the lock is lost already.
    fn is_lost(&self) -> bool;

    /// Where the lock is, for messages: its file, or its key.
    fn describe(&self) -> String;

    /// Where the lock is, for `run --json`: its file, or its key.
    fn location(&self) -> PathBuf;

    /// Releases the lock.
    fn release(self) -> Result<(), Error>;
}

impl HeldLock for ScopeGuard {
    fn token(&self) -> u64 {
        ScopeGuard::token(self)
    }

    fn descriptor(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }

    fn on_lost(&self, _then: Box<dyn FnOnce() + Send>) {
        // An flocked descriptor is never taken away from a living process.
    }

    fn is_lost(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        self.path().display().to_string()
    }

    fn location(&self) -> PathBuf {
        self.path().to_path_buf()
    }

    fn release(self) -> Result<(), Error> {
        ScopeGuard::release(self)
    }
}
