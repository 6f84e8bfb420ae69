//! Step 2, the scan (docs/protocol.md, "How this crate takes a lock"): every `*.lock` below
//! `.running/` walked through directory descriptors and classified; what is stale goes to
//! [`reclaim`](super::reclaim).

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::publish::{PUBLISH_PREFIX, PUBLISH_SUFFIX};
use super::reclaim::{Entry, Stale, move_aside, reclaim};
use super::sentinel::SentinelGuard;
use crate::error::{Error, in_words};
use crate::listing::{FileKind, LiveLock, Liveness, LockListing, ProblemKind, ScanProblem};
use crate::python_json::salvage;
use crate::record::{LockRecord, MAX_RECORD_BYTES};
use crate::request::{LOCK_SUFFIX, MAX_NESTING};
use crate::sys::{self, FileType};

/// How a scan judges and treats what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scan {
    /// What to do with stale files.
    pub(crate) stale: Stale,
    /// How long a lock file that nothing proves alive or dead (not flocked, no record, no pid:
    /// it may be the original's, caught half written) must stay unchanged before it is taken
    /// for garbage and moved aside. See `LockManager::with_invalid_grace`.
    pub(crate) invalid_grace: Duration,
}

impl Scan {
    /// A scan that cleans up, as acquires and questions do.
    pub(crate) fn clean(invalid_grace: Duration) -> Self {
        Self {
            stale: Stale::Clean,
            invalid_grace,
        }
    }

    /// A dry run: it judges as [`clean`](Self::clean) does, and changes nothing.
    pub(crate) fn dry_run(invalid_grace: Duration) -> Self {
        Self {
            stale: Stale::DryRun,
            invalid_grace,
        }
    }
}

/// Scans the sentinel's `.running/`, doing with stale files what `mode` says.
pub(crate) fn scan(mode: Scan, sentinel: &SentinelGuard) -> Result<LockListing, Error> {
    let stale = mode.stale;
    let listing = LockListing {
        dry_run: stale == Stale::DryRun,
        invalid_grace: Some(mode.invalid_grace),
        ..LockListing::default()
    };
    let mut walk = Walk {
        stale,
        listing,
        sentinel,
    };
    walk.dir(sentinel.dir(), "", 0)?;
    let mut listing = walk.listing;
    listing
        .locks
        .sort_by_cached_key(|lock| path_order_key(&lock.path));
    listing
        .problems
        .sort_by_cached_key(|problem| path_order_key(&problem.path));
    listing
        .reclaimed
        .sort_by_cached_key(|path| path_order_key(path));
    listing
        .orphans
        .sort_by_cached_key(|path| path_order_key(path));
    Ok(listing)
}

/// A key whose byte order is the order of `Path`'s `Ord` (component by component) for the
/// paths one walk makes: the directory it started from (the same bytes in every path, however
/// the caller spelled it) joined with names it listed, so below that directory no `.`, no
/// empty component and no trailing `/`. Each `/` becomes a byte below any byte a name can hold, so a name sorts
/// before its longer names and before anything below it, as components do. `Path`'s own
/// comparison splits both paths into components at every step: sorting a listing of 1,000
/// locks with it took a quarter of an acquire's user-space instructions (callgrind); with one
/// key per path, a comparison is a `memcmp`.
fn path_order_key(path: &Path) -> Vec<u8> {
    (path.as_os_str().as_bytes().iter())
        .map(|&byte| if byte == b'/' { 0 } else { byte })
        .collect()
}

/// One scan's walk down `.running/`: what every directory and file of it is looked at with
/// (what to do with stale files, the sentinel held), and what it has found so far.
struct Walk<'s> {
    stale: Stale,
    listing: LockListing,
    sentinel: &'s SentinelGuard,
}

