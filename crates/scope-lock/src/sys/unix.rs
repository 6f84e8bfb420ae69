//! Every Unix: flock, open flags and modes, file ids, reads, and what a pid can prove.

// This module is the one place allowed to call std's file-locking methods; `clippy.toml`
// forbids them everywhere else, so every lock the crate takes is visibly an flock taken here.
#![allow(clippy::disallowed_methods)]

use std::fs::{File, Metadata, TryLockError};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;

pub(crate) use rustix::fs::FileType;
use rustix::fs::OFlags;
use rustix::io::Errno;
use rustix::process::{Pid, test_kill_process};

/// The identity of an inode: what a path must still name for us to act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    pub(super) dev: u64,
    pub(super) ino: u64,
}

impl FileId {
    /// The inode `ino` of device `dev`, as `MetadataExt` gives them.
    pub(crate) const fn new(dev: u64, ino: u64) -> Self {
        Self { dev, ino }
    }

    /// An inode made up, for tests of rules about inodes.
    #[cfg(test)]
    pub(crate) const fn made_up(dev: u64, ino: u64) -> Self {
        Self::new(dev, ino)
    }
}

/// The identity of the inode an open descriptor refers to (`fstat`).
pub(crate) fn file_id(file: &File) -> io::Result<FileId> {
    Ok(id_of(&file.metadata()?))
}

/// The identity of the inode `meta` describes.
pub(crate) fn id_of(meta: &Metadata) -> FileId {
    FileId {
        dev: meta.dev(),
        ino: meta.ino(),
    }
}

/// Flags for every open of a file in the lock directory: never follow a symlink planted at the
/// final component, never block in `open` on a FIFO, and close on `exec`, so that a child that
/// `exec`s does not inherit (and so cannot prolong) a lock.
pub(super) fn lock_dir_open_flags() -> OFlags {
    OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC
}

/// The mode of the directory sentinel and of tickets: anyone who may use the directory may
/// open them to flock or read them; nobody writes them but their creator.
pub(crate) const SHARED_FILE_MODE: u32 = 0o644;

/// The mode of the fencing-token counter, set whatever the umask: every user who acquires
/// in a shared directory must advance it.
pub(crate) const COUNTER_FILE_MODE: u32 = 0o666;

/// The mode of published lock files, set whatever the umask.
///
/// Read-only for everyone: others must be able to open it to probe its flock and read its
/// record (a lock file only its owner can read blocks every other user's acquire as
/// unreadable, even after its holder is gone). Nobody has reason to write a published lock
/// file, and the original overwrites a live lock of the same name with `open(path, "w")`,
/// which truncates it: with this mode that open fails with `EACCES` for every user but root,
/// so the original reports an error instead of silently taking the holder's lock. Root
/// bypasses file modes.
pub(crate) const LOCK_FILE_MODE: u32 = 0o444;

/// The type of the file `meta` describes, as the rest of the layer names types.
pub(crate) fn file_type_of(meta: &Metadata) -> FileType {
    FileType::from_raw_mode(meta.mode() as rustix::fs::RawMode)
}

/// Tries `flock(LOCK_EX | LOCK_NB)` on `file`: `Ok(true)` when taken, `Ok(false)` when another
/// open file description holds it (including one in this very process).
///
/// No retry on `EINTR`: a signal can interrupt `flock` only while it waits for the lock, and
/// with `LOCK_NB` it never waits.
pub(crate) fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(err)) => Err(err),
    }
}

/// Ends our flock on `file` explicitly (`LOCK_UN`). Only the sentinel needs this: see
/// `SentinelGuard`'s `Drop` for why merely closing would not do.
pub(crate) fn unlock(file: &File) -> io::Result<()> {
    file.unlock()
}

