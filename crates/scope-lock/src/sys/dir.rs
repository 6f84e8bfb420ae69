//! Directory descriptors: every name below `.running/` is used relative to a directory held
//! open (`openat`, `unlinkat`, `renameat`), never again by a path a co-user could swap.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::OFlags;
use rustix::io::Errno;

use super::unix::{FileId, FileType, SHARED_FILE_MODE, file_type_of, lock_dir_open_flags};

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
        let mode = mode_of(self.stat_self()?.st_mode) & COPIED_DIR_MODE_BITS;
        let made = match rustix::fs::mkdirat(&self.fd, name, mode_bits(mode)) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(err) => return Err(err.into()),
        };
        let dir = self.open_dir(name)?;
        // Only a directory we made, and only while it is still ours: one that someone else
        // put at the name meanwhile keeps the mode its owner gave it.
        if made && dir.stat_self()?.st_uid == rustix::process::geteuid().as_raw() {
            rustix::fs::fchmod(&dir.fd, mode_bits(mode))?;
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
        let mode = mode_bits(mode);
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
            let name = format!(
                "{prefix}{:x}-{count:x}-{nanos:x}{suffix}",
                std::process::id()
            );
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
        let mode = mode_bits(SHARED_FILE_MODE);
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

    /// Opens `name` for reading and writing, never through a symlink, creating it with exactly
    /// `mode` (whatever the umask) if it is missing. An existing file is opened without
    /// `O_CREAT`: in a sticky, world-writable directory the kernel may refuse `O_CREAT` on
    /// another user's file (`fs.protected_regular`), though the file itself lets us write.
    pub(crate) fn open_or_create_rw(&self, name: impl AsRef<Path>, mode: u32) -> io::Result<File> {
        let name = name.as_ref();
        let flags = OFlags::RDWR | lock_dir_open_flags();
        // A file that keeps vanishing between the two opens is someone's interference: a
        // few rounds, then the last error.
        for _ in 0..UNIQUE_NAME_ATTEMPTS {
            match rustix::fs::openat(&self.fd, name, flags, rustix::fs::Mode::empty()) {
                Err(Errno::NOENT) => {}
                opened => return Ok(File::from(opened?)),
            }
            match self.create_new(name, mode) {
                // Made by someone else since our open: open theirs.
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                made => return made,
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the file kept being removed between being found and being opened",
        ))
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

/// `bits` as the system's `mode_t`, which is 32 bits wide on Linux and 16 on macOS: the
/// permission, sticky and set-id bits fit in either.
#[allow(clippy::unnecessary_cast)]
fn mode_bits(bits: u32) -> rustix::fs::Mode {
    rustix::fs::Mode::from_raw_mode(bits as rustix::fs::RawMode)
}

/// A `st_mode` of this system's width, widened to 32 bits.
#[allow(clippy::unnecessary_cast)]
fn mode_of(st_mode: rustix::fs::RawMode) -> u32 {
    st_mode as u32
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

/// One entry of a directory listing.
pub(crate) struct DirEntry {
    pub(crate) name: OsString,
    /// From the directory entry where the filesystem records it, else from `fstatat`; never
    /// follows a symlink.
    pub(crate) file_type: io::Result<FileType>,
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::super::unix::{LOCK_FILE_MODE, file_id};
    use super::*;

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
}
