//! Who holds a lock file's flock, proven from `/proc`, and signalling those processes so that
//! nobody else can be hit.
//!
//! A lock file's record names a pid, but a file can name any pid: a forged record, a pid
//! reused since, a pid of another pid namespace (where `2` on the host is `kthreadd`). And the
//! pid in a record of ours is the process that *took* the lock, which may be dead while the
//! program it ran holds the lock on (`scope-lock run` lends it the descriptor). `/proc/locks`
//! does not help either: it also shows the taker's pid, dead or reused.
//!
//! What proves a holder is the kernel's own account: a descriptor of the process, in
//! `/proc/<pid>/fd`, that refers to the lock file's inode (same device and inode), and whose
//! `/proc/<pid>/fdinfo/<fd>` lists an `FLOCK` lock. The kernel lists there only locks that
//! belong to that descriptor's open file description, so a process that merely has the file
//! open (a scan probing it) is no holder. Such a holder may still not be ours to stop (see
//! [`refusal`]), and between the proof and the signal its pid could be reused: each signal goes
//! through a pidfd opened *before* the proof is read again, and only if the process is still
//! alive after it, so the proof and the signal are about one process.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use rustix::process::Signal;
#[cfg(target_os = "linux")]
use scope_lock::ProcessStatus;

/// The lock file whose holders are wanted: its inode, and the uid that owns it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LockFile {
    dev: u64,
    ino: u64,
    owner: u32,
}

impl LockFile {
    /// The file `path` names now (without following a symlink).
    pub(crate) fn at(path: &Path) -> io::Result<Self> {
        let meta = fs::symlink_metadata(path)?;
        Ok(Self {
            dev: meta.dev(),
            ino: meta.ino(),
            owner: meta.uid(),
        })
    }
}

/// A process that provably holds a lock file's flock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    pub(crate) pid: u32,
    /// Its name, as `/proc/<pid>/status` gives it.
    pub(crate) name: String,
    ppid: u32,
    /// Why it may not be signalled; `None` when it may.
    pub(crate) refusal: Option<String>,
}

/// The holders of `lock`'s flock, and how many processes could not be looked into (another
/// user's, when not run as root).
#[derive(Debug, Default)]
pub(crate) struct Holders {
    pub(crate) holders: Vec<Holder>,
    pub(crate) unseen: usize,
}

impl Holders {
    /// The holders that may be signalled.
    pub(crate) fn signallable(&self) -> impl Iterator<Item = &Holder> {
        self.holders.iter().filter(|h| h.refusal.is_none())
    }

    /// The holders that may be signalled and whose parent holds no flock of the lock: asked to
    /// stop first, so that a `scope-lock run` passes the signal on to its CMD, and CMD does not
    /// get it twice.
    pub(crate) fn topmost(&self) -> impl Iterator<Item = &Holder> {
        self.signallable()
            .filter(|h| !self.holders.iter().any(|parent| parent.pid == h.ppid))
    }
}

/// What [`signal`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sent {
    Signalled,
    /// The process ended, or let the lock go, before it could be signalled.
    Gone,
    /// It can no longer be signalled, for this reason.
    Refused(String),
}

/// Where there is no `/proc`, no holder can be proven.
#[cfg(not(target_os = "linux"))]
pub(crate) fn find(_lock: &LockFile) -> Result<Holders, String> {
    Err(NO_PROC.to_owned())
}

/// Where there is no `/proc`, no holder can be proven, so none is signalled.
#[cfg(not(target_os = "linux"))]
pub(crate) fn signal(_pid: u32, _lock: &LockFile, _signal: Signal) -> Result<Sent, String> {
    Err(NO_PROC.to_owned())
}

#[cfg(not(target_os = "linux"))]
const NO_PROC: &str = "this platform has no /proc to tell which process holds an flock";

/// Every process that provably holds `lock`'s flock, each with the reason, if any, why it may
/// not be signalled.
///
/// # Errors
///
/// Why nobody can be proven to hold it: `/proc` missing, unreadable, or not this process's
/// pid namespace's (its pids would not be ours).
#[cfg(target_os = "linux")]
pub(crate) fn find(lock: &LockFile) -> Result<Holders, String> {
    let ancestry = Ancestry::read()?;
    let entries =
        fs::read_dir("/proc").map_err(|err| format!("cannot list /proc: {}", reason(err)))?;
    let mut found = Holders::default();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        match holds_flock(pid, lock) {
            Ok(false) => {}
            Ok(true) => {
                if let Ok(status) = ProcessStatus::of(pid) {
                    found.holders.push(Holder {
                        pid,
                        refusal: refusal(pid, &status, lock, &ancestry),
                        name: status.name().to_owned(),
                        ppid: status.ppid(),
                    });
                }
            }
            Err(err) if err.kind() == io::ErrorKind::PermissionDenied => found.unseen += 1,
            // Gone meanwhile, or a kernel thread: holds nothing.
            Err(_) => {}
        }
    }
    found.holders.sort_by_key(|h| h.pid);
    Ok(found)
}

