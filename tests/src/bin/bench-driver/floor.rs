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
//! Only the happy path is handled; anything unexpected is an error, which ends the benchmark.

#![allow(
    clippy::disallowed_methods,
    reason = "the floor takes its flocks bare, not through the library it is compared with"
)]

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

// The sentinel taken bare is the one the pre-fix code took: open, then a blocking flock.
use regression::pre_fix_wait::blocking_sentinel as lock_sentinel;
use rustix::fs::{CWD, RenameFlags, renameat_with};
use scope_lock::LockRecord;

/// A lock held the floor's way.
pub(crate) struct FloorGuard {
    file: File,
    ino: u64,
    path: PathBuf,
}

/// Acquires `name` for `scope` (absolute, normalised) in `running_dir`, or says who blocks.
pub(crate) fn acquire(
    running_dir: &Path,
    name: &str,
    scope: &[String],
) -> io::Result<Result<FloorGuard, PathBuf>> {
    let sentinel = lock_sentinel(running_dir)?;
    let index = ScopeIndex::new(scope);
    let mut conflict = None;
    scan(running_dir, |path, held, record| {
        if conflict.is_none() && held && index.overlaps(record.scope()) {
            conflict = Some(path.to_path_buf());
        }
    })?;
    if let Some(path) = conflict {
        drop(sentinel);
        return Ok(Err(path));
    }
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
    file.write_all(record.to_json().as_bytes())?;
    file.try_lock().map_err(io::Error::from)?;
    let path = running_dir.join(format!("{name}.lock"));
    renameat_with(CWD, &staged, CWD, &path, RenameFlags::NOREPLACE)?;
    let ino = file.metadata()?.ino();
    drop(sentinel);
    Ok(Ok(FloorGuard { file, ino, path }))
}

/// Releases: under the sentinel, unlink if the name is still our inode, then close.
pub(crate) fn release(running_dir: &Path, guard: FloorGuard) -> io::Result<()> {
    let sentinel = lock_sentinel(running_dir)?;
    if fs::symlink_metadata(&guard.path)?.ino() == guard.ino {
        fs::remove_file(&guard.path)?;
    }
    drop(guard.file);
    drop(sentinel);
    Ok(())
}

/// `list_locks`, bare: the live records under the sentinel.
pub(crate) fn list(running_dir: &Path) -> io::Result<Vec<LockRecord>> {
    let sentinel = lock_sentinel(running_dir)?;
    let mut live = Vec::new();
    scan(running_dir, |_, held, record| {
        if held {
            live.push(record);
        }
    })?;
    drop(sentinel);
    Ok(live)
}

/// Calls `each(path, held, record)` for every top-level `*.lock`: open, try the flock, one
/// `fstat` for the size, one read, close.
fn scan(running_dir: &Path, mut each: impl FnMut(&Path, bool, LockRecord)) -> io::Result<()> {
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
struct ScopeIndex<'a> {
    entries: HashSet<&'a str>,
    with_ancestors: HashSet<&'a str>,
}

impl<'a> ScopeIndex<'a> {
    fn new(scope: &'a [String]) -> Self {
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

    fn overlaps(&self, theirs: &[String]) -> bool {
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
