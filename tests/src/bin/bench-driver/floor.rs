//! The floor: the protocol's necessary system calls done bare, with nothing else around them.
//!
//! Same directory, same sentinel, same file format and the same steps as the library (take
//! the sentinel; scan every `*.lock`, probing its flock and parsing its record; publish a
//! flocked file under a dot name and rename it into place without overwriting; release by
//! unlinking only our inode under the sentinel), but without what the library adds around
//! them: no scope normalisation (the scope is given already absolute), no directory creation,
//! no checks that the sentinel is a regular file on a local filesystem and still the file its
//! path names, no ancestor lookup, no sorting, no error context. Records are parsed with the
//! library's own parser, since parsing is work the protocol needs too.
//!
//! The ladder ([`Rung`]) adds back, one at a time and done as bare, each guarantee the floor
//! leaves out, so that P1 shows which part of ours/floor is which guarantee.
//!
//! Only the happy path is handled; anything unexpected is an error, which ends the benchmark.

#![allow(
    clippy::disallowed_methods,
    reason = "the floor takes its flocks bare, not through the library it is compared with"
)]

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, Mode, OFlags, RenameFlags, openat, renameat_with, statat};
use scope_lock::LockRecord;

/// The floor plus each guarantee it leaves out, in the order the ladder adds them: each rung
/// does everything the rungs below it do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rung {
    /// The protocol's own steps, bare.
    Floor,
    /// + the scope normalised as the original does (A3): `getcwd`, then an `lstat` of each
    ///   component up to the first one that does not exist.
    Normalise,
    /// + the sentinel's checks (step 1, "Sharing a directory"): `.running/` opened as a
    ///   directory without following a symlink and held open, the sentinel opened in it
    ///   without following one, `fstat` (a regular file), `fstatfs` (a filesystem whose
    ///   flock excludes), and once flocked, `fstatat` of its name (still that inode); at
    ///   acquire and at release. The new lock's mode set with `fchmod` (0444 whatever the
    ///   umask).
    Sentinel,
    /// + the queue looked up (B12): `.queue/` opened from `.running/`, and listed if it exists.
    Queue,
    /// + the fencing token advanced: the counter opened, `fstat` (a regular file with one
    ///   link), read, rewritten with one `pwrite`, closed.
    Token,
}

/// The rungs above the floor, lowest first.
pub(crate) const LADDER: [Rung; 4] = [Rung::Normalise, Rung::Sentinel, Rung::Queue, Rung::Token];

impl Rung {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Rung::Floor => "floor",
            Rung::Normalise => "normalise",
            Rung::Sentinel => "sentinel",
            Rung::Queue => "queue",
            Rung::Token => "token",
        }
    }

    /// `floor`, or `floor+RUNG`: the floor with every guarantee up to RUNG.
    pub(crate) fn parse(side: &str) -> Option<Self> {
        if side == "floor" {
            return Some(Rung::Floor);
        }
        let rung = side.strip_prefix("floor+")?;
        LADDER.into_iter().find(|it| it.name() == rung)
    }
}

/// A lock held the floor's way.
pub(crate) struct FloorGuard {
    file: File,
    ino: u64,
    path: PathBuf,
}

/// Acquires `name` for `scope` (absolute, normalised) in `running_dir` with every guarantee
/// of the ladder up to `rung`, or says who blocks.
pub(crate) fn acquire_at(
    rung: Rung,
    running_dir: &Path,
    name: &str,
    scope: &[String],
) -> io::Result<Result<FloorGuard, PathBuf>> {
    if rung >= Rung::Normalise {
        normalise(scope)?;
    }
    let sentinel = Sentinel::lock(running_dir, rung >= Rung::Sentinel)?;
    let index = ScopeIndex::new(scope);
    let mut conflict = None;
    scan(running_dir, |path, held, record| {
        if conflict.is_none() && held && index.overlaps(record.scope()) {
            conflict = Some(path.to_path_buf());
        }
    })?;
    if rung >= Rung::Queue {
        sentinel.look_up_queue()?;
    }
    if let Some(path) = conflict {
        drop(sentinel);
        return Ok(Err(path));
    }
    if rung >= Rung::Token {
        advance_token(running_dir)?;
    }
    let guard = publish(running_dir, name, scope, rung >= Rung::Sentinel)?;
    drop(sentinel);
    Ok(Ok(guard))
}