/// Sends `signal` to process `pid` if it still provably holds `lock`'s flock and may be
/// signalled: pidfd first, then the proof, then a check that the pidfd's process is still
/// alive (so the proof was read about it, not about a process that reused its pid), then the
/// signal through the pidfd.
///
/// # Errors
///
/// Why the signal could not be sent to a process that is there.
#[cfg(target_os = "linux")]
pub(crate) fn signal(pid: u32, lock: &LockFile, signal: Signal) -> Result<Sent, String> {
    use rustix::io::Errno;
    let raw = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap_or(0))
        .ok_or_else(|| format!("invalid pid {pid}"))?;
    let pidfd = match rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()) {
        Ok(pidfd) => pidfd,
        Err(Errno::SRCH) => return Ok(Sent::Gone),
        Err(err) => {
            return Err(format!(
                "cannot open a pidfd for pid {pid}: {}",
                reason(err)
            ));
        }
    };
    let ancestry = Ancestry::read()?;
    match holds_flock(pid, lock) {
        Ok(true) => {}
        Ok(false) => return Ok(Sent::Gone),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Sent::Gone),
        Err(err) => {
            return Err(format!(
                "cannot read the descriptors of pid {pid}: {}",
                reason(err)
            ));
        }
    }
    let status = match ProcessStatus::of(pid) {
        Ok(status) => status,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Sent::Gone),
        Err(err) => return Err(format!("cannot read /proc/{pid}/status: {}", reason(err))),
    };
    if let Some(why) = refusal(pid, &status, lock, &ancestry) {
        return Ok(Sent::Refused(why));
    }
    if has_exited(&pidfd)
        .map_err(|err| format!("cannot poll the pidfd of pid {pid}: {}", reason(err)))?
    {
        return Ok(Sent::Gone);
    }
    match rustix::process::pidfd_send_signal(&pidfd, signal) {
        Ok(()) => Ok(Sent::Signalled),
        Err(Errno::SRCH) => Ok(Sent::Gone),
        Err(err) => Err(format!("cannot signal pid {pid}: {}", reason(err))),
    }
}

/// An error in the system's words, for a message.
#[cfg(target_os = "linux")]
fn reason(err: impl Into<io::Error>) -> String {
    crate::exit::os_reason(&err.into())
}

/// Whether the process behind `pidfd` has exited (a pidfd polls readable from then on).
#[cfg(target_os = "linux")]
fn has_exited(pidfd: &rustix::fd::OwnedFd) -> io::Result<bool> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    Ok(poll(&mut fds, Some(&now))? > 0)
}

/// Why process `pid` (whose status is `status`), a holder of `lock`, may not be signalled.
///
/// Pid 1, this process and its ancestors never: stopping them stops the system or the caller.
/// A process of another pid namespace (one nested in ours, which our `/proc` shows) never:
/// the lock's record and its users speak of pids there, and it is stopped from there. And a
/// process whose real and effective uid both differ from the lock file's owner never, root's
/// included: a file planted by one user, flocked by a process that inherited it or probes it,
/// must not aim `break` (often run as root) at another user's process. Whoever may stop such a
/// process can still do so by hand; the message names its pid.
#[cfg(target_os = "linux")]
fn refusal(
    pid: u32,
    status: &ProcessStatus,
    lock: &LockFile,
    ancestry: &Ancestry,
) -> Option<String> {
    let uids = (status.real_uid(), status.effective_uid());
    refusal_of(pid, status.namespace_pids(), uids, lock, ancestry)
}

