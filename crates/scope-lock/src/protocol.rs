//! The lock protocol, top to bottom.
//!
//! A scope lock is a file `.running/<stem>.lock` holding a [`LockRecord`], **and** an open
//! descriptor of that file, exclusively `flock`ed, owned by a [`ScopeGuard`](crate::ScopeGuard)
//! for exactly as long as the lock is held. The file says *what* is held; the flock says *that*
//! it is held. The kernel drops the flock when the holder's process dies, however it dies, so a
//! lock can never outlive its holder and no pid is ever consulted for our own locks.
//!
//! Every decision is taken while holding `flock(LOCK_EX)` on the directory sentinel
//! `.running/.acquire.lock` (the same file little-loops uses, so both implementations serialise
//! against each other):
//!
//! 1. **Sentinel** ([`Sentinel::lock`]): open without following symlinks, refuse anything but a
//!    regular file and filesystems whose flock is unreliable, wait for the flock, then check the
//!    path still names the locked inode (a sentinel deleted and recreated meanwhile would split
//!    contenders across two inodes).
//! 2. **Scan** ([`scan`]): walk `.running/` recursively (nested stems included), skipping dot
//!    entries, and classify each `*.lock`:
//!    - flock taken by someone and record valid → live ([`Liveness::Flock`]);
//!    - flock taken, record invalid → a live lock of unknown scope: blocks everything;
//!    - flock free, record ours (`"liveness": "flock"`) → its holder is gone: reclaim;
//!    - flock free, record the original's → `kill(pid, 0)`: `ESRCH` reclaims, anything else is
//!      live ([`Liveness::Pid`]);
//!    - flock free, record invalid → moved aside to a dot file, never deleted;
//!    - not a regular file → reported, left alone.
//!
//!    Reclaiming unlinks only if the path still names the inode just probed. Files that our own
//!    publication left behind when its process was killed mid-way are removed too: while we
//!    hold the sentinel nobody can be publishing.
//! 3. **Decide** ([`first_conflict`]): the first live lock that holds our name, is a singleton
//!    of our name (when we are one), or overlaps our scope, unless its holder is one of our
//!    ancestor processes (a loop running a nested loop must not block itself).
//! 4. **Publish** ([`publish`]): write the record to a fresh dot file in the target directory,
//!    flock it, and only then give it its final name with a no-overwrite rename. Nobody ever
//!    sees a lock file that is empty, partial, or not yet held.
//! 5. **Release** ([`release`]): under the sentinel, unlink the path only if it still names the
//!    inode we hold, then close the descriptor, which ends the flock. A forked child that
//!    inherited the guard only closes its copy of the descriptor (the parent's lock stays held:
//!    flock belongs to the open file description, and we never call `LOCK_UN`).

use std::fs::{self, File, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Conflict, ConflictRule, Error, ErrorKind};
use crate::listing::{LiveLock, Liveness, LockListing, ProblemKind, ScanProblem};
use crate::record::{LockRecord, MAX_RECORD_BYTES};
use crate::request::{LOCK_SUFFIX, LockRequest, MAX_NESTING};
use crate::scope;
use crate::sys::imp::{self, FileId};

/// The directory sentinel's name, as in the original.
pub(crate) const SENTINEL_NAME: &str = ".acquire.lock";

/// Files being published are named `<PUBLISH_PREFIX><random><PUBLISH_SUFFIX>`.
const PUBLISH_PREFIX: &str = ".scope-lock-publish-";
const PUBLISH_SUFFIX: &str = ".tmp";

/// How often to retry when the sentinel we locked turns out to have been replaced.
const SENTINEL_ATTEMPTS: usize = 16;

// ---------------------------------------------------------------------------------------------
// 1. The sentinel
// ---------------------------------------------------------------------------------------------

/// The exclusive flock on `.running/.acquire.lock`, held while this value lives.
pub(crate) struct Sentinel {
    file: File,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        // Unlike a lock file's, the sentinel's flock is ended explicitly: if another thread
        // forked meanwhile, the child shares this open file description, and merely closing
        // our descriptor would leave the whole directory locked until the child exits.
        let _ = self.file.unlock();
    }
}