/// Reads at most `limit` bytes of a regular file from its current offset, in one `read` when
/// the file holds no more than `expected` bytes (the size `fstat` just gave) and a little
/// slack: the buffer is sized for that, and a read that returns less than it was asked for,
/// once `expected` bytes are in, is the end of the file (a regular file's `read` stops short
/// only there). A file that grew since is read on, in steps, up to `limit`.
pub(crate) fn read_sized(file: &File, expected: u64, limit: u64) -> io::Result<Vec<u8>> {
    const SLACK: u64 = 512;
    let first = usize::try_from(expected.saturating_add(SLACK).min(limit)).unwrap_or(0);
    let mut bytes = vec![0; first];
    let mut filled = 0;
    let mut reader = file;
    loop {
        if filled == bytes.len() {
            let room = limit.saturating_sub(filled as u64);
            if room == 0 {
                break;
            }
            let step = usize::try_from(room.min(filled.max(4096) as u64)).unwrap_or(4096);
            bytes.resize(filled + step, 0);
        }
        let asked = bytes.len() - filled;
        match reader.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                if n < asked && filled as u64 >= expected {
                    break;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    bytes.truncate(filled);
    Ok(bytes)
}

/// A reader of `file` from its first byte, for streaming a file too large to read whole.
pub(crate) fn reader_from_start(file: &File) -> io::Result<impl Read + '_> {
    let mut reader = file;
    reader.seek(SeekFrom::Start(0))?;
    Ok(io::BufReader::new(reader))
}

/// Whether `kill(pid, 0)` proves the process gone. Only `ESRCH` does: `EPERM` means a process
/// of another user is there, and any other failure proves nothing (little-loops BUG-526 read
/// `EPERM` as dead and deleted a live lock).
pub(crate) fn pid_is_dead(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    matches!(test_kill_process(pid), Err(Errno::SRCH))
}

/// The most ancestors [`ancestor_chain`] follows.
const MAX_ANCESTORS: usize = 4096;

/// `first` and its ancestors by `parent_of`, nearest first, and whether the chain was read to
/// its end. It ends before pid 1 (and before 0, "no parent"): read to its end; or, cut
/// short, where `parent_of` cannot say and where a pid comes round again (the process table
/// changed under us while we read it); it is at most [`MAX_ANCESTORS`] long.
pub(super) fn ancestor_chain(
    first: u32,
    parent_of: impl Fn(u32) -> Option<u32>,
) -> (Vec<u32>, bool) {
    let mut ancestors = Vec::new();
    let mut next = first;
    while next > 1 && ancestors.len() < MAX_ANCESTORS && !ancestors.contains(&next) {
        ancestors.push(next);
        match parent_of(next) {
            Some(parent) => next = parent,
            None => return (ancestors, false),
        }
    }
    (ancestors, next <= 1)
}

/// Whether pid numbers can name different processes in different pid namespaces here.
pub(crate) const HAS_PID_NAMESPACES: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// What identifies a process beyond its pid number: its pid namespace (the inode of
/// `/proc/<pid>/ns/pid`) and when it started (`/proc/<pid>/stat` field 22, clock ticks after
/// boot). Within one namespace a pid is reused only by a process that started later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ProcessIdentity {
    pub(crate) pid_namespace: u64,
    pub(crate) start_ticks: u64,
}

#[cfg(test)]
pub(super) mod tests {
    use std::fs::OpenOptions;
    use std::path::Path;

    use super::*;
    use crate::sys::Dir;

    /// Creates `path` for reading and writing, as a holder does.
    pub(crate) fn create_new(path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
    }

    /// Opens `path` read-only, as a scan does.
    pub(crate) fn open_lock_file(path: &Path) -> io::Result<File> {
        File::open(path)
    }

    /// Opens `path` read-only, creating it if missing, as the sentinel is opened.
    pub(crate) fn open_sentinel(path: &Path) -> io::Result<File> {
        let dir = Dir::open(path.parent().unwrap_or(Path::new(".")))?;
        dir.open_sentinel(path.file_name().unwrap_or_default())
    }