impl Walk<'_> {
    /// Lists `dir` (at `depth` below `.running/`, its names starting with `prefix`) and visits
    /// each entry, through the descriptor: a name swapped for a symlink meanwhile changes
    /// nothing about which directory is listed.
    fn dir(&mut self, dir: &sys::Dir, prefix: &str, depth: usize) -> Result<(), Error> {
        let entries = dir
            .entries()
            .map_err(|err| Error::io("cannot list", dir.path(), err))?;
        for entry in entries {
            let entry = entry.map_err(|err| Error::io("cannot list", dir.path(), err))?;
            self.visit(dir, entry, prefix, depth)?;
        }
        Ok(())
    }

    /// Files one entry of a directory at `depth` (whose names start with `prefix`) that
    /// [`dir`](Self::dir) lists: skipped, removed as an orphaned publication, reported, walked
    /// into, or classified.
    fn visit(
        &mut self,
        dir: &sys::Dir,
        entry: sys::DirEntry,
        prefix: &str,
        depth: usize,
    ) -> Result<(), Error> {
        let (stale, listing) = (self.stale, &mut self.listing);
        let path = dir.join(&entry.name);
        let file_type = match entry.file_type {
            Ok(file_type) => file_type,
            // Removed between the listing and the `fstatat` that some filesystems need for it.
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(Error::io("cannot stat", &path, err)),
        };
        // Names are bytes: the original writes names that are not UTF-8 (an instance id made
        // from such a path), and its live locks must be seen whatever their names.
        let name = entry.name.as_bytes();
        if name.starts_with(b".") {
            if file_type == FileType::RegularFile && is_orphaned_publication(name) {
                // We hold the sentinel, so nobody is publishing: its publisher died mid-way.
                let removed = match stale {
                    Stale::Clean => dir.remove_file(&entry.name).is_ok(),
                    Stale::DryRun => true,
                };
                if removed {
                    listing.orphans.push(path);
                }
            }
            return Ok(());
        }
        let lock_name = name.strip_suffix(LOCK_SUFFIX.as_bytes());
        let display = String::from_utf8_lossy(lock_name.unwrap_or(name));
        if let (Some(_), Some(file_kind)) = (lock_name, FileKind::of(file_type)) {
            // A directory named `x.lock` is reported too, and still walked below: it may be
            // the directory of nested names such as `x.lock/run-1`.
            listing.problems.push(ScanProblem {
                path: path.clone(),
                kind: ProblemKind::NotRegular { file_kind },
            });
        }
        if file_type == FileType::Directory {
            if depth < MAX_NESTING {
                let nested = match dir.open_dir(&entry.name) {
                    Ok(nested) => nested,
                    // Removed since the listing, or replaced by something that is not a
                    // directory (a symlink is never followed): nothing of ours is below it.
                    Err(err)
                        if err.kind() == io::ErrorKind::NotFound || sys::is_not_a_dir(&err) =>
                    {
                        return Ok(());
                    }
                    Err(err) => return Err(Error::io("cannot open directory", &path, err)),
                };
                let name = String::from_utf8_lossy(name);
                self.dir(&nested, &format!("{prefix}{name}/"), depth + 1)?;
            }
            return Ok(());
        }
        if lock_name.is_some() && file_type == FileType::RegularFile {
            let lock_name = format!("{prefix}{display}");
            classify(
                Entry::new(dir, entry.name),
                lock_name,
                stale,
                listing,
                self.sentinel,
            );
        }
        Ok(())
    }
}

fn is_orphaned_publication(name: &[u8]) -> bool {
    name.starts_with(PUBLISH_PREFIX.as_bytes()) && name.ends_with(PUBLISH_SUFFIX.as_bytes())
}

