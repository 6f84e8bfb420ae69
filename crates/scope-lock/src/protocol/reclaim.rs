//! Step 2's changes (docs/protocol.md, "How this crate takes a lock"): a stale lock file (or a
//! dead waiter's ticket) removed, and a stale file with an invalid record moved aside, each
//! only if its name still names the inode the scan judged.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;

use super::sentinel::SentinelGuard;
use crate::error::in_words;
use crate::fault;
use crate::listing::{LockListing, ProblemKind, ScanProblem};
use crate::request::NAME_MAX;
use crate::sys;

/// What a scan does with the stale files it finds: stale locks, unheld files of ours with
/// invalid records, and publications whose publisher died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stale {
    /// Reclaim, move aside, remove: what every acquire, question and listing does.
    Clean,
    /// Report them as a cleaning scan would, and change nothing (a dry run).
    DryRun,
}

/// A name in a directory held open, with its path for messages and reports.
pub(crate) struct Entry<'a> {
    pub(crate) dir: &'a sys::Dir,
    pub(crate) name: OsString,
    pub(crate) path: PathBuf,
}

impl<'a> Entry<'a> {
    pub(crate) fn new(dir: &'a sys::Dir, name: OsString) -> Self {
        let path = dir.join(&name);
        Self { dir, name, path }
    }
}

/// Removes a stale lock file (or a dead waiter's ticket) if its name still names the inode we
/// probed through `file`, and adds it to `removed`; a failure goes to `problems`. Under the
/// sentinel, so nobody can publish a new lock (or take a ticket) at that name between the
/// check and the unlink; both go through the directory held open, so no symlink swapped in
/// meanwhile can point them elsewhere. A dry run only reports it.
pub(crate) fn reclaim(
    entry: &Entry<'_>,
    file: &File,
    stale: Stale,
    (removed, problems): (&mut Vec<PathBuf>, &mut Vec<ScanProblem>),
    _sentinel: &SentinelGuard,
) {
    let path = entry.path.clone();
    if stale == Stale::DryRun {
        return removed.push(path);
    }
    match still_names(entry, file) {
        Ok(true) => {
            fault::pause("scan:reclaim-checked");
            match entry.dir.remove_file(&entry.name) {
                Ok(()) => removed.push(path),
                // Removed by someone else since the check: not in anyone's way.
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => problems.push(ScanProblem {
                    path,
                    kind: ProblemKind::ReclaimFailed {
                        reason: in_words(&err),
                    },
                }),
            }
        }
        // Gone, or the name now belongs to another inode: not ours to touch.
        Ok(false) => {}
        Err(err) => problems.push(ScanProblem {
            path,
            kind: ProblemKind::ReclaimFailed {
                reason: in_words(&err),
            },
        }),
    }
}

/// Moves a stale file with an invalid record to `.<name>.invalid-<pid>-<n>` beside it (the
/// name shortened to fit a file name), so that it no longer blocks anyone but nothing is lost:
/// one rename that never replaces an existing file, so a rename refused (by a sticky
/// directory, say) leaves no second name behind. When that fails, the reason says why and
/// what to do. Under the sentinel, for the same reason as [`reclaim`]. A dry run only
/// reports it.
pub(super) fn move_aside(
    entry: &Entry<'_>,
    file: &File,
    reason: String,
    stale: Stale,
    listing: &mut LockListing,
    _sentinel: &SentinelGuard,
) {
    let path = entry.path.clone();
    if stale == Stale::DryRun {
        let kind = ProblemKind::WouldMoveAside { reason };
        return listing.problems.push(ScanProblem { path, kind });
    }
    let moved = (|| -> io::Result<Option<PathBuf>> {
        if !still_names(entry, file)? {
            // Gone, or replaced by another file: not the file we judged.
            return Ok(None);
        }
        let name = entry.name.as_bytes();
        let pid = std::process::id();
        for n in 0..100 {
            let aside = aside_name(name, pid, n);
            match entry.dir.rename_noreplace(&entry.name, &aside) {
                Ok(()) => return Ok(Some(entry.dir.join(aside))),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "a hundred names to move it to are all taken",
        ))
    })();
    let (reason, moved_to) = match moved {
        Ok(moved_to) => (reason, moved_to),
        Err(err) => (
            format!(
                "{reason}; moving it aside failed: {}{}",
                in_words(&err),
                what_to_do_when_moving_fails(&err, file)
            ),
            None,
        ),
    };
    listing.problems.push(ScanProblem {
        path,
        kind: ProblemKind::MovedAside { reason, moved_to },
    });
}