impl Sentinel {
    /// Waits for and takes the directory sentinel.
    pub(crate) fn lock(running_dir: &Path) -> Result<Self, Error> {
        let path = running_dir.join(SENTINEL_NAME);
        for _ in 0..SENTINEL_ATTEMPTS {
            let file = imp::open_sentinel(&path).map_err(|err| open_error(&path, err))?;
            ensure_regular(&file, &path)?;
            if let Some(fs_name) = imp::unreliable_flock_filesystem(&file)
                .map_err(|err| Error::io("cannot inspect the filesystem of", &path, err))?
            {
                return Err(Error::at_path(
                    ErrorKind::UnsupportedFilesystem,
                    &path,
                    format!(
                        "is on {fs_name}, where flock is emulated or not shared between \
                         machines; scope locks there would not exclude each other"
                    ),
                ));
            }
            imp::lock_exclusive(&file).map_err(|err| Error::io("cannot lock", &path, err))?;
            let locked = imp::file_id(&file).map_err(|err| Error::io("cannot stat", &path, err))?;
            let named = imp::path_id(&path).map_err(|err| Error::io("cannot stat", &path, err))?;
            if named == Some(locked) {
                return Ok(Self { file });
            }
        }
        Err(Error::at_path(
            ErrorKind::Io,
            &path,
            "keeps being replaced while we lock it; is something deleting it?",
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// 2. The scan
// ---------------------------------------------------------------------------------------------

/// Scans `running_dir` (which the caller's `_sentinel` belongs to), reclaiming what is stale.
pub(crate) fn scan(running_dir: &Path, _sentinel: &Sentinel) -> Result<LockListing, Error> {
    let mut listing = LockListing::default();
    walk(running_dir, "", 0, &mut listing)?;
    listing.locks.sort_by(|a, b| a.path.cmp(&b.path));
    listing.problems.sort_by(|a, b| a.path.cmp(&b.path));
    listing.reclaimed.sort();
    Ok(listing)
}

fn walk(dir: &Path, prefix: &str, depth: usize, listing: &mut LockListing) -> Result<(), Error> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        // A nested directory removed while we walk had nothing left to find.
        Err(err) if depth > 0 && err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(Error::io("cannot list", dir, err)),
    };
    for entry in entries {
        let entry = entry.map_err(|err| Error::io("cannot list", dir, err))?;
        let path = entry.path();
        let file_type = match entry.file_type() {
            Ok(file_type) => file_type,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(Error::io("cannot stat", &path, err)),
        };
        // Names that are not UTF-8 were not made by either implementation.
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') {
            if file_type.is_file() && is_orphaned_publication(&name) {
                // We hold the sentinel, so nobody is publishing: its publisher died mid-way.
                let _ = fs::remove_file(&path);
            }
            continue;
        }
        if file_type.is_dir() {
            if depth < MAX_NESTING {
                walk(&path, &format!("{prefix}{name}/"), depth + 1, listing)?;
            }
            continue;
        }
        let Some(stem) = name.strip_suffix(LOCK_SUFFIX) else {
            continue;
        };
        if !file_type.is_file() {
            listing.problems.push(ScanProblem {
                path,
                kind: ProblemKind::NotRegular {
                    file_type: describe(&file_type),
                },
            });
            continue;
        }
        inspect(path, format!("{prefix}{stem}"), listing);
    }
    Ok(())
}

fn is_orphaned_publication(name: &str) -> bool {
    name.starts_with(PUBLISH_PREFIX) && name.ends_with(PUBLISH_SUFFIX)
}

/// Probes and reads one lock file and files it under live, reclaimed or problems.
fn inspect(path: PathBuf, stem: String, listing: &mut LockListing) {
    let problem = |listing: &mut LockListing, path: PathBuf, kind| {
        listing.problems.push(ScanProblem { path, kind });
    };
    let unreadable = |err: io::Error| ProblemKind::Unreadable {
        reason: err.to_string(),
    };
    let file = match imp::open_lock_file(&path) {
        Ok(file) => file,
        // Released between the listing and the open: nothing to see.
        Err(err) if err.kind() == io::ErrorKind::NotFound => return,
        Err(err) => {
            let kind = match fs::symlink_metadata(&path) {
                Ok(meta) if !meta.is_file() => ProblemKind::NotRegular {
                    file_type: describe(&meta.file_type()),
                },
                _ => unreadable(err),
            };
            return problem(listing, path, kind);
        }
    };
    match file.metadata() {
        Ok(meta) if meta.is_file() => {}
        Ok(meta) => {
            let file_type = describe(&meta.file_type());
            return problem(listing, path, ProblemKind::NotRegular { file_type });
        }
        Err(err) => return problem(listing, path, unreadable(err)),
    }
    let held = match imp::try_lock_exclusive(&file) {
        Ok(taken) => !taken,
        Err(err) => return problem(listing, path, unreadable(err)),
    };
    let bytes = match read_capped(&file) {
        Ok(bytes) => bytes,
        Err(err) => return problem(listing, path, unreadable(err)),
    };
    let parsed = LockRecord::from_json(&bytes);
    match (held, parsed) {
        (true, Ok(record)) => listing.locks.push(LiveLock {
            path,
            stem,
            record,
            liveness: Liveness::Flock,
        }),
        (true, Err(err)) => {
            let reason = err.to_string();
            problem(listing, path, ProblemKind::HeldInvalid { reason });
        }
        (false, Ok(record)) if record.is_flock_liveness() || imp::pid_is_dead(record.pid()) => {
            reclaim(path, &file, listing);
        }
        (false, Ok(record)) => listing.locks.push(LiveLock {
            path,
            stem,
            record,
            liveness: Liveness::Pid,
        }),
        (false, Err(err)) => move_aside(path, &file, err.to_string(), listing),
    }
}

/// Reads at most one byte more than a record may have, so `from_json` can tell "too large".
fn read_capped(file: &File) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(MAX_RECORD_BYTES + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Removes a stale lock file if `path` still names the inode we probed through `file`.
fn reclaim(path: PathBuf, file: &File, listing: &mut LockListing) {
    match still_names(&path, file) {
        Ok(true) => match fs::remove_file(&path) {
            Ok(()) => listing.reclaimed.push(path),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => listing.problems.push(ScanProblem {
                path,
                kind: ProblemKind::ReclaimFailed {
                    reason: err.to_string(),
                },
            }),
        },
        // Gone, or the name now belongs to another inode: not ours to touch.
        Ok(false) => {}
        Err(err) => listing.problems.push(ScanProblem {
            path,
            kind: ProblemKind::ReclaimFailed {
                reason: err.to_string(),
            },
        }),
    }
}

/// Moves an unheld file with an invalid record to `.<name>.invalid-<pid>-<n>` beside it, so
/// that it no longer blocks anyone but nothing is lost: hard link first (which never
/// overwrites), then unlink the old name.
fn move_aside(path: PathBuf, file: &File, reason: String, listing: &mut LockListing) {
    let moved_to = (|| -> io::Result<Option<PathBuf>> {
        if !still_names(&path, file)? {
            return Ok(None);
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let dir = path.parent().unwrap_or(Path::new("."));
        let pid = imp::current_pid();
        for n in 0..100 {
            let aside = dir.join(format!(".{name}.invalid-{pid}-{n}"));
            match fs::hard_link(&path, &aside) {
                Ok(()) => {
                    fs::remove_file(&path)?;
                    return Ok(Some(aside));
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            }
        }
        Ok(None)
    })()
    .unwrap_or(None);
    listing.problems.push(ScanProblem {
        path,
        kind: ProblemKind::Invalid { reason, moved_to },
    });
}

/// Whether `path` names, right now, the inode `file` is open on.
fn still_names(path: &Path, file: &File) -> io::Result<bool> {
    Ok(imp::path_id(path)? == Some(imp::file_id(file)?))
}

// ---------------------------------------------------------------------------------------------
// 3. The decision
// ---------------------------------------------------------------------------------------------

/// The first live lock that blocks `request` (whose normalised scope is `scope` and whose lock
/// file would be `target`), in path order.
pub(crate) fn first_conflict(
    listing: &LockListing,
    request: &LockRequest,
    scope: &[String],
    target: &Path,
) -> Option<Conflict> {
    if let Some(problem) = listing.problems.iter().find(|p| p.blocks()) {
        let reason = match &problem.kind {
            ProblemKind::Unreadable { reason } | ProblemKind::HeldInvalid { reason } => reason,
            _ => "",
        };
        return Some(Conflict {
            lock_path: problem.path.clone(),
            holder: None,
            rule: ConflictRule::Unreadable {
                reason: reason.to_owned(),
            },
            by_this_process: false,
        });
    }
    let me = imp::current_pid();
    let mut ancestors: Option<Vec<u32>> = None;
    for lock in &listing.locks {
        let record = &lock.record;
        let rule = if lock.path == target {
            // Never carved out for ancestors: the file cannot hold two records.
            ConflictRule::SameName
        } else {
            let rule = if request.is_singleton()
                && record.singleton()
                && record.loop_name() == request.loop_name()
            {
                ConflictRule::Singleton
            } else {
                let theirs = holder_scope(record);
                let Some((ours, theirs)) = scope::first_overlap(scope, &theirs) else {
                    continue;
                };
                ConflictRule::Overlap {
                    ours: ours.to_owned(),
                    theirs: theirs.to_owned(),
                }
            };
            let ancestors = ancestors.get_or_insert_with(imp::ancestor_pids);
            if ancestors.contains(&record.pid()) {
                continue;
            }
            rule
        };
        return Some(Conflict {
            lock_path: lock.path.clone(),
            holder: Some(record.clone()),
            rule,
            by_this_process: record.pid() == me,
        });
    }
    None
}

/// A holder's scope as compared: absolute entries as recorded (normalised when acquired);
/// relative ones, which only legacy files have, normalised here as the original does.
fn holder_scope(record: &LockRecord) -> Vec<String> {
    record
        .scope()
        .iter()
        .map(|entry| {
            if Path::new(entry).is_absolute() {
                entry.clone()
            } else {
                scope::normalize_path(entry).unwrap_or_else(|_| entry.clone())
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 4. Publication
// ---------------------------------------------------------------------------------------------

/// Refuses a target that exists but is not a regular file (so acquiring over a directory,
/// symlink or FIFO is a clear error, not a hang or a confusing `EEXIST`).
pub(crate) fn ensure_target_usable(target: &Path) -> Result<(), Error> {
    match fs::symlink_metadata(target) {
        Ok(meta) if !meta.is_file() => Err(not_a_lock_file(target, &meta.file_type())),
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Error::io("cannot stat", target, err)),
    }
}

/// Writes `record`, flocks it, and gives it the name `target` without ever overwriting.
/// Returns the open, flocked descriptor and the identity of its inode.
pub(crate) fn publish(
    running_dir: &Path,
    target: &Path,
    record: &LockRecord,
) -> Result<(File, FileId), Error> {
    let dir = target.parent().unwrap_or(running_dir);
    ensure_real_directories(running_dir, dir)?;
    let mut staged = tempfile::Builder::new()
        .prefix(PUBLISH_PREFIX)
        .suffix(PUBLISH_SUFFIX)
        .permissions(Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(|err| Error::io("cannot create a lock file in", dir, err))?;
    let staged_path = staged.path().to_path_buf();
    staged
        .write_all(record.to_json().as_bytes())
        .map_err(|err| Error::io("cannot write", &staged_path, err))?;
    let locked = imp::try_lock_exclusive(staged.as_file())
        .map_err(|err| Error::io("cannot lock", &staged_path, err))?;
    if !locked {
        return Err(Error::at_path(
            ErrorKind::Io,
            &staged_path,
            "a freshly created file is already locked by someone else",
        ));
    }
    let file = staged.persist_noclobber(target).map_err(|err| {
        if err.error.kind() == io::ErrorKind::AlreadyExists {
            match fs::symlink_metadata(target) {
                Ok(meta) if !meta.is_file() => not_a_lock_file(target, &meta.file_type()),
                _ => Error::at_path(
                    ErrorKind::AlreadyExists,
                    target,
                    "appeared while we held the directory sentinel; some writer does not \
                     follow the locking protocol",
                ),
            }
        } else {
            Error::io("cannot publish lock file", target, err.error)
        }
    })?;
    let id = imp::file_id(&file).map_err(|err| Error::io("cannot stat", target, err))?;
    Ok((file, id))
}

/// Creates the directories of a nested stem, refusing any that is not a real directory: a
/// symlink there would put the lock where scans (which never follow symlinks) cannot see it.
fn ensure_real_directories(running_dir: &Path, dir: &Path) -> Result<(), Error> {
    let Ok(relative) = dir.strip_prefix(running_dir) else {
        return Ok(());
    };
    let mut current = running_dir.to_path_buf();
    for component in relative.components() {
        current.push(component);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) => {
                return Err(Error::at_path(
                    ErrorKind::NotALockFile,
                    &current,
                    format!(
                        "is a {}, not a directory; cannot hold nested lock files",
                        describe(&meta.file_type())
                    ),
                ));
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => match fs::create_dir(&current) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(Error::io("cannot create directory", &current, err)),
            },
            Err(err) => return Err(Error::io("cannot stat", &current, err)),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 5. Release
// ---------------------------------------------------------------------------------------------

/// Releases a lock held through `file` (whose inode is `id`) at `path`. Must only be called by
/// the process that acquired it.
pub(crate) fn release(
    running_dir: &Path,
    path: &Path,
    file: File,
    id: FileId,
) -> Result<(), Error> {
    // Under the sentinel nobody can publish a new lock at `path` between our check and our
    // unlink. If the directory itself is gone, so is our file.
    let sentinel = match Sentinel::lock(running_dir) {
        Ok(sentinel) => Some(sentinel),
        Err(err) if err.io_error().map(io::Error::kind) == Some(io::ErrorKind::NotFound) => None,
        // Our descriptor closes on return, so the flock ends and the next scan reclaims the file.
        Err(err) => return Err(err),
    };
    let result = match imp::path_id(path) {
        Ok(Some(named)) if named == id => match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(Error::io("cannot remove lock file", path, err)),
        },
        // Already gone, or the name was reclaimed and re-acquired by another holder.
        Ok(_) => Ok(()),
        Err(err) => Err(Error::io("cannot stat", path, err)),
    };
    // Closing the descriptor ends the flock, strictly after the unlink.
    drop(file);
    drop(sentinel);
    result
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Maps an `open` failure to an error that says what is in the way when it is not a file.
fn open_error(path: &Path, err: io::Error) -> Error {
    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.is_file() => not_a_lock_file(path, &meta.file_type()),
        _ => Error::io("cannot open", path, err),
    }
}

fn ensure_regular(file: &File, path: &Path) -> Result<(), Error> {
    let meta = file
        .metadata()
        .map_err(|err| Error::io("cannot stat", path, err))?;
    if meta.is_file() {
        Ok(())
    } else {
        Err(not_a_lock_file(path, &meta.file_type()))
    }
}

fn not_a_lock_file(path: &Path, file_type: &fs::FileType) -> Error {
    Error::at_path(
        ErrorKind::NotALockFile,
        path,
        format!(
            "is a {}, not a regular lock file; refusing to use it",
            describe(file_type)
        ),
    )
}

fn describe(file_type: &fs::FileType) -> &'static str {
    if file_type.is_symlink() {
        "symlink"
    } else if file_type.is_dir() {
        "directory"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "device"
    } else if file_type.is_file() {
        "regular file"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn dropping_the_sentinel_frees_it_even_when_its_descriptor_was_shared() -> TestResult {
        let dir = tempfile::tempdir()?;
        let sentinel = Sentinel::lock(dir.path())?;
        // A duplicate shares the open file description, exactly as a forked child's copy does.
        let shared = sentinel.file.try_clone()?;
        drop(sentinel);
        let other = imp::open_sentinel(&dir.path().join(SENTINEL_NAME))?;
        assert!(
            imp::try_lock_exclusive(&other)?,
            "the directory stayed locked after the sentinel was dropped"
        );
        drop(shared);
        Ok(())
    }

    #[test]
    fn orphaned_publications_are_recognised_by_name_only() {
        assert!(is_orphaned_publication(".scope-lock-publish-AbC123.tmp"));
        assert!(!is_orphaned_publication(".acquire.lock"));
        assert!(!is_orphaned_publication(".x.lock.invalid-1-0"));
        assert!(!is_orphaned_publication("scope-lock-publish-x.tmp"));
    }
}