/// Probes and reads one lock file and files it under live, reclaimed or problems.
fn classify(
    entry: Entry<'_>,
    lock_name: String,
    stale: Stale,
    listing: &mut LockListing,
    sentinel: &SentinelGuard,
) {
    let problem = |listing: &mut LockListing, path: PathBuf, kind| {
        listing.problems.push(ScanProblem { path, kind });
    };
    let unreadable = |err: io::Error| ProblemKind::Unreadable {
        reason: in_words(&err),
    };
    let path = entry.path.clone();
    let file = match entry.dir.open_file(&entry.name) {
        Ok(file) => file,
        // Released between the listing and the open: nothing to see.
        Err(err) if err.kind() == io::ErrorKind::NotFound => return,
        Err(err) => {
            let kind = match entry.dir.stat(&entry.name) {
                Ok(Some(stat)) if stat.file_type != FileType::RegularFile => {
                    ProblemKind::NotRegular {
                        file_kind: FileKind::of(stat.file_type).unwrap_or(FileKind::Other),
                    }
                }
                _ => unreadable(err),
            };
            return problem(listing, path, kind);
        }
    };
    let (size, id, modified) = match file.metadata() {
        Ok(meta) if meta.is_file() => (meta.len(), sys::id_of(&meta), meta.modified().ok()),
        Ok(meta) => {
            let file_kind = FileKind::of(sys::file_type_of(&meta)).unwrap_or(FileKind::Other);
            return problem(listing, path, ProblemKind::NotRegular { file_kind });
        }
        Err(err) => return problem(listing, path, unreadable(err)),
    };
    let held = match sys::try_lock_exclusive(&file) {
        Ok(taken) => !taken,
        Err(err) => return problem(listing, path, unreadable(err)),
    };
    // One byte more than a record may have, so `from_json` can tell "too large".
    let bytes = match sys::read_sized(&file, size, MAX_RECORD_BYTES + 1) {
        Ok(bytes) => bytes,
        Err(err) => return problem(listing, path, unreadable(err)),
    };
    let parsed = LockRecord::from_json(&bytes);
    match (held, parsed) {
        (true, Ok(record)) => listing.locks.push(LiveLock {
            path,
            lock_name,
            record,
            liveness: Liveness::Flock,
            id,
        }),
        (true, Err(err)) => {
            let reason = err.to_string();
            problem(listing, path, ProblemKind::BlocksHeldInvalid { reason });
        }
        (false, Ok(record)) if record.is_flock_liveness() || sys::pid_is_dead(record.pid()) => {
            let found = (&mut listing.reclaimed, &mut listing.problems);
            reclaim(&entry, &file, stale, found, sentinel);
        }
        (false, Ok(record)) => listing.locks.push(LiveLock {
            path,
            lock_name,
            record,
            liveness: Liveness::Pid,
            id,
        }),
        (false, Err(err)) => {
            // Not flocked and not a record we can read. Only proof that its holder is gone
            // lets us move it: our marker (we always hold our files flocked, so unheld means
            // the holder died), or a pid that is dead. Anything else may be the original's
            // live lock, which holds no flock (B10): it blocks.
            let salvaged = if bytes.len() as u64 > MAX_RECORD_BYTES {
                // Stream the rest: the original sets no size limit, and its pid comes last.
                match sys::reader_from_start(&file) {
                    Ok(reader) => salvage(reader),
                    Err(err) => return problem(listing, path, unreadable(err)),
                }
            } else {
                salvage(bytes.as_slice())
            };
            let reason = err.to_string();
            match salvaged.pid {
                _ if salvaged.ours => move_aside(&entry, &file, reason, stale, listing, sentinel),
                Some(pid) if sys::pid_is_dead(pid) => {
                    move_aside(&entry, &file, reason, stale, listing, sentinel);
                }
                // Nothing to tell the original's write in progress from garbage but time: no
                // write of the original lasts anywhere near the grace.
                None if let Some(age) = abandoned_for(modified, listing.invalid_grace) => {
                    let reason = format!(
                        "{reason}; no flock, no pid, and unchanged for {}s, longer than any \
                         write of a lock file takes",
                        age.as_secs()
                    );
                    move_aside(&entry, &file, reason, stale, listing, sentinel);
                }
                pid => problem(listing, path, ProblemKind::BlocksMaybeLive { reason, pid }),
            }
        }
    }
}