/// What the user can do about a stale file that could not be moved aside.
fn what_to_do_when_moving_fails(err: &io::Error, file: &File) -> String {
    let owner = file.metadata().map(|meta| meta.uid()).ok();
    match (err.kind(), owner) {
        (io::ErrorKind::PermissionDenied, Some(uid)) => format!(
            "; this user may not rename it (in a sticky directory only the file's owner, \
             uid {uid}, the directory's owner and root may): one of them can run \
             `scope-lock clean`, or remove the file"
        ),
        _ => "; remove the file by hand once its cause is fixed".to_owned(),
    }
}

/// `.<name>.invalid-<pid>-<n>`, with `name` cut short so the whole fits in a file name.
fn aside_name(name: &[u8], pid: u32, n: usize) -> OsString {
    let suffix = format!(".invalid-{pid}-{n}");
    let keep = name.len().min(NAME_MAX - 1 - suffix.len());
    let mut aside = Vec::with_capacity(NAME_MAX);
    aside.push(b'.');
    aside.extend_from_slice(&name[..keep]);
    aside.extend_from_slice(suffix.as_bytes());
    OsString::from_vec(aside)
}

/// Whether the entry's name names, right now, the inode `file` is open on.
fn still_names(entry: &Entry<'_>, file: &File) -> io::Result<bool> {
    Ok(entry.dir.id_of(&entry.name)? == Some(sys::file_id(file)?))
}

#[cfg(test)]
mod tests {
    use super::super::release::unlink_if_ours;
    use super::super::scan::tests::{held_dir, x_lock};
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Judged stale through `file`, then replaced at its name by another file: a cleaning scan
    /// must leave the newcomer alone, whether it would reclaim or move aside what it judged.
    #[test]
    fn a_stale_file_replaced_after_it_was_judged_is_neither_reclaimed_nor_moved() -> TestResult {
        let (dir, sentinel) = held_dir()?;
        let path = dir.path().join("x.lock");
        std::fs::write(&path, "judged")?;
        let judged = File::open(&path)?;
        let newcomer = dir.path().join("newcomer");
        std::fs::write(&newcomer, "newcomer")?;
        std::fs::rename(&newcomer, &path)?;

        let mut listing = LockListing::default();
        let found = (&mut listing.reclaimed, &mut listing.problems);
        reclaim(&x_lock(&sentinel), &judged, Stale::Clean, found, &sentinel);
        assert_eq!(listing, LockListing::default());
        assert_eq!(std::fs::read(&path)?, b"newcomer");

        move_aside(
            &x_lock(&sentinel),
            &judged,
            "invalid".into(),
            Stale::Clean,
            &mut listing,
            &sentinel,
        );
        let kind = ProblemKind::MovedAside {
            reason: "invalid".into(),
            moved_to: None,
        };
        assert_eq!(
            listing.problems,
            [ScanProblem {
                path: path.clone(),
                kind
            }]
        );
        assert_eq!(std::fs::read(&path)?, b"newcomer");
        let names: Vec<_> = std::fs::read_dir(dir.path())?
            .map(|entry| entry.map(|entry| entry.file_name()))
            .collect::<Result<_, _>>()?;
        assert_eq!(names.len(), 2, "moved aside after all: {names:?}");
        Ok(())
    }

    /// An unlink that fails is reported, by a reclaim and by a release alike, never passed
    /// over as if the file were gone. (A directory stands in for a file that cannot be
    /// unlinked: `unlink` refuses it whoever asks, root included.)
    #[test]
    fn an_unlink_that_fails_is_reported_by_reclaim_and_release() -> TestResult {
        let (dir, sentinel) = held_dir()?;
        let path = dir.path().join("x.lock");
        std::fs::create_dir(&path)?;
        let judged = File::open(&path)?;

        let mut listing = LockListing::default();
        let found = (&mut listing.reclaimed, &mut listing.problems);
        reclaim(&x_lock(&sentinel), &judged, Stale::Clean, found, &sentinel);
        match listing.problems.as_slice() {
            [
                ScanProblem {
                    path: reported,
                    kind: ProblemKind::ReclaimFailed { .. },
                },
            ] if *reported == path => {}
            problems => panic!("the failed unlink is not reported: {problems:?}"),
        }
        assert!(listing.reclaimed.is_empty());

        let err = unlink_if_ours(&path, sys::file_id(&judged)?, &sentinel).unwrap_err();
        assert_eq!(err.path(), Some(path.as_path()), "{err}");
        assert!(path.is_dir());
        Ok(())
    }
}
