//! Unix implementation of the platform layer.

// This module is the one place allowed to call std's file-locking methods; `clippy.toml`
// forbids them everywhere else, so every lock the crate takes is visibly an flock taken here.
#![allow(clippy::disallowed_methods)]

#[cfg(any(target_os = "linux", target_os = "android"))]
use std::ffi::OsStr;
use std::ffi::OsString;
use std::fs::{self, File, Metadata, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(any(target_os = "linux", target_os = "android"))]
use std::time::{Duration, Instant};

pub(crate) use rustix::fs::FileType;
use rustix::fs::OFlags;
use rustix::io::Errno;
use rustix::process::{Pid, test_kill_process};

// What Linux gets from `/proc`, inotify and `statfs`, other Unixes get from these stand-ins:
// chosen here, once, and kept in their own file (see its header for why).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[path = "unix/other.rs"]
mod other;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use other::parent_of;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) use other::{
    flock_holders, flock_holders_of, own_identity, start_ticks_of, unreliable_flock_filesystem,
};

/// The identity of an inode: what a path must still name for us to act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

#[cfg(test)]
impl FileId {
    /// An inode made up, for tests of rules about inodes.
    pub(crate) const fn made_up(dev: u64, ino: u64) -> Self {
        Self { dev, ino }
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
fn lock_dir_open_flags() -> OFlags {
    OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC
}

/// The mode of the directory sentinel and of tickets: anyone who may use the directory may
/// open them to flock or read them; nobody writes them but their creator.
pub(crate) const SHARED_FILE_MODE: u32 = 0o644;

/// The mode bits that a directory made inside `.running/` copies from `.running/` itself:
/// permissions, the sticky bit (others may not remove or rename what is not theirs, as in
/// `.running/`) and set-group-ID (new files keep the shared group). Set-user-ID means nothing
/// on a directory here and is left out.
const COPIED_DIR_MODE_BITS: u32 = 0o3777;

/// A directory of the lock directory's tree, held open: every call through it acts on an entry
/// of the very directory that was opened, whatever its path names by then. Each is opened with
/// `O_DIRECTORY | O_NOFOLLOW`, so a symlink is never taken for one of ours, and nothing below
/// `.running/` is ever reached again by a path that a co-user could swap in between.
#[derive(Debug)]
pub(crate) struct Dir {
    fd: rustix::fd::OwnedFd,
    path: PathBuf,
}

/// How many names [`Dir::create_unique`] tries.
const UNIQUE_NAME_ATTEMPTS: usize = 100;

/// How every directory of the lock directory's tree is opened.
fn dir_open_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl Dir {
    /// Opens the directory `path`. Its last component must be the directory itself, not a
    /// symlink to one (`ENOTDIR` or `ELOOP` then); the components before it are resolved as
    /// usual: they are the caller's choice, not an entry that others may replace.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let fd = rustix::fs::open(path, dir_open_flags(), rustix::fs::Mode::empty())?;
        Ok(Self {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The path it was opened by (for messages; never used to reach it again).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The path of the entry `name`, for messages.
    pub(crate) fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    /// Opens the sub-directory `name`, never through a symlink.
    pub(crate) fn open_dir(&self, name: impl AsRef<Path>) -> io::Result<Self> {
        let name = name.as_ref();
        let fd = rustix::fs::openat(&self.fd, name, dir_open_flags(), rustix::fs::Mode::empty())?;
        Ok(Self {
            fd,
            path: self.path.join(name),
        })
    }

    /// Opens the sub-directory `name`, making it first if it is missing, with this
    /// directory's mode bits (see [`COPIED_DIR_MODE_BITS`]) whatever the umask: a directory
    /// that the first user's umask made private would lock every other user out of it.
    pub(crate) fn open_or_make_dir(&self, name: impl AsRef<Path>) -> io::Result<Self> {
        let name = name.as_ref();
        let mode = self.stat_self()?.st_mode & COPIED_DIR_MODE_BITS;
        let made = match rustix::fs::mkdirat(&self.fd, name, rustix::fs::Mode::from_raw_mode(mode))
        {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(err) => return Err(err.into()),
        };
        let dir = self.open_dir(name)?;
        // Only a directory we made, and only while it is still ours: one that someone else
        // put at the name meanwhile keeps the mode its owner gave it.
        if made && dir.stat_self()?.st_uid == rustix::process::geteuid().as_raw() {
            rustix::fs::fchmod(&dir.fd, rustix::fs::Mode::from_raw_mode(mode))?;
        }
        Ok(dir)
    }

    fn stat_self(&self) -> io::Result<rustix::fs::Stat> {
        Ok(rustix::fs::fstat(&self.fd)?)
    }

    /// Opens the existing file `name` read-only, for probing its flock and reading it.
    pub(crate) fn open_file(&self, name: impl AsRef<Path>) -> io::Result<File> {
        let flags = OFlags::RDONLY | lock_dir_open_flags();
        let fd = rustix::fs::openat(&self.fd, name.as_ref(), flags, rustix::fs::Mode::empty())?;
        Ok(File::from(fd))
    }

    /// Creates `name` exclusively (`O_CREAT | O_EXCL`, never through a symlink), for reading
    /// and writing, and gives it exactly `mode`, whatever the umask (`fchmod` of the new
    /// descriptor).
    pub(crate) fn create_new(&self, name: impl AsRef<Path>, mode: u32) -> io::Result<File> {
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | lock_dir_open_flags();
        let mode = rustix::fs::Mode::from_raw_mode(mode);
        let fd = rustix::fs::openat(&self.fd, name.as_ref(), flags, mode)?;
        rustix::fs::fchmod(&fd, mode)?;
        Ok(File::from(fd))
    }

    /// Creates a new file named `<prefix><unique><suffix>` as [`create_new`](Self::create_new)
    /// does, and returns its name with it. The unique part is made of our pid, a counter and
    /// the clock; a name taken already (by a process of another pid namespace, say) is
    /// passed over for the next.
    pub(crate) fn create_unique(
        &self,
        prefix: &str,
        suffix: &str,
        mode: u32,
    ) -> io::Result<(OsString, File)> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        for _ in 0..UNIQUE_NAME_ATTEMPTS {
            let count = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.subsec_nanos());
            let name = format!("{prefix}{:x}-{count:x}-{nanos:x}{suffix}", current_pid());
            match self.create_new(&name, mode) {
                Ok(file) => return Ok((name.into(), file)),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(err),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{UNIQUE_NAME_ATTEMPTS} new names for a file were all taken"),
        ))
    }

    /// Opens the sentinel `name` read-only, creating it (mode [`SHARED_FILE_MODE`], whatever
    /// the umask) if it is missing.
    ///
    /// `flock` needs no write access, and nothing is ever written to the sentinel (it is empty
    /// by convention; unlike the original we never truncate it), so a user who may only read
    /// the directory can still list it. Creating it, when missing, needs write access to the
    /// directory. Only the creator sets its mode: an existing sentinel is opened as it is.
    pub(crate) fn open_sentinel(&self, name: impl AsRef<Path>) -> io::Result<File> {
        let name = name.as_ref();
        let flags = OFlags::RDONLY | lock_dir_open_flags();
        let mode = rustix::fs::Mode::from_raw_mode(SHARED_FILE_MODE);
        loop {
            match rustix::fs::openat(&self.fd, name, flags, mode) {
                Err(Errno::NOENT) => {}
                opened => return Ok(File::from(opened?)),
            }
            match rustix::fs::openat(&self.fd, name, flags | OFlags::CREATE | OFlags::EXCL, mode) {
                Ok(fd) => {
                    rustix::fs::fchmod(&fd, mode)?;
                    return Ok(File::from(fd));
                }
                // Made by someone else since our open: open theirs.
                Err(Errno::EXIST) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// What `name` is (`fstatat` without following a symlink); `None` when nothing is there.
    pub(crate) fn stat(&self, name: impl AsRef<Path>) -> io::Result<Option<Stat>> {
        match rustix::fs::statat(
            &self.fd,
            name.as_ref(),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        ) {
            Ok(stat) => Ok(Some(Stat::from(&stat))),
            Err(Errno::NOENT) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// The identity of the inode `name` names right now; `None` when nothing is there.
    pub(crate) fn id_of(&self, name: impl AsRef<Path>) -> io::Result<Option<FileId>> {
        Ok(self.stat(name)?.map(|stat| stat.id))
    }

    /// `unlinkat` of the file `name`.
    pub(crate) fn remove_file(&self, name: impl AsRef<Path>) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(
            &self.fd,
            name.as_ref(),
            rustix::fs::AtFlags::empty(),
        )?)
    }

    /// Renames `from` to `to`, both in this directory, never replacing an existing `to`
    /// (`EEXIST`). One `renameat2(RENAME_NOREPLACE)` where the system and filesystem have it;
    /// elsewhere a link to `to` and an unlink of `from`, and when that unlink fails the new
    /// link is removed again, so a failure never leaves the file with a second name.
    pub(crate) fn rename_noreplace(
        &self,
        from: impl AsRef<Path>,
        to: impl AsRef<Path>,
    ) -> io::Result<()> {
        let (from, to) = (from.as_ref(), to.as_ref());
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
        match rustix::fs::renameat_with(
            &self.fd,
            from,
            &self.fd,
            to,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            // Not supported by this filesystem (or kernel): link and unlink instead.
            Err(Errno::INVAL | Errno::NOSYS | Errno::NOTSUP) => {}
            done => return Ok(done?),
        }
        rustix::fs::linkat(&self.fd, from, &self.fd, to, rustix::fs::AtFlags::empty())?;
        if let Err(err) = self.remove_file(from) {
            let _ = self.remove_file(to);
            return Err(err);
        }
        Ok(())
    }

    /// Lists the directory, with each entry's type; `.` and `..` left out.
    pub(crate) fn entries(&self) -> io::Result<impl Iterator<Item = io::Result<DirEntry>> + '_> {
        let mut listing = rustix::fs::Dir::read_from(&self.fd)?;
        Ok(
            std::iter::from_fn(move || listing.read()).filter_map(move |entry| {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(err) => return Some(Err(err.into())),
                };
                let name = entry.file_name().to_bytes();
                if name == b"." || name == b".." {
                    return None;
                }
                let name = OsString::from_vec(name.to_vec());
                let file_type = match entry.file_type() {
                    // The filesystem does not record types in its directories: ask the inode.
                    FileType::Unknown => self.stat(&name).and_then(|stat| {
                        stat.map(|stat| stat.file_type)
                            .ok_or_else(|| io::ErrorKind::NotFound.into())
                    }),
                    known => Ok(known),
                };
                Some(Ok(DirEntry { name, file_type }))
            }),
        )
    }
}

/// What `fstatat` says of an entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stat {
    pub(crate) id: FileId,
    pub(crate) file_type: FileType,
}

impl From<&rustix::fs::Stat> for Stat {
    // The widths of `st_dev` and `st_ino` differ between targets.
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    fn from(stat: &rustix::fs::Stat) -> Self {
        Self {
            id: FileId {
                dev: stat.st_dev as u64,
                ino: stat.st_ino as u64,
            },
            file_type: FileType::from_raw_mode(stat.st_mode as rustix::fs::RawMode),
        }
    }
}

/// The type of what `path` names, without following a final symlink (`lstat`): only to say
/// what is in the way of a path that could not be opened, never to decide what to act on.
pub(crate) fn lstat_type(path: &Path) -> io::Result<FileType> {
    Ok(file_type_of(&fs::symlink_metadata(path)?))
}

/// Whether an open of a directory failed because the name is not one (`ENOTDIR`), or is a
/// symlink that `O_NOFOLLOW` refused (`ELOOP`).
pub(crate) fn is_not_a_dir(err: &io::Error) -> bool {
    err.raw_os_error().is_some_and(|code| {
        code == Errno::NOTDIR.raw_os_error() || code == Errno::LOOP.raw_os_error()
    })
}

/// The owner of the file `meta` describes.
pub(crate) fn owner_of(meta: &Metadata) -> u32 {
    meta.uid()
}

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
/// `Sentinel`'s `Drop` for why merely closing would not do.
pub(crate) fn unlock(file: &File) -> io::Result<()> {
    file.unlock()
}

/// `fstat`: what an open descriptor refers to.
pub(crate) fn metadata(file: &File) -> io::Result<Metadata> {
    file.metadata()
}

/// Reads at most `limit` bytes from `file`'s current offset.
pub(crate) fn read_up_to(file: &File, limit: u64) -> io::Result<Vec<u8>> {
    read_sized(file, 0, limit)
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

/// The absolute form of `path` against the current directory (no symlinks resolved).
pub(crate) fn absolute(path: &Path) -> io::Result<PathBuf> {
    std::path::absolute(path)
}

/// `mkdir -p` of the lock directory itself, as the caller named it.
pub(crate) fn create_dir_all(path: &Path) -> io::Result<()> {
    fs::create_dir_all(path)
}

/// One entry of a directory listing.
pub(crate) struct DirEntry {
    pub(crate) name: OsString,
    /// From the directory entry where the filesystem records it, else from `fstatat`; never
    /// follows a symlink.
    pub(crate) file_type: io::Result<FileType>,
}

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

/// The pids that hold an flock on `file`'s inode, as `/proc/locks` lists them (Linux); empty
/// when nobody does or this system cannot say. Only for messages: by the time it is read the
/// holder may have changed.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn flock_holders(file: &File) -> Vec<u32> {
    file_id(file).map_or_else(|_| Vec::new(), flock_holders_of)
}

/// [`flock_holders`] of the inode `file`. The pids are those of `/proc`'s namespace: a holder
/// outside it shows as 0, or not at all.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn flock_holders_of(file: FileId) -> Vec<u32> {
    let device = format!(
        "{:02x}:{:02x}:{}",
        rustix::fs::major(file.dev),
        rustix::fs::minor(file.dev),
        file.ino
    );
    // /proc/locks is one system-wide table handed out a page at a time: a lock dropped
    // elsewhere between two pages shifts the rest, and our line can be skipped. Skipping only
    // ever hides lines, so a few reads make naming "another process" for a real holder rare.
    for _ in 0..PROC_LOCKS_READS {
        let Ok(table) = fs::read_to_string("/proc/locks") else {
            break;
        };
        let pids = parse_proc_locks(&table, &device);
        if !pids.is_empty() {
            return pids;
        }
    }
    Vec::new()
}

/// How many times [`flock_holders`] reads `/proc/locks` before it says nobody holds the lock.
#[cfg(any(target_os = "linux", target_os = "android"))]
const PROC_LOCKS_READS: usize = 3;

/// The pids of the granted `FLOCK` entries of `/proc/locks` for `device` (`MAJ:MIN:INODE`, as
/// the kernel prints it: major and minor in hex). Lines with `->` are requests still waiting.
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
pub(crate) fn parse_proc_locks(table: &str, device: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for line in table.lines() {
        let mut fields = line.split_ascii_whitespace().skip(1);
        let (Some(class), Some(_advisory), Some(_mode), Some(pid), Some(dev)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            continue;
        };
        if class != "FLOCK" || !dev.eq_ignore_ascii_case(device) {
            continue;
        }
        if let Ok(pid) = pid.parse()
            && !pids.contains(&pid)
        {
            pids.push(pid);
        }
    }
    pids
}

/// Which names in a watched directory matter to a waiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    /// Lock files (`*.lock`, not dot files): their release or their holder's death.
    LockFiles,
    /// Every name that is not a dot file (the ticket directory).
    All,
}