/// Writes our record into a dot file, flocks it and renames it to `<name>.lock` without
/// replacing anything (B2); with `set_mode`, its mode set to 0444 whatever the umask.
pub(crate) fn publish(
    running_dir: &Path,
    name: &str,
    scope: &[String],
    set_mode: bool,
) -> io::Result<FloorGuard> {
    let record = LockRecord::new(
        name,
        scope.to_vec(),
        std::process::id(),
        "2026-11-29T12:00:00.000000+00:00",
    )
    .with_flock_liveness();
    let staged = running_dir.join(format!(".floor-publish-{}.tmp", std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&staged)?;
    if set_mode {
        file.set_permissions(fs::Permissions::from_mode(0o444))?;
    }
    file.write_all(record.to_json().as_bytes())?;
    file.try_lock().map_err(io::Error::from)?;
    let path = running_dir.join(format!("{name}.lock"));
    renameat_with(CWD, &staged, CWD, &path, RenameFlags::NOREPLACE)?;
    let ino = file.metadata()?.ino();
    Ok(FloorGuard { file, ino, path })
}

/// Releases: under the sentinel (checked from [`Rung::Sentinel`] up), unlink if the name is
/// still our inode, then close.
pub(crate) fn release_at(rung: Rung, running_dir: &Path, guard: FloorGuard) -> io::Result<()> {
    let sentinel = Sentinel::lock(running_dir, rung >= Rung::Sentinel)?;
    guard.unlink_and_close()?;
    drop(sentinel);
    Ok(())
}

impl FloorGuard {
    /// A release's work under the sentinel: unlink the name if it is still our inode (B4),
    /// then close, which ends the flock.
    pub(crate) fn unlink_and_close(self) -> io::Result<()> {
        if fs::symlink_metadata(&self.path)?.ino() == self.ino {
            fs::remove_file(&self.path)?;
        }
        drop(self.file);
        Ok(())
    }
}

/// `list_locks`, bare: the live records under the sentinel.
pub(crate) fn list(running_dir: &Path) -> io::Result<Vec<LockRecord>> {
    let sentinel = Sentinel::lock(running_dir, false)?;
    let mut live = Vec::new();
    scan(running_dir, |_, held, record| {
        if held {
            live.push(record);
        }
    })?;
    drop(sentinel);
    Ok(live)
}

/// The directory sentinel, flocked; from [`Rung::Sentinel`] up, checked, with `.running/`
/// held open. Dropping it closes both, which ends the flock.
pub(crate) struct Sentinel {
    _file: File,
    dir: Option<File>,
    running_dir: PathBuf,
}

impl Sentinel {
    pub(crate) fn lock(running_dir: &Path, checked: bool) -> io::Result<Self> {
        if !checked {
            // The bare sentinel is the one the pre-fix port's wait takes.
            let file = regression::pre_fix_wait::blocking_sentinel(running_dir)?;
            return Ok(Self {
                _file: file,
                dir: None,
                running_dir: running_dir.to_path_buf(),
            });
        }
        let no_follow = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let dir = File::from(openat(
            CWD,
            running_dir,
            no_follow | OFlags::DIRECTORY,
            Mode::empty(),
        )?);
        let file = File::from(openat(
            &dir,
            ".acquire.lock",
            no_follow | OFlags::CREATE | OFlags::NONBLOCK,
            Mode::from_raw_mode(0o644),
        )?);
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::other("the sentinel is not a regular file"));
        }
        // NFS's magic number; the library checks a list, which costs no system call more.
        #[allow(clippy::unnecessary_cast, reason = "f_type's width differs by target")]
        if rustix::fs::fstatfs(&file)?.f_type as u32 == 0x6969 {
            return Err(io::Error::other("the sentinel is on NFS"));
        }
        file.lock()?;
        let named = statat(&dir, ".acquire.lock", AtFlags::SYMLINK_NOFOLLOW)?;
        if (named.st_dev, named.st_ino) != (meta.dev(), meta.ino()) {
            return Err(io::Error::other("the sentinel was replaced"));
        }
        Ok(Self {
            _file: file,
            dir: Some(dir),
            running_dir: running_dir.to_path_buf(),
        })
    }

    /// Opens `.queue/` (from `.running/`'s descriptor when it is held) and lists it if it
    /// exists: the tickets' numbers and paths, lowest first.
    pub(crate) fn look_up_queue(&self) -> io::Result<Vec<(u64, PathBuf)>> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::DIRECTORY;
        let queue_dir = self.running_dir.join(".queue");
        let opened = match &self.dir {
            Some(dir) => openat(dir, ".queue", flags, Mode::empty()),
            None => openat(CWD, &queue_dir, flags, Mode::empty()),
        };
        let queue = match opened {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(Vec::new()),
            Err(err) => return Err(err.into()),
        };
        let mut tickets = Vec::new();
        for entry in rustix::fs::Dir::read_from(&queue)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if let Ok(number) = name.parse::<u64>() {
                tickets.push((number, queue_dir.join(name)));
            }
        }
        tickets.sort_unstable();
        Ok(tickets)
    }
}

