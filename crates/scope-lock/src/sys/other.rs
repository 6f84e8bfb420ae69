//! The platform layer on Unixes other than Linux and Android (macOS, the BSDs): what Linux
//! reads from `/proc` or learns from inotify and `statfs`, these systems do not offer here, so
//! each function below is the weaker stand-in its caller expects (docs/contributing.md, "Platforms").
//!
//! Kept apart from `linux/` and `unix.rs` because it is compiled only on those systems:
//! mutation testing runs on Linux, where none of this is built, so `.cargo/mutants.toml` leaves
//! this file out.
//! `cargo clippy --target aarch64-apple-darwin` type-checks it.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::Path;
use std::time::Duration;

use super::unix::{FileId, ProcessIdentity};
use super::watch::Interest;

/// No watch on these systems: its waits only sleep ([`DirWatch::is_precise`] says so), and the
/// caller polls with a backoff instead.
#[derive(Debug)]
pub(crate) struct DirWatch {}

/// Without `/proc/locks` the holder cannot be named.
pub(crate) fn flock_holders(_file: &File) -> Vec<u32> {
    Vec::new()
}

/// Without `/proc/locks` the holder cannot be named.
pub(crate) fn flock_holders_of(_file: FileId) -> Vec<u32> {
    Vec::new()
}

/// Without `/proc`, a process's command line is not read (`ps` would have to be run).
pub(crate) fn command_line(_pid: u32) -> Option<Vec<std::ffi::OsString>> {
    None
}

/// Without `/proc`, a process's descriptors cannot be read.
pub(crate) fn flocks_through_fds(
    _pid: u32,
    _files: &std::collections::HashSet<FileId>,
) -> std::io::Result<std::collections::HashSet<FileId>> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "this system has no /proc to read a process's descriptors from",
    ))
}

/// Without `/proc`, a process's status cannot be read.
pub(crate) fn process_status(_pid: &str) -> io::Result<String> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "this system has no /proc to read a process's status from",
    ))
}

/// No pid namespaces here, so a pid number names one process system-wide and needs nothing
/// beside it (see `protocol/ancestry/`); and no `/proc` to read more from.
pub(crate) fn own_identity() -> Option<ProcessIdentity> {
    None
}

/// Without a `/proc`, start times are not read (nor needed: see [`own_identity`]).
pub(crate) fn start_ticks_of(_pid: u32) -> Option<u64> {
    None
}

impl DirWatch {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self {})
    }

    /// No watch on this system: the caller polls.
    pub(crate) fn watch_closes(&mut self, _file: &Path) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub(crate) fn is_precise(&self) -> bool {
        false
    }

    pub(crate) fn watch(&mut self, _dir: &Path, _interest: Interest) -> io::Result<bool> {
        Ok(false)
    }

    /// No watch to narrow on this system: nothing happened that the caller could learn of.
    pub(crate) fn narrow_to(&mut self, _file: &Path) -> io::Result<bool> {
        Ok(false)
    }

    pub(crate) fn widen(&mut self) {}

    /// No watch on this system: sleeps for `timeout`, which the caller keeps short, ending
    /// (with `Ok(true)`) as soon as `woken` is readable.
    pub(crate) fn wait_or_woken(
        &mut self,
        timeout: Duration,
        _focus: Option<(&Path, &OsStr)>,
        woken: Option<std::os::fd::BorrowedFd<'_>>,
    ) -> io::Result<bool> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let Some(fd) = woken else {
            std::thread::sleep(timeout);
            return Ok(false);
        };
        let left = Timespec::try_from(timeout).map_err(|_| io::Error::other("timeout too long"))?;
        let mut fds = [PollFd::from_borrowed_fd(fd, PollFlags::IN)];
        match poll(&mut fds, Some(&left)) {
            Ok(ready) => Ok(ready > 0),
            Err(rustix::io::Errno::INTR) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }
}

/// Without a `/proc` we only know our own parent; the chain stops there
/// (docs/contributing.md, "Platforms").
pub(crate) fn parent_of(_pid: u32) -> Option<u32> {
    None
}

/// Other Unixes: no detection (docs/contributing.md, "Platforms").
pub(crate) fn unreliable_flock_filesystem(_file: &File) -> io::Result<Option<&'static str>> {
    Ok(None)
}