impl Interest {
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    fn wants(self, name: &[u8]) -> bool {
        !name.starts_with(b".") && (self == Interest::All || name.ends_with(b".lock"))
    }
}

/// Wakes a waiter when a watched directory sees an event that may have freed a scope: a name
/// removed or moved away (a release, a reclaim, a ticket withdrawn), or a file opened for
/// writing closed (a holder or waiter whose descriptor closed, including by death: the kernel
/// closes a dead process's descriptors, and a lock or ticket is always opened for writing).
///
/// On Linux this is inotify, so the wait ends within the kernel's wake-up latency, with no
/// polling interval. Other systems have no such watch here ([`DirWatch::is_precise`] says so)
/// and the caller polls with a backoff instead.
///
/// Scans do not wake anyone: they open files read-only, and their closes are not watched. The
/// sentinel is a dot file and ignored by directory watches; [`DirWatch::watch_closes`] watches
/// it on its own, for a process waiting to take it.
///
/// An instance is kept for this process's next wait when the watch is dropped (see
/// [`SPARE_INOTIFY`]): closing one costs the closer milliseconds.
#[derive(Debug)]
pub(crate) struct DirWatch {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    inotify: rustix::fd::OwnedFd,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    watches: Vec<(i32, PathBuf, Interest)>,
}