/// [`refusal`] of the facts it looks at: `nspid`, the process's pids from /proc's namespace
/// down to its own, and its real and effective `uids`.
#[cfg(target_os = "linux")]
fn refusal_of(
    pid: u32,
    nspid: &[u32],
    (real, effective): (u32, u32),
    lock: &LockFile,
    ancestry: &Ancestry,
) -> Option<String> {
    if pid == 1 {
        return Some("it is pid 1, the init process".to_owned());
    }
    if pid == ancestry.me {
        return Some("it is this very process".to_owned());
    }
    if ancestry.ancestors.contains(&pid) {
        return Some("it is an ancestor of this process: stopping it would stop the caller".into());
    }
    if let [_, .., inner] = nspid {
        return Some(format!(
            "it runs in another pid namespace (as pid {inner} there); stop it from inside that \
             namespace"
        ));
    }
    if real != lock.owner && effective != lock.owner {
        return Some(format!(
            "it runs as uid {real} (effective {effective}), but the lock file belongs to uid {}",
            lock.owner
        ));
    }
    None
}

/// Whether process `pid` holds `lock`'s flock through one of its descriptors.
#[cfg(target_os = "linux")]
fn holds_flock(pid: u32, lock: &LockFile) -> io::Result<bool> {
    scope_lock::process_holds_flock(pid, lock.dev, lock.ino)
}

/// This process and its ancestors, as `/proc` numbers them, once it is sure those are the
/// numbers of our pid namespace.
#[cfg(target_os = "linux")]
struct Ancestry {
    me: u32,
    ancestors: Vec<u32>,
}

/// How far up the parent chain to look: beyond any real nesting, short of a loop.
#[cfg(target_os = "linux")]
const MAX_ANCESTORS: usize = 4096;

#[cfg(target_os = "linux")]
impl Ancestry {
    fn read() -> Result<Self, String> {
        let me = std::process::id();
        let status = ProcessStatus::of_this_process()
            .map_err(|err| format!("cannot read /proc/self/status: {}", reason(err)))?;
        // `NSpid` lists our pid in /proc's pid namespace and each one below it: a single
        // entry equal to our own pid means /proc numbers processes as we do.
        if status.namespace_pids() != [me] {
            return Err(format!(
                "/proc is not this pid namespace's (it numbers this process {:?}, not {me}), \
                 so its pids cannot be trusted here",
                status.namespace_pids()
            ));
        }
        let mut ancestors = Vec::new();
        let mut pid = status.ppid();
        while pid > 1 && ancestors.len() < MAX_ANCESTORS && !ancestors.contains(&pid) {
            ancestors.push(pid);
            pid = ProcessStatus::of(pid).map_or(0, |parent| parent.ppid());
        }
        Ok(Self { me, ancestors })
    }
}

#[cfg(target_os = "linux")]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_spare_init_the_caller_its_family_other_namespaces_and_other_users() {
        let lock = LockFile {
            dev: 1,
            ino: 2,
            owner: 1000,
        };
        let ancestry = Ancestry {
            me: 50,
            ancestors: vec![40, 30],
        };
        let refusal = |pid, nspid: &[u32], uids| refusal_of(pid, nspid, uids, &lock, &ancestry);
        assert_eq!(refusal(99, &[99], (1000, 1000)), None);
        for pid in [1, 50, 40, 30] {
            assert!(refusal(pid, &[pid], (1000, 1000)).is_some(), "{pid}");
        }
        let nested = refusal(99, &[99, 2], (1000, 1000));
        assert!(nested.is_some_and(|why| why.contains("as pid 2 there")));
        let root = refusal(99, &[99], (0, 0));
        assert!(root.is_some_and(|why| why.contains("uid 0")));
        // Either uid matching the owner will do: a setuid program the owner started.
        assert_eq!(refusal(99, &[99], (1000, 0)), None);
    }

    #[test]
    fn this_process_is_found_holding_a_file_it_flocked_and_is_refused() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("x.lock");
        let file = fs::File::create(&path)?;
        let lock = LockFile::at(&path)?;
        let before = find(&lock).map_err(io::Error::other)?;
        assert!(before.holders.is_empty(), "{before:?}");
        #[allow(clippy::disallowed_methods)] // an flock taken by the test, as any process would
        file.lock()?;
        let after = find(&lock).map_err(io::Error::other)?;
        let me = std::process::id();
        assert_eq!(
            after.holders.iter().map(|h| h.pid).collect::<Vec<_>>(),
            [me]
        );
        assert_eq!(after.topmost().count(), 0, "{after:?}");
        assert_eq!(
            signal(me, &lock, Signal::TERM).map_err(io::Error::other)?,
            Sent::Refused("it is this very process".to_owned())
        );
        Ok(())
    }
}
