//! The platform layer: every lock the crate takes or ends, and every call where the way a file
//! is opened or read is part of the protocol's safety, goes through here.
//!
//! Keeping them in one place means a reviewer can check, in one place, that every lock is an
//! `flock(2)` on an open file description (never an `fcntl` record lock, which the kernel drops
//! when *any* descriptor of the file is closed), that `EINTR` is retried, and that lock files are
//! opened without following symlinks and without blocking on FIFOs. The lock calls are
//! enforced: `clippy.toml` forbids std's `File::lock` family everywhere but [`unix`]. (Resolving
//! scope paths, in `scope/path.rs`, reads the filesystem too; it is not part of the protocol.)
//!
//! One file per concern: [`unix`] (flock, open flags, file ids, reads, processes) and [`dir`]
//! (directory descriptors) for every Unix; what Linux learns from inotify, `/proc` and `statfs`
//! in `linux/`; and `other.rs`, the weaker stand-ins for the Unixes without them. The platform
//! is chosen once, below, as `imp`.

#[cfg(not(unix))]
compile_error!(
    "scope-lock supports Unix only (Linux and macOS): its locks are flock(2) locks on open file \
     descriptions, which other platforms do not offer with the same semantics"
);

mod dir;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod other;
mod unix;
mod watch;

#[cfg(any(target_os = "linux", target_os = "android"))]
use linux as imp;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use other as imp;

pub(crate) use dir::{Dir, DirEntry, is_not_a_dir, lstat_type};
pub(crate) use imp::{
    DirWatch, command_line, flock_holders, flock_holders_of, flocks_through_fds, own_identity,
    process_status, start_ticks_of, unreliable_flock_filesystem,
};
pub(crate) use unix::{
    COUNTER_FILE_MODE, FileId, FileType, HAS_PID_NAMESPACES, LOCK_FILE_MODE, ProcessIdentity,
    SHARED_FILE_MODE, file_id, file_type_of, id_of, pid_is_dead, read_sized, reader_from_start,
    try_lock_exclusive, unlock,
};
pub(crate) use watch::Interest;

/// Whether process `pid` holds the flock of `file` through one of its own descriptors (see
/// `flocks_through_fds`).
///
/// # Errors
///
/// When the process's descriptors cannot be listed: no such process (`NotFound`), another
/// user's (`PermissionDenied`), or no `/proc` (`Unsupported`).
pub(crate) fn holds_flock_through_fd(pid: u32, file: FileId) -> std::io::Result<bool> {
    let files = std::collections::HashSet::from([file]);
    Ok(flocks_through_fds(pid, &files)?.contains(&file))
}

// The same on every platform, so written once for whichever `DirWatch` is chosen.
impl DirWatch {
    /// Waits at most `timeout` for an event of interest (see `wait_or_woken`, with nothing
    /// else to wake it); `Ok(true)` when one came. Where the platform has no watch
    /// ([`is_precise`](DirWatch::is_precise) is false), it only sleeps.
    pub(crate) fn wait(
        &mut self,
        timeout: std::time::Duration,
        focus: Option<(&std::path::Path, &std::ffi::OsStr)>,
    ) -> std::io::Result<bool> {
        self.wait_or_woken(timeout, focus, None)
    }
}

/// The pids of this process's ancestors, nearest first, excluding this process and pid 1, and
/// whether the chain was read to its end (see `unix::ancestor_chain`). Read afresh on every
/// call: a process's parent changes when its parent dies.
pub(crate) fn ancestor_pids() -> (Vec<u32>, bool) {
    unix::ancestor_chain(std::os::unix::process::parent_id(), imp::parent_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_parent_is_our_first_ancestor() {
        let (ancestors, _) = ancestor_pids();
        let parent = std::os::unix::process::parent_id();
        if parent > 1 {
            assert_eq!(ancestors.first(), Some(&parent));
        }
        assert!(!ancestors.contains(&std::process::id()));
        assert!(!ancestors.contains(&1));
    }
}
