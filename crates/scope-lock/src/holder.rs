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

/// What `/proc/<pid>/status` says of a process: enough for a tool that proved it holds a lock
/// to tell who it is and whether it may stop it (its name, parent, uids, and its pid in each
/// pid namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessStatus {
    name: String,
    ppid: u32,
    real_uid: u32,
    effective_uid: u32,
    nspid: Vec<u32>,
}

impl ProcessStatus {
    /// The status of process `pid` (a pid of `/proc`'s namespace).
    ///
    /// # Errors
    ///
    /// When `/proc/<pid>/status` cannot be read (no such process: `NotFound`; no `/proc`:
    /// `Unsupported`) or lacks one of the fields (`InvalidData`, naming the file).
    pub fn of(pid: u32) -> io::Result<Self> {
        Self::read(&pid.to_string())
    }

    /// The status of this very process, through `/proc/self`.
    ///
    /// # Errors
    ///
    /// As [`of`](Self::of).
    pub fn of_this_process() -> io::Result<Self> {
        Self::read("self")
    }

    fn read(pid: &str) -> io::Result<Self> {
        let text = sys::process_status(pid)?;
        Self::parse(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("/proc/{pid}/status lacks Name, PPid, Uid or NSpid"),
            )
        })
    }

    /// The fields of a `/proc/<pid>/status` text; `None` when one is missing or not a number.
    fn parse(text: &str) -> Option<Self> {
        let field = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
                .map(str::trim)
        };
        let numbers = |key: &str| -> Option<Vec<u32>> {
            field(key)?
                .split_ascii_whitespace()
                .map(|n| n.parse().ok())
                .collect()
        };
        let uids = numbers("Uid")?;
        let nspid = numbers("NSpid").filter(|pids| !pids.is_empty())?;
        Some(Self {
            name: field("Name")?.to_owned(),
            ppid: field("PPid")?.parse().ok()?,
            real_uid: *uids.first()?,
            effective_uid: *uids.get(1)?,
            nspid,
        })
    }

    /// Its command name (`Name`), as the kernel shortens it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its parent's pid (`PPid`); 0 for a process whose parent is outside its pid namespace.
    pub fn ppid(&self) -> u32 {
        self.ppid
    }

    /// Its real uid.
    pub fn real_uid(&self) -> u32 {
        self.real_uid
    }

    /// Its effective uid.
    pub fn effective_uid(&self) -> u32 {
        self.effective_uid
    }

    /// Its pid in `/proc`'s pid namespace and in each nested one down to its own (`NSpid`):
    /// one entry when it lives in `/proc`'s namespace itself.
    pub fn namespace_pids(&self) -> &[u32] {
        &self.nspid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_gives_name_parent_uids_and_namespace_pids() {
        let text = "Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nNgid:\t0\n\
                    Pid:\t4242\nPPid:\t7\nTracerPid:\t0\nUid:\t1000\t0\t0\t0\n\
                    Gid:\t1000\t1000\t1000\t1000\nNSpid:\t4242\t2\n";
        let status = ProcessStatus::parse(text).expect("a complete status");
        assert_eq!(
            (
                status.name(),
                status.ppid(),
                status.real_uid(),
                status.effective_uid()
            ),
            ("sleep", 7, 1000, 0)
        );
        assert_eq!(status.namespace_pids(), [4242, 2]);
        assert_eq!(
            ProcessStatus::parse("Name:\tx\nPPid:\t1\nUid:\t0\t0\t0\t0\n"),
            None
        );
        assert_eq!(ProcessStatus::parse("garbage"), None);
        // An empty NSpid cannot place the process in any namespace.
        let no_nspid = text.replace("NSpid:\t4242\t2", "NSpid:");
        assert_eq!(ProcessStatus::parse(&no_nspid), None);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn this_process_reads_as_itself_and_a_missing_one_is_not_found() -> io::Result<()> {
        let me = ProcessStatus::of_this_process()?;
        assert_eq!(me.ppid(), std::os::unix::process::parent_id());
        assert_eq!(me.real_uid(), rustix::process::getuid().as_raw());
        assert_eq!(me.effective_uid(), rustix::process::geteuid().as_raw());
        assert_eq!(ProcessStatus::of(std::process::id())?, me);
        let gone = ProcessStatus::of(99_999_999).map_err(|err| err.kind());
        assert_eq!(gone.err(), Some(io::ErrorKind::NotFound));
        Ok(())
    }
}