/// How long a file last modified at `modified` has been left alone, if that is at least
/// `grace`. A time in the future, or none, counts as just now: it blocks (fails closed).
fn abandoned_for(modified: Option<SystemTime>, grace: Option<Duration>) -> Option<Duration> {
    let age = SystemTime::now().duration_since(modified?).ok()?;
    (age >= grace?).then_some(age)
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::sentinel::SentinelGuard;
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Listings keep the order `Path` gives, including where it differs from the bytes' order:
    /// `a/b` before `a-b` (a name before anything longer, `/` below every name byte).
    #[test]
    fn listings_sort_in_the_order_path_gives() {
        let paths = [
            "/r/.running/a-b.lock",
            "/r/.running/a/b.lock",
            "/r/.running/a.lock",
            "/r/.running/a",
            "/r/.running/a/b/c.lock",
            "/r/.running/a/b-c.lock",
            "/r/.running/\u{e9}.lock",
            "/r/.running/Z.lock",
            "/r/.running/a.lock.b",
        ];
        let mut by_path: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        let mut ours = by_path.clone();
        by_path.sort();
        ours.sort_by_cached_key(|path| path_order_key(path));
        assert_eq!(ours, by_path);
        assert!(path_order_key(Path::new("/r/a/b")) < path_order_key(Path::new("/r/a-b")));
    }

    /// A directory with its sentinel held, for calling the scan's steps one by one: what a
    /// scan does when the directory changes between its listing and its look at one entry.
    pub(crate) fn held_dir()
    -> Result<(tempfile::TempDir, SentinelGuard), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let sentinel = SentinelGuard::lock(dir.path(), Duration::from_secs(60))?;
        Ok((dir, sentinel))
    }

    /// `x.lock` in the sentinel's directory.
    pub(crate) fn x_lock(sentinel: &SentinelGuard) -> Entry<'_> {
        Entry::new(sentinel.dir(), "x.lock".into())
    }

    /// What [`classify`] makes of `x.lock`, listed as a regular file a moment ago.
    fn classify_listed(stale: Stale, sentinel: &SentinelGuard) -> LockListing {
        let mut listing = LockListing::default();
        classify(x_lock(sentinel), "x".into(), stale, &mut listing, sentinel);
        listing
    }

    #[test]
    fn a_lock_file_removed_between_listing_and_opening_is_no_lock_and_no_problem() -> TestResult {
        let (_dir, sentinel) = held_dir()?;
        let listing = classify_listed(Stale::Clean, &sentinel);
        assert_eq!(listing, LockListing::default());
        Ok(())
    }

    #[test]
    fn a_symlink_put_in_place_of_a_listed_lock_file_is_reported_not_regular() -> TestResult {
        let (dir, sentinel) = held_dir()?;
        let path = dir.path().join("x.lock");
        std::os::unix::fs::symlink("elsewhere", &path)?;
        let listing = classify_listed(Stale::Clean, &sentinel);
        let kind = ProblemKind::NotRegular {
            file_kind: FileKind::Symlink,
        };
        assert_eq!(listing.problems, [ScanProblem { path, kind }]);
        assert!(listing.locks.is_empty() && listing.reclaimed.is_empty());
        Ok(())
    }

    /// A directory opens (read-only, as every lock file is): only its `fstat` tells.
    #[test]
    fn a_directory_put_in_place_of_a_listed_lock_file_is_reported_not_regular() -> TestResult {
        let (dir, sentinel) = held_dir()?;
        let path = dir.path().join("x.lock");
        std::fs::create_dir(&path)?;
        let listing = classify_listed(Stale::Clean, &sentinel);
        let kind = ProblemKind::NotRegular {
            file_kind: FileKind::Directory,
        };
        assert_eq!(
            listing.problems,
            [ScanProblem {
                path: path.clone(),
                kind
            }]
        );
        assert!(listing.locks.is_empty() && listing.reclaimed.is_empty());
        assert!(path.is_dir());
        Ok(())
    }

    /// What [`Walk::visit`] makes of an entry of the sentinel's directory listed as `name`, of type
    /// `file_type`, with nothing found before.
    fn visit_alone(
        name: &str,
        file_type: io::Result<FileType>,
        sentinel: &SentinelGuard,
    ) -> Result<LockListing, Error> {
        let entry = sys::DirEntry {
            name: name.into(),
            file_type,
        };
        let mut walk = Walk {
            stale: Stale::Clean,
            listing: LockListing::default(),
            sentinel,
        };
        walk.visit(sentinel.dir(), entry, "", 0)
            .map(|()| walk.listing)
    }

    #[test]
    fn a_nested_directory_removed_before_it_is_listed_holds_nothing() -> TestResult {
        let (_dir, sentinel) = held_dir()?;
        let listing = visit_alone("gone", Ok(FileType::Directory), &sentinel)?;
        assert_eq!(listing, LockListing::default());
        Ok(())
    }

    /// A nested directory swapped, after the listing, for a symlink to a directory elsewhere
    /// (or for a file) is not walked: nothing there is ours, and the stale lock there stays.
    #[test]
    fn a_nested_directory_swapped_for_a_symlink_or_a_file_is_not_walked() -> TestResult {
        let (dir, sentinel) = held_dir()?;
        let elsewhere = tempfile::tempdir()?;
        let victim = elsewhere.path().join("x.lock");
        let dead = LockRecord::new("x", vec!["/x".into()], 99_999_999, "t");
        std::fs::write(&victim, dead.to_json())?;
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("nested"))?;
        std::fs::write(dir.path().join("file"), "")?;
        for name in ["nested", "file"] {
            let listing = visit_alone(name, Ok(FileType::Directory), &sentinel)?;
            assert_eq!(listing, LockListing::default(), "{name}");
        }
        assert!(
            victim.exists(),
            "a stale lock outside .running was reclaimed"
        );
        Ok(())
    }

    #[test]
    fn an_entry_removed_before_its_type_is_read_is_skipped() -> TestResult {
        let (_dir, sentinel) = held_dir()?;
        let listing = visit_alone("x.lock", Err(io::ErrorKind::NotFound.into()), &sentinel)?;
        assert_eq!(listing, LockListing::default());
        Ok(())
    }

    #[test]
    fn an_entry_whose_type_cannot_be_read_is_an_error_naming_it() -> TestResult {
        let (dir, sentinel) = held_dir()?;
        let denied = Err(io::ErrorKind::PermissionDenied.into());
        let err = visit_alone("x.lock", denied, &sentinel).unwrap_err();
        assert_eq!(
            err.path(),
            Some(dir.path().join("x.lock").as_path()),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn orphaned_publications_are_recognised_by_name_only() {
        assert!(is_orphaned_publication(b".scope-lock-publish-AbC123.tmp"));
        assert!(!is_orphaned_publication(b".acquire.lock"));
        assert!(!is_orphaned_publication(b".x.lock.invalid-1-0"));
        assert!(!is_orphaned_publication(b"scope-lock-publish-x.tmp"));
    }
}