/// Normalises `scope` as the original does (A3), bare: `getcwd` (a relative entry is taken
/// from there), then an `lstat` of each component up to the first that does not exist; what
/// follows a missing one is kept as written. (A symlink found would be read and followed;
/// the bench's scopes have none.)
pub(crate) fn normalise(scope: &[String]) -> io::Result<()> {
    let cwd = std::env::current_dir()?;
    for entry in scope {
        let path = cwd.join(entry);
        let mut prefix = PathBuf::new();
        for component in path.components() {
            prefix.push(component);
            if prefix.parent().is_none() {
                continue;
            }
            match fs::symlink_metadata(&prefix) {
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => break,
                Err(err) => return Err(err),
            }
        }
    }
    Ok(())
}

/// Advances the fencing-token counter, bare: opened without following a symlink, checked to
/// be a regular file with one link and no longer than a counter, read, rewritten in place.
pub(crate) fn advance_token(running_dir: &Path) -> io::Result<u64> {
    let path = running_dir.join(".fencing-token");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o666)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.nlink() != 1 || meta.len() > 64 {
        return Err(io::Error::other("the counter is not ours"));
    }
    let mut buffer = [0u8; 64];
    let read = file.read_at(&mut buffer, 0)?;
    let text = std::str::from_utf8(&buffer[..read]).map_err(io::Error::other)?;
    let last: u64 = match text.trim() {
        "" => 0,
        digits => digits.parse().map_err(io::Error::other)?,
    };
    let next = last + 1;
    file.write_all_at(format!("{next:020}\n").as_bytes(), 0)?;
    Ok(next)
}

/// Probes one file as a scan does: open, try the flock, `fstat` for the size, one read,
/// parse. `None` when it is not held (its owner is gone).
pub(crate) fn probe(path: &Path) -> io::Result<Option<LockRecord>> {
    let mut file = File::open(path)?;
    if file.try_lock().is_ok() {
        return Ok(None);
    }
    let size = usize::try_from(file.metadata()?.len()).unwrap_or(0);
    let mut buffer = vec![0; size];
    file.read_exact(&mut buffer)?;
    LockRecord::from_json(&buffer)
        .map(Some)
        .map_err(io::Error::other)
}

/// Calls `each(path, held, record)` for every top-level `*.lock`: open, try the flock, one
/// `fstat` for the size, one read, close.
pub(crate) fn scan(
    running_dir: &Path,
    mut each: impl FnMut(&Path, bool, LockRecord),
) -> io::Result<()> {
    let mut buffer = Vec::new();
    for entry in fs::read_dir(running_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') || !name.ends_with(".lock") {
            continue;
        }
        let path = entry.path();
        let mut file = File::open(&path)?;
        let held = file.try_lock().is_err();
        let size = usize::try_from(file.metadata()?.len()).unwrap_or(0);
        buffer.clear();
        buffer.resize(size, 0);
        file.read_exact(&mut buffer)?;
        drop(file);
        let record = LockRecord::from_json(&buffer).map_err(io::Error::other)?;
        each(&path, held, record);
    }
    Ok(())
}

/// Our scope's entries and every ancestor of them, so that one of theirs is checked in
/// O(depth): it overlaps iff it is one of our entries' ancestors-or-self, or one of its own
/// ancestors-or-self is one of our entries.
pub(crate) struct ScopeIndex<'a> {
    entries: HashSet<&'a str>,
    with_ancestors: HashSet<&'a str>,
}

impl<'a> ScopeIndex<'a> {
    pub(crate) fn new(scope: &'a [String]) -> Self {
        let entries: HashSet<&str> = scope.iter().map(|s| trim(s)).collect();
        let mut with_ancestors = HashSet::new();
        for entry in &entries {
            for prefix in prefixes(entry) {
                with_ancestors.insert(prefix);
            }
        }
        Self {
            entries,
            with_ancestors,
        }
    }

    pub(crate) fn overlaps(&self, theirs: &[String]) -> bool {
        theirs.iter().any(|entry| {
            let entry = trim(entry);
            self.with_ancestors.contains(entry)
                || prefixes(entry).any(|prefix| self.entries.contains(prefix))
        })
    }
}

fn trim(path: &str) -> &str {
    match path.trim_end_matches('/') {
        "" if path.starts_with('/') => "/",
        trimmed => trimmed,
    }
}

/// `/a/b/c` → `/`, `/a`, `/a/b`, `/a/b/c`.
fn prefixes(path: &str) -> impl Iterator<Item = &str> {
    let root = path.starts_with('/').then_some("/");
    let inner = path
        .match_indices('/')
        .map(|(at, _)| &path[..at])
        .filter(|prefix| !prefix.is_empty());
    root.into_iter().chain(inner).chain(Some(path))
}