/// Inotify instances that this process no longer uses, kept for its next wait.
///
/// Closing an instance that has had watches blocks the closer until the kernel has freed them
/// (it waits out an RCU grace period: 8 to 16 ms measured on Linux 6.18, whatever the load).
/// A waiter drops its watch right after it got its lock, so every waiting acquire would pay
/// that before it returns, holding the lock. Removing the watches is cheap, so a spent
/// instance loses its watches and waits here instead; closing it later costs nothing, since
/// the kernel freed its watches long before.
#[cfg(any(target_os = "linux", target_os = "android"))]
static SPARE_INOTIFY: Spares = Spares::new(4);

/// Spare descriptors, each with the pid of the process that put it there: a child created by
/// `fork` inherits its parent's, which share their event queues with the parent's, so it must
/// not use them.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[derive(Debug)]
struct Spares {
    spare: std::sync::Mutex<Vec<(u32, rustix::fd::OwnedFd)>>,
    max: usize,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
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
    fn take(&self, pid: u32) -> Option<rustix::fd::OwnedFd> {
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

#[cfg(any(target_os = "linux", target_os = "android"))]
impl DirWatch {
    /// A watch with nothing watched yet: a spare instance of this process's, or a new one.
    pub(crate) fn new() -> io::Result<Self> {
        use rustix::fs::inotify::{CreateFlags, init};
        let inotify = match SPARE_INOTIFY.take(current_pid()) {
            Some(inotify) => inotify,
            None => init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?,
        };
        Ok(Self {
            inotify,
            watches: Vec::new(),
        })
    }

    /// Empties the instance of watches and events and gives a descriptor of it to `spares`,
    /// so that it closes late and cheaply instead of now, at the cost of a grace period; ours
    /// then closes without being the last.
    fn retire(&mut self, spares: &Spares) {
        if self.reset().is_ok()
            && let Ok(kept) = self.inotify.try_clone()
        {
            spares.give(current_pid(), kept);
        }
    }

    /// Removes every watch and reads every pending event: the instance is as good as new.
    fn reset(&mut self) -> io::Result<()> {
        use rustix::fs::inotify::remove_watch;
        // A removal fails only for a watch the kernel dropped already (its directory went).
        for (wd, _, _) in std::mem::take(&mut self.watches) {
            let _ = remove_watch(&self.inotify, wd);
        }
        // Each removal queued an `IN_IGNORED`: read them now, with whatever else was pending.
        // (Anything left could at worst wake the next user once for nothing.)
        self.drain(None).map(drop)
    }

    /// Also wakes [`wait`](Self::wait) whenever a descriptor of `file`'s inode is closed,
    /// read-only or not: what a process waiting for someone's flock on it to end needs, since
    /// flock's holders close their descriptor after unlocking (or to unlock). The watch stays
    /// on the inode if the name is removed or replaced; the waiter's own checks of the name
    /// (and its timeout) deal with that.
    pub(crate) fn watch_closes(&mut self, file: &Path) -> io::Result<()> {
        use rustix::fs::inotify::{WatchFlags, add_watch};
        let wd = add_watch(&self.inotify, file, WatchFlags::CLOSE)?;
        self.watches.push((wd, file.to_path_buf(), Interest::All));
        Ok(())
    }

    /// Whether [`wait`](Self::wait) ends on events (else it only sleeps).
    pub(crate) fn is_precise(&self) -> bool {
        true
    }

    /// Watches `dir`; `Ok(true)` when it was not watched before (events before this call were
    /// missed, so the caller must look again before it waits).
    pub(crate) fn watch(&mut self, dir: &Path, interest: Interest) -> io::Result<bool> {
        use rustix::fs::inotify::{WatchFlags, add_watch};
        if self.watches.iter().any(|(_, watched, _)| watched == dir) {
            return Ok(false);
        }
        // No DELETE_SELF: a deleted directory's watch ends with IGNORED, which wakes anyway.
        let flags = WatchFlags::DELETE
            | WatchFlags::MOVED_FROM
            | WatchFlags::CLOSE_WRITE
            | WatchFlags::MOVE_SELF
            | WatchFlags::ONLYDIR
            | WatchFlags::DONT_FOLLOW;
        let wd = add_watch(&self.inotify, dir, flags)?;
        self.watches.push((wd, dir.to_path_buf(), interest));
        Ok(true)
    }

    /// Waits at most `timeout` for an event of interest; `Ok(true)` when one came. Every
    /// pending event is consumed.
    ///
    /// With a `focus` (a watched directory and a name in it), only events about that name (or
    /// about the watched directories themselves) count: a waiter blocked by one file cannot
    /// go on before something happens to that file, so it need not wake for the others. That
    /// keeps a release from waking every waiter at once, only the one it concerns.
    pub(crate) fn wait(
        &mut self,
        timeout: Duration,
        focus: Option<(&Path, &OsStr)>,
    ) -> io::Result<bool> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let deadline = Instant::now() + timeout;
        loop {
            if self.drain(focus)? {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let left =
                Timespec::try_from(left).map_err(|_| io::Error::other("timeout too long"))?;
            let mut fds = [PollFd::new(&self.inotify, PollFlags::IN)];
            match poll(&mut fds, Some(&left)) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Reads every pending event; whether any was of interest.
    fn drain(&mut self, focus: Option<(&Path, &OsStr)>) -> io::Result<bool> {
        use rustix::fs::inotify::{ReadFlags, Reader, remove_watch};
        let mut buf = [std::mem::MaybeUninit::uninit(); 4096];
        let mut reader = Reader::new(&self.inotify, &mut buf);
        let mut woken = false;
        loop {
            let event = match reader.next() {
                Ok(event) => event,
                Err(Errno::AGAIN) => return Ok(woken),
                Err(Errno::INTR) => continue,
                Err(err) => return Err(err.into()),
            };
            let flags = event.events();
            if flags.intersects(ReadFlags::QUEUE_OVERFLOW | ReadFlags::IGNORED) {
                // Events were lost, or a watched directory went away: look again.
                if flags.contains(ReadFlags::IGNORED) {
                    let wd = event.wd();
                    self.watches.retain(|(watched, _, _)| *watched != wd);
                }
                woken = true;
                continue;
            }
            if flags.contains(ReadFlags::MOVE_SELF) {
                // A watched directory was moved: its path now names another directory or none,
                // so its watch goes, and a later `watch` of the path starts afresh. The removal
                // queues an IGNORED, read before this drain ends, which forgets the entry (a
                // removal fails only for a watch that has had its IGNORED already).
                let _ = remove_watch(&self.inotify, event.wd());
            }
            let Some((_, dir, interest)) = self.watches.iter().find(|(wd, _, _)| *wd == event.wd())
            else {
                continue;
            };
            woken |= match (event.file_name(), focus) {
                (Some(name), Some((focus_dir, focus_name))) => {
                    dir == focus_dir
                        && name.to_bytes() == std::os::unix::ffi::OsStrExt::as_bytes(focus_name)
                }
                (Some(name), None) => interest.wants(name.to_bytes()),
                // An event on the watched inode itself: a directory moved, or a close of a
                // file that `watch_closes` watches.
                (None, _) => true,
            };
        }
    }
}

/// Gives the instance back to [`SPARE_INOTIFY`] (see [`DirWatch::retire`]).
#[cfg(any(target_os = "linux", target_os = "android"))]
impl Drop for DirWatch {
    fn drop(&mut self) {
        self.retire(&SPARE_INOTIFY);
    }
}

/// Writes all of `bytes` to `file`.
pub(crate) fn write_all(mut file: &File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)
}

/// This process's id.
pub(crate) fn current_pid() -> u32 {
    std::process::id()
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

/// The pids of this process's ancestors, nearest first, excluding this process and pid 1.
/// Read afresh on every call: a process's parent changes when its parent dies.
pub(crate) fn ancestor_pids() -> Vec<u32> {
    ancestor_chain(std::os::unix::process::parent_id(), parent_of)
}

/// The most ancestors [`ancestor_chain`] follows.
const MAX_ANCESTORS: usize = 4096;

/// `first` and its ancestors by `parent_of`, nearest first. The chain ends before pid 1 (and
/// before 0, "no parent"), where `parent_of` cannot say, and where a pid comes round again (the
/// process table changed under us while we read it); it is at most [`MAX_ANCESTORS`] long.
fn ancestor_chain(first: u32, parent_of: impl Fn(u32) -> Option<u32>) -> Vec<u32> {
    let mut ancestors = Vec::new();
    let mut next = first;
    while next > 1 && ancestors.len() < MAX_ANCESTORS && !ancestors.contains(&next) {
        ancestors.push(next);
        match parent_of(next) {
            Some(parent) => next = parent,
            None => break,
        }
    }
    ancestors
}

/// The parent of `pid`, from `/proc/<pid>/stat`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_proc_stat_ppid(&stat)
}

/// `/proc/<pid>/stat` is `pid (comm) state ppid ...`, where `comm` may itself contain spaces
/// and parentheses, so the fields are counted from the *last* `)`.
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
pub(crate) fn parse_proc_stat_ppid(stat: &str) -> Option<u32> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_ascii_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

/// Names the filesystem under `file` when it is one whose `flock` is emulated or local to one
/// client (NFS, SMB/CIFS, 9p): there a lock taken here may not exclude a process elsewhere, and
/// on NFS a second descriptor in the same process does not even conflict, which would make our
/// own live locks look stale. We refuse such directories rather than silently lock nothing.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn unreliable_flock_filesystem(file: &File) -> io::Result<Option<&'static str>> {
    let stat = rustix::fs::fstatfs(file)?;
    // The magic numbers all fit in 32 bits, whatever the width of f_type on this target.
    #[allow(clippy::unnecessary_cast)]
    Ok(unreliable_flock_magic(stat.f_type as u32))
}

/// The filesystems whose flock we do not trust, by `f_type` (linux/magic.h and the
/// filesystems' own headers). Network and cluster filesystems either emulate flock with their
/// own lock protocol (whose guarantees and failure modes differ from one version or mount
/// option to the next) or keep it local to one client. FUSE passes flock to the userspace
/// daemon when it asks for it (sshfs, GlusterFS's native client, and others), so what a
/// lock excludes depends on that daemon; `statfs` cannot tell which daemon it is.
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
fn unreliable_flock_magic(magic: u32) -> Option<&'static str> {
    match magic {
        0x6969 => Some("NFS"),
        0xFF53_4D42 => Some("CIFS"),
        0xFE53_4D42 => Some("SMB2"),
        0x517B => Some("SMB"),
        0x0102_1997 => Some("9p"),
        0x6573_5546 => Some("FUSE (sshfs, GlusterFS and other userspace filesystems)"),
        0x00C3_6400 => Some("CephFS"),
        0x0BD0_0BD0 => Some("Lustre"),
        0x5346_414F => Some("AFS"),
        0x6B41_4653 => Some("AFS (kAFS)"),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Who a process is, beyond its number (the ancestor carve-out's proof, see protocol/ancestry.rs)
// ---------------------------------------------------------------------------------------------

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

/// This process's identity, or `None` when `/proc` is not provably the proc filesystem of this
/// process's own pid namespace (see [`proc_is_ours`]): then nothing read from it can name our
/// processes. Read once per process (a forked child reads its own). Kept in atomics, not
/// behind a lock, so that a child forked while another thread reads it cannot deadlock.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn own_identity() -> Option<ProcessIdentity> {
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    // The pid whose identity the other two hold (0: none yet); a namespace of 0 (no nsfs inode
    // has it) stands for "cannot be proven". Every thread of a process reads the same values,
    // so racing writers store the same numbers.
    static READ_BY: AtomicU32 = AtomicU32::new(0);
    static NAMESPACE: AtomicU64 = AtomicU64::new(0);
    static STARTED: AtomicU64 = AtomicU64::new(0);
    let pid = current_pid();
    if READ_BY.load(Ordering::Acquire) != pid {
        let identity = read_own_identity(pid);
        NAMESPACE.store(identity.map_or(0, |id| id.pid_namespace), Ordering::Relaxed);
        STARTED.store(identity.map_or(0, |id| id.start_ticks), Ordering::Relaxed);
        READ_BY.store(pid, Ordering::Release);
        return identity;
    }
    match NAMESPACE.load(Ordering::Relaxed) {
        0 => None,
        pid_namespace => Some(ProcessIdentity {
            pid_namespace,
            start_ticks: STARTED.load(Ordering::Relaxed),
        }),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn read_own_identity(pid: u32) -> Option<ProcessIdentity> {
    if !proc_is_ours(pid) {
        return None;
    }
    let pid_namespace = fs::metadata("/proc/self/ns/pid").ok()?.ino();
    Some(ProcessIdentity {
        pid_namespace: (pid_namespace != 0).then_some(pid_namespace)?,
        start_ticks: start_ticks_of(pid)?,
    })
}

/// Whether `/proc` is the proc filesystem of our own pid namespace, `pid` being our pid: it is
/// a procfs, `/proc/self` names `pid`, and `NSpid` in `/proc/self/status` lists `pid` alone.
/// A `/proc` mounted by an ancestor namespace lists our pid in each namespace from its own
/// down (more than one), and in one of any other namespace we have no `/proc/self` at all.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn proc_is_ours(pid: u32) -> bool {
    const PROC_SUPER_MAGIC: u32 = 0x9fa0;
    let Ok(status) = File::open("/proc/self/status") else {
        return false;
    };
    // The magic number fits in 32 bits, whatever the width of f_type on this target.
    #[allow(clippy::unnecessary_cast)]
    let is_proc = rustix::fs::fstatfs(&status).is_ok_and(|fs| fs.f_type as u32 == PROC_SUPER_MAGIC);
    let names_us =
        fs::read_link("/proc/self").is_ok_and(|link| link.as_os_str() == pid.to_string().as_str());
    let mut text = String::new();
    is_proc && names_us && (&status).read_to_string(&mut text).is_ok() && nspid_is_only(&text, pid)
}

/// Whether the `NSpid:` line of a `/proc/<pid>/status` lists `pid` and nothing else. A kernel
/// too old to have the line (before 4.1) proves nothing.
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
pub(crate) fn nspid_is_only(status: &str, pid: u32) -> bool {
    status
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))
        .is_some_and(|pids| {
            let mut pids = pids.split_ascii_whitespace();
            pids.next().and_then(|first| first.parse().ok()) == Some(pid) && pids.next().is_none()
        })
}

/// When process `pid` started, from `/proc/<pid>/stat`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn start_ticks_of(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_proc_stat_start_ticks(&stat)
}

/// Field 22 of `/proc/<pid>/stat` (`starttime`), counted, like the parent's, from the *last*
/// `)`, since `comm` may contain spaces and parentheses.
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
pub(crate) fn parse_proc_stat_start_ticks(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // Fields 3 (state) to 21 come before it.
    after_comm.split_ascii_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::fs::{OpenOptions, create_dir, remove_file};

    use super::*;

    /// Creates `path` for reading and writing, as a holder does.
    fn create_new(path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
    }

    /// Opens `path` read-only, as a scan does.
    fn open_lock_file(path: &Path) -> io::Result<File> {
        File::open(path)
    }

    /// Opens `path` read-only, creating it if missing, as the sentinel is opened.
    fn open_sentinel(path: &Path) -> io::Result<File> {
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
        assert_eq!(read_up_to(&File::open(&path)?, 5000)?, content[..5000]);
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
    fn proc_stat_start_ticks_is_field_22_whatever_the_command_name() {
        let tail = "R 24518 24518 9856 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 139908 3133440 387";
        for comm in ["cat", "a) b) (c", "x y z", ") 1 2 3 4"] {
            let stat = format!("24522 ({comm}) {tail}");
            assert_eq!(parse_proc_stat_start_ticks(&stat), Some(139_908), "{stat}");
        }
        assert_eq!(parse_proc_stat_start_ticks("garbage"), None);
        assert_eq!(parse_proc_stat_start_ticks("1 (init) S 0 1 1"), None);
        assert_eq!(
            parse_proc_stat_start_ticks(&format!("1 (x) {}", tail.replace("139908", "-5"))),
            None
        );
    }

    #[test]
    fn nspid_proves_our_namespace_only_when_it_lists_our_pid_alone() {
        let status = |nspid: &str| format!("Name:\tcat\nPid:\t7\n{nspid}\nVmPeak:\t1 kB\n");
        assert!(nspid_is_only(&status("NSpid:\t7"), 7));
        // A /proc of an ancestor namespace lists our pid there first, then ours.
        assert!(!nspid_is_only(&status("NSpid:\t4321\t7"), 7));
        assert!(!nspid_is_only(&status("NSpid:\t8"), 7));
        assert!(!nspid_is_only(&status("NSpid:"), 7));
        // A kernel without the line (before 4.1) proves nothing.
        assert!(!nspid_is_only(&status("NStgid:\t7"), 7));
    }

    /// On this system (the tests run in a namespace whose own /proc is mounted), our identity
    /// is what /proc says of us, and our parent's start time is before ours.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn our_identity_is_our_namespace_and_start_time() -> io::Result<()> {
        let identity = own_identity().ok_or_else(|| io::Error::other("no identity"))?;
        let link = fs::read_link("/proc/self/ns/pid")?;
        assert_eq!(
            link.to_string_lossy(),
            format!("pid:[{}]", identity.pid_namespace)
        );
        let pid = current_pid();
        assert_eq!(start_ticks_of(pid), Some(identity.start_ticks));
        let parent = std::os::unix::process::parent_id();
        assert!(start_ticks_of(parent).is_some_and(|ticks| ticks <= identity.start_ticks));
        assert_eq!(start_ticks_of(99_999_999), None);
        Ok(())
    }

    #[test]
    fn proc_stat_ppid_survives_hostile_command_names() {
        assert_eq!(parse_proc_stat_ppid("42 (bash) S 7 42 42 0"), Some(7));
        assert_eq!(parse_proc_stat_ppid("42 (a) b) (c) R 9 1 1"), Some(9));
        assert_eq!(parse_proc_stat_ppid("42 (x y z) S 12345 0"), Some(12345));
        assert_eq!(parse_proc_stat_ppid("garbage"), None);
        assert_eq!(parse_proc_stat_ppid("1 (init) S"), None);
    }

    #[test]
    fn our_parent_is_our_first_ancestor() {
        let ancestors = ancestor_pids();
        let parent = std::os::unix::process::parent_id();
        if parent > 1 {
            assert_eq!(ancestors.first(), Some(&parent));
        }
        assert!(!ancestors.contains(&current_pid()));
        assert!(!ancestors.contains(&1));
    }

    #[test]
    fn pid_liveness_only_trusts_esrch() {
        assert!(!pid_is_dead(current_pid()));
        // pid 1 exists and, for a non-root user, answers EPERM: still alive.
        assert!(!pid_is_dead(1));
        // Above the kernel's pid_max (at most 2^22): no such process.
        assert!(pid_is_dead(99_999_999));
        // Not a pid at all: never proof of death.
        assert!(!pid_is_dead(0));
        assert!(!pid_is_dead(u32::MAX));
    }

    #[test]
    fn network_filesystems_are_recognised_and_local_ones_are_not() -> io::Result<()> {
        // (f_type, a word the name must contain), from the kernel's and the filesystems'
        // headers.
        let unreliable = [
            (0x6969, "NFS"),
            (0xFF53_4D42, "CIFS"),
            (0xFE53_4D42, "SMB2"),
            (0x517B, "SMB"),
            (0x0102_1997, "9p"),
            (0x6573_5546, "FUSE"),
            (0x6573_5546, "GlusterFS"),
            (0x6573_5546, "sshfs"),
            (0x00C3_6400, "CephFS"),
            (0x0BD0_0BD0, "Lustre"),
            (0x5346_414F, "AFS"),
            (0x6B41_4653, "AFS"),
        ];
        for (magic, name) in unreliable {
            let found = unreliable_flock_magic(magic);
            assert!(
                found.is_some_and(|found| found.contains(name)),
                "{magic:#x} should be {name}, is {found:?}"
            );
        }
        // ext4, tmpfs, btrfs, xfs, overlayfs
        for local in [0xEF53, 0x0102_1994, 0x9123_683E, 0x5846_5342, 0x794C_7630] {
            assert_eq!(unreliable_flock_magic(local), None, "{local:#x}");
        }
        let dir = tempfile::tempdir()?;
        let file = open_sentinel(&dir.path().join("s"))?;
        assert_eq!(unreliable_flock_filesystem(&file)?, None);
        Ok(())
    }

    #[test]
    fn proc_locks_names_granted_flock_holders_only() {
        let table = "1: FLOCK  ADVISORY  WRITE 17380 fe:00:5480452 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 99 fe:00:5480452 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 55 fe:00:5480452 0 EOF\n\
                     3: FLOCK  ADVISORY  READ 23 fe:00:10133507 0 EOF\n\
                     4: OFDLCK ADVISORY  READ -1 fe:00:5480452 0 EOF\n";
        assert_eq!(parse_proc_locks(table, "fe:00:5480452"), vec![17380]);
        assert_eq!(parse_proc_locks(table, "fe:00:10133507"), vec![23]);
        assert_eq!(parse_proc_locks(table, "08:01:1"), Vec::<u32>::new());
        assert_eq!(
            parse_proc_locks("garbage\n\n", "fe:00:1"),
            Vec::<u32>::new()
        );
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn this_process_is_named_as_the_holder_of_its_own_flock() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("x.lock");
        let held = open_sentinel(&path)?;
        assert!(try_lock_exclusive(&held)?);
        let other = open_lock_file(&path)?;
        // /proc/locks is system-wide and read a page at a time; locks taken or dropped
        // elsewhere between two pages can shift our line past the read and drop it. Skipping
        // only ever hides lines, so one sighting in a few reads proves we are listed.
        let seen = (0..20).any(|_| flock_holders(&other) == vec![current_pid()]);
        assert!(seen, "this process was never listed as the holder");
        // An explicit unlock, so the answer cannot depend on some thread forking meanwhile.
        unlock(&held)?;
        assert_eq!(flock_holders(&other), Vec::<u32>::new());
        drop(held);
        Ok(())
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_dir_watch_wakes_on_release_and_on_close_but_not_on_reads() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let lock = dir.path().join("a.lock");
        let holder = create_new(&lock)?;
        let mut watch = DirWatch::new()?;
        assert!(watch.watch(dir.path(), Interest::LockFiles)?);
        assert!(!watch.watch(dir.path(), Interest::LockFiles)?);

        // Reading and probing wake nobody; nor does the sentinel, a dot file.
        drop(open_lock_file(&lock)?);
        drop(open_sentinel(&dir.path().join(".acquire.lock"))?);
        std::fs::write(dir.path().join("a.log"), b"x")?;
        assert!(!watch.wait(Duration::ZERO, None)?);

        // The holder's descriptor closing (a death looks the same) wakes.
        drop(holder);
        assert!(watch.wait(Duration::from_secs(30), None)?);
        // Removing the file wakes.
        remove_file(&lock)?;
        assert!(watch.wait(Duration::from_secs(30), None)?);
        assert!(!watch.wait(Duration::ZERO, None)?);

        // Focused on one file, events about others do not wake.
        let (a, b) = (dir.path().join("a.lock"), dir.path().join("b.lock"));
        let (holder_a, holder_b) = (create_new(&a)?, create_new(&b)?);
        let focus = Some((dir.path(), std::ffi::OsStr::new("a.lock")));
        drop(holder_b);
        remove_file(&b)?;
        assert!(!watch.wait(Duration::ZERO, focus)?);
        drop(holder_a);
        assert!(watch.wait(Duration::from_secs(30), focus)?);
        Ok(())
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_close_watch_wakes_on_every_close_of_the_file_and_nothing_else() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let sentinel = dir.path().join(".acquire.lock");
        let holder = open_sentinel(&sentinel)?;
        let mut watch = DirWatch::new()?;
        watch.watch_closes(&sentinel)?;
        // Other files, and locking and unlocking without a close, wake nobody.
        drop(create_new(&dir.path().join("a.lock"))?);
        assert!(try_lock_exclusive(&holder)?);
        unlock(&holder)?;
        assert!(!watch.wait(Duration::ZERO, None)?);
        // A read-only descriptor closing (how ours and most holders let go) wakes.
        drop(holder);
        assert!(watch.wait(Duration::from_secs(30), None)?);
        assert!(!watch.wait(Duration::ZERO, None)?);
        // So does one opened for writing (the original's).
        drop(OpenOptions::new().write(true).open(&sentinel)?);
        assert!(watch.wait(Duration::from_secs(30), None)?);
        Ok(())
    }

    /// The watches that `/proc/self/fdinfo` lists for the inotify descriptor `fd`.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn inotify_watches(fd: &rustix::fd::OwnedFd) -> io::Result<usize> {
        use std::os::fd::AsRawFd as _;
        let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
        Ok(info
            .lines()
            .filter(|l| l.starts_with("inotify wd:"))
            .count())
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
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

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_retired_watch_leaves_a_spare_without_watches_for_this_process() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let spares = Spares::new(4);
        let mut watch = DirWatch::new()?;
        watch.watch(dir.path(), Interest::All)?;
        watch.retire(&spares);
        let spare = spares
            .take(current_pid())
            .ok_or("no spare was kept")
            .map_err(io::Error::other)?;
        assert_eq!(inotify_watches(&spare)?, 0);
        Ok(())
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn spare_instances_go_only_to_the_process_that_kept_them_and_only_so_many() -> io::Result<()> {
        use rustix::fs::inotify::{CreateFlags, init};
        let spares = Spares::new(2);
        let me = current_pid();
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

    #[test]
    fn an_entry_id_is_the_inode_the_name_names_and_only_a_missing_name_is_none() -> io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = Dir::open(tmp.path())?;
        let file = dir.create_new("a.lock", 0o644)?;
        assert_eq!(dir.id_of("a.lock")?, Some(file_id(&file)?));
        assert_eq!(dir.id_of("missing")?, None);
        // A file used as a directory is ENOTDIR, not "nothing there".
        let err = dir
            .id_of("a.lock/x")
            .expect_err("a path through a file has no inode");
        assert_eq!(err.raw_os_error(), Some(Errno::NOTDIR.raw_os_error()));
        Ok(())
    }

    #[test]
    fn a_dir_never_opens_or_follows_a_symlink() -> io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let real = tmp.path().join("real");
        fs::create_dir(&real)?;
        fs::write(real.join("x.lock"), "x")?;
        std::os::unix::fs::symlink(&real, tmp.path().join("link"))?;
        std::os::unix::fs::symlink(real.join("x.lock"), tmp.path().join("file-link"))?;
        let err = Dir::open(&tmp.path().join("link")).expect_err("a symlink is no dir of ours");
        assert!(is_not_a_dir(&err), "{err}");
        let dir = Dir::open(tmp.path())?;
        let err = dir
            .open_dir("link")
            .expect_err("a symlink is no dir of ours");
        assert!(is_not_a_dir(&err), "{err}");
        let err = dir
            .open_or_make_dir("link")
            .expect_err("a symlink is no dir of ours");
        assert!(is_not_a_dir(&err), "{err}");
        dir.open_file("file-link")
            .expect_err("a symlinked file is never opened");
        let stat = dir
            .stat("link")?
            .ok_or_else(|| io::Error::other("no link"))?;
        assert_eq!(stat.file_type, FileType::Symlink);
        // Removing the link removes the link, never what it points to.
        dir.remove_file("file-link")?;
        assert!(real.join("x.lock").exists());
        Ok(())
    }