    #[test]
    fn sized_reads_get_the_whole_file_whatever_the_size_hint_and_stop_at_the_limit()
    -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("record");
        let content: Vec<u8> = (0..9000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content)?;
        for expected in [0, 10, 9000, 20_000] {
            let got = read_sized(&File::open(&path)?, expected, 1 << 20)?;
            assert!(got == content, "hint {expected}: read {} bytes", got.len());
        }
        assert_eq!(read_sized(&File::open(&path)?, 9000, 100)?, content[..100]);
        assert_eq!(read_sized(&File::open(&path)?, 0, 5000)?, content[..5000]);
        std::fs::write(&path, b"")?;
        assert!(read_sized(&File::open(&path)?, 0, 10)?.is_empty());
        Ok(())
    }

    #[test]
    fn a_short_read_ends_the_read_once_the_expected_bytes_are_in() -> io::Result<()> {
        // Each read of a datagram socket returns one datagram: short reads on demand. The
        // receiving end does not block, so a read past the two datagrams fails (EAGAIN).
        let (tx, rx) = std::os::unix::net::UnixDatagram::pair()?;
        rx.set_nonblocking(true)?;
        let rx = File::from(std::os::fd::OwnedFd::from(rx));
        tx.send(b"hel")?;
        tx.send(b"lo")?;
        // Short of the expected 5 bytes after the first read: reads on; then stops.
        assert_eq!(read_sized(&rx, 5, 4096)?, b"hello");
        tx.send(b"hello")?;
        assert_eq!(read_sized(&rx, 2, 4096)?, b"hello");
        Ok(())
    }

    #[test]
    fn a_failing_read_is_an_error() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let err = read_sized(&File::open(dir.path())?, 0, 4096).expect_err("read of a directory");
        assert_eq!(err.raw_os_error(), Some(Errno::ISDIR.raw_os_error()));
        Ok(())
    }

    #[test]
    fn pid_liveness_only_trusts_esrch() {
        assert!(!pid_is_dead(std::process::id()));
        // pid 1 exists and, for a non-root user, answers EPERM: still alive.
        assert!(!pid_is_dead(1));
        // Above the kernel's pid_max (at most 2^22): no such process.
        assert!(pid_is_dead(99_999_999));
        // Not a pid at all: never proof of death.
        assert!(!pid_is_dead(0));
        assert!(!pid_is_dead(u32::MAX));
    }

    #[test]
    fn ancestor_chains_end_at_init_at_a_repeat_or_at_the_bound() {
        let table = |pairs: &'static [(u32, u32)]| {
            move |pid| {
                pairs
                    .iter()
                    .find(|(child, _)| *child == pid)
                    .map(|(_, p)| *p)
            }
        };
        // Up to init, which is left out, as is 0 ("no parent"): read to its end.
        assert_eq!(
            ancestor_chain(9, table(&[(9, 7), (7, 1)])),
            (vec![9, 7], true)
        );
        assert_eq!(
            ancestor_chain(9, table(&[(9, 7), (7, 0)])),
            (vec![9, 7], true)
        );
        assert_eq!(ancestor_chain(1, table(&[])), (Vec::new(), true));
        // Cut short: up to a pid whose parent cannot be read.
        assert_eq!(ancestor_chain(9, table(&[(9, 7)])), (vec![9, 7], false));
        // A table that changed into a cycle while it was read.
        assert_eq!(
            ancestor_chain(9, table(&[(9, 7), (7, 5), (5, 9)])),
            (vec![9, 7, 5], false)
        );
        // An endless chain of fresh pids stops at the bound.
        let (endless, to_its_end) = ancestor_chain(2, |pid| Some(pid + 1));
        assert!(!to_its_end);
        assert_eq!(endless.len(), MAX_ANCESTORS);
        assert_eq!(endless.last(), Some(&(MAX_ANCESTORS as u32 + 1)));
    }

    #[test]
    fn a_second_open_file_description_in_this_process_conflicts() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("x.lock");
        let first = open_sentinel(&path)?;
        assert!(try_lock_exclusive(&first)?);
        let second = open_lock_file(&path)?;
        assert!(!try_lock_exclusive(&second)?);
        drop(first);
        assert!(try_lock_exclusive(&second)?);
        Ok(())
    }
}
