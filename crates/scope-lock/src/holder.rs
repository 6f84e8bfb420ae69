//! Who holds a lock file's flock, for a tool that has to act on the holder (`scope-lock
//! break`): the same proof the protocol's ancestry uses (docs/protocol.md, "Who holds a
//! lock"), in one place.

use std::io;

use crate::sys;

/// Whether process `pid` holds the flock of the file whose device and inode number are `dev`
/// and `ino` (as `std::os::unix::fs::MetadataExt` gives them) through one of its
/// own descriptors (`/proc/<pid>/fdinfo` lists the locks of each descriptor's open file
/// description). A process that merely has the file open, or holds an flock on another open of
/// it, does not; a child that inherited the holder's descriptor does. The pid is one of
/// `/proc`'s namespace.
///
/// # Errors
///
/// When the process's descriptors cannot be listed: it does not exist (`NotFound`), it is
/// another user's (`PermissionDenied`), or the system has no `/proc` (`Unsupported`).
pub fn process_holds_flock(pid: u32, dev: u64, ino: u64) -> io::Result<bool> {
    sys::holds_flock_through_fd(pid, sys::FileId::new(dev, ino))
}