    #[test]
    fn files_and_directories_made_here_get_their_mode_whatever_the_umask() -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir()?;
        let shared = tmp.path().join("shared");
        fs::create_dir(&shared)?;
        // Sticky and writable by all: the test's umask (022 or 077) would strip that.
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777))?;
        let dir = Dir::open(&shared)?;
        let mode = |path: &Path| -> io::Result<u32> {
            Ok(fs::symlink_metadata(path)?.permissions().mode() & 0o7777)
        };
        drop(dir.open_or_make_dir("nested")?);
        assert_eq!(mode(&shared.join("nested"))?, 0o1777);
        drop(dir.create_new("file", LOCK_FILE_MODE)?);
        assert_eq!(mode(&shared.join("file"))?, 0o444);
        drop(dir.open_sentinel(".acquire.lock")?);
        assert_eq!(mode(&shared.join(".acquire.lock"))?, SHARED_FILE_MODE);
        let (name, _file) = dir.create_unique(".p-", ".tmp", LOCK_FILE_MODE)?;
        assert_eq!(mode(&shared.join(name))?, 0o444);
        // An existing directory or sentinel keeps the mode its owner gave it.
        fs::set_permissions(shared.join("nested"), fs::Permissions::from_mode(0o700))?;
        drop(dir.open_or_make_dir("nested")?);
        assert_eq!(mode(&shared.join("nested"))?, 0o700);
        fs::set_permissions(
            shared.join(".acquire.lock"),
            fs::Permissions::from_mode(0o600),
        )?;
        drop(dir.open_sentinel(".acquire.lock")?);
        assert_eq!(mode(&shared.join(".acquire.lock"))?, 0o600);
        Ok(())
    }

    #[test]
    fn a_rename_without_replace_never_replaces_and_keeps_one_name() -> io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = Dir::open(tmp.path())?;
        fs::write(tmp.path().join("a"), "a")?;
        fs::write(tmp.path().join("b"), "b")?;
        let err = dir.rename_noreplace("a", "b").expect_err("b exists");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(tmp.path().join("b"))?, b"b");
        dir.rename_noreplace("a", "c")?;
        assert_eq!(fs::read(tmp.path().join("c"))?, b"a");
        assert!(!tmp.path().join("a").exists());
        assert_eq!(fs::symlink_metadata(tmp.path().join("c"))?.nlink(), 1);
        Ok(())
    }

    #[test]
    fn a_dir_lists_names_with_their_types_without_dot_entries() -> io::Result<()> {
        let tmp = tempfile::tempdir()?;
        fs::write(tmp.path().join("f"), "")?;
        fs::create_dir(tmp.path().join("d"))?;
        std::os::unix::fs::symlink("f", tmp.path().join("l"))?;
        let dir = Dir::open(tmp.path())?;
        let mut listed = dir
            .entries()?
            .map(|entry| entry.and_then(|e| Ok((e.name, e.file_type?))))
            .collect::<io::Result<Vec<_>>>()?;
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            listed,
            [
                ("d".into(), FileType::Directory),
                ("f".into(), FileType::RegularFile),
                ("l".into(), FileType::Symlink),
            ]
        );
        Ok(())
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
        // Up to init, which is left out, as is 0 ("no parent").
        assert_eq!(ancestor_chain(9, table(&[(9, 7), (7, 1)])), vec![9, 7]);
        assert_eq!(ancestor_chain(9, table(&[(9, 7), (7, 0)])), vec![9, 7]);
        assert_eq!(ancestor_chain(1, table(&[])), Vec::<u32>::new());
        // Up to a pid whose parent cannot be read.
        assert_eq!(ancestor_chain(9, table(&[(9, 7)])), vec![9, 7]);
        // A table that changed into a cycle while it was read.
        assert_eq!(
            ancestor_chain(9, table(&[(9, 7), (7, 5), (5, 9)])),
            vec![9, 7, 5]
        );
        // An endless chain of fresh pids stops at the bound.
        let endless = ancestor_chain(2, |pid| Some(pid + 1));
        assert_eq!(endless.len(), MAX_ANCESTORS);
        assert_eq!(endless.last(), Some(&(MAX_ANCESTORS as u32 + 1)));
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn the_parent_read_from_proc_is_the_one_getppid_reports() {
        assert_eq!(
            parent_of(current_pid()),
            Some(std::os::unix::process::parent_id())
        );
    }

    #[test]
    fn waiters_ignore_dot_files_and_lock_file_waiters_ignore_other_names() {
        for (interest, name, wanted) in [
            (Interest::LockFiles, "a.lock", true),
            (Interest::LockFiles, "a.log", false),
            (Interest::LockFiles, ".acquire.lock", false),
            (Interest::All, "a.lock", true),
            (Interest::All, "1700000000-42", true),
            (Interest::All, ".hidden", false),
            (Interest::All, ".acquire.lock", false),
        ] {
            assert_eq!(
                interest.wants(name.as_bytes()),
                wanted,
                "{interest:?} {name}"
            );
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_dir_watch_without_events_waits_out_its_timeout() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut watch = DirWatch::new()?;
        assert!(watch.watch(dir.path(), Interest::All)?);
        let timeout = Duration::from_millis(200);
        let started = Instant::now();
        assert!(!watch.wait(timeout, None)?);
        // A lower bound only: the wait may end later on a busy machine, never earlier.
        assert!(
            started.elapsed() >= timeout,
            "woke after {:?}",
            started.elapsed()
        );
        Ok(())
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_watched_directory_that_is_removed_and_made_again_is_watched_afresh() -> io::Result<()> {
        let parent = tempfile::tempdir()?;
        let dir = parent.path().join(".running");
        create_dir(&dir)?;
        let mut watch = DirWatch::new()?;
        assert!(watch.watch(&dir, Interest::LockFiles)?);
        // rmdir queues the directory's own deletion and the end of its watch in one go.
        fs::remove_dir(&dir)?;
        assert!(watch.wait(Duration::from_secs(30), None)?);
        create_dir(&dir)?;
        assert!(
            watch.watch(&dir, Interest::LockFiles)?,
            "the watch of the removed directory was not forgotten"
        );
        drop(create_new(&dir.join("a.lock"))?);
        assert!(watch.wait(Duration::from_secs(30), None)?);
        Ok(())
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_dir_watch_wakes_when_a_name_or_the_directory_itself_is_moved() -> io::Result<()> {
        let parent = tempfile::tempdir()?;
        let dir = parent.path().join(".running");
        create_dir(&dir)?;
        drop(create_new(&dir.join("a.lock"))?);
        let mut watch = DirWatch::new()?;
        assert!(watch.watch(&dir, Interest::LockFiles)?);
        fs::rename(dir.join("a.lock"), parent.path().join("a.lock"))?;
        assert!(watch.wait(Duration::from_secs(30), None)?);
        fs::rename(&dir, parent.path().join("moved"))?;
        assert!(watch.wait(Duration::from_secs(30), None)?);
        Ok(())
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_watched_directory_that_is_moved_away_and_made_again_is_watched_afresh() -> io::Result<()> {
        let parent = tempfile::tempdir()?;
        let dir = parent.path().join(".running");
        create_dir(&dir)?;
        let mut watch = DirWatch::new()?;
        assert!(watch.watch(&dir, Interest::LockFiles)?);
        // A rename ends no watch by itself (no IGNORED): the old one follows the directory.
        fs::rename(&dir, parent.path().join("moved"))?;
        assert!(watch.wait(Duration::from_secs(30), None)?);
        create_dir(&dir)?;
        assert!(
            watch.watch(&dir, Interest::LockFiles)?,
            "the watch of the moved directory was not forgotten"
        );
        // Only the new directory is watched: the moved one's watch is gone from the kernel.
        assert_eq!(inotify_watches(&watch.inotify)?, 1);
        // A timeout this long ends the wait only if nothing wakes it: `true` is the event.
        drop(create_new(&dir.join("a.lock"))?);
        assert!(
            watch.wait(Duration::from_secs(30), None)?,
            "a release in the new directory did not wake the wait"
        );
        Ok(())
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_dir_watch_refuses_a_file_and_a_symlink_to_a_directory() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("a.lock");
        drop(create_new(&file)?);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link)?;
        let mut watch = DirWatch::new()?;
        for path in [&file, &link] {
            let err = watch
                .watch(path, Interest::LockFiles)
                .expect_err("only a directory can be watched");
            assert_eq!(
                err.raw_os_error(),
                Some(Errno::NOTDIR.raw_os_error()),
                "{path:?}"
            );
        }
        Ok(())
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
