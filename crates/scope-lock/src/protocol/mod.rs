//! The lock protocol, by its steps. Start here.
//!
//! A scope lock is a file `.running/<name>.lock` holding a [`LockRecord`], **and** an open
//! descriptor of that file, exclusively `flock`ed, owned by a [`ScopeGuard`](crate::ScopeGuard)
//! for exactly as long as the lock is held. The file says *what* is held; the flock says *that*
//! it is held. The specification is `docs/protocol.md`, "How this crate takes a lock": each of
//! its steps is one module here, whose docs point at the step rather than restate it.
//!
//! Every decision is taken under the directory sentinel `.running/.acquire.lock`. Each step
//! that must run under it takes the [`SentinelGuard`] as a token, so none can be called
//! without it.
//!
//! 1. **Sentinel** ([`sentinel`]): `.running/` opened, the sentinel locked within the bound,
//!    and the lock file's directory reached from there, one component at a time.
//! 2. **Scan** ([`scan`](mod@scan)): every `*.lock` below `.running/` classified; what is stale is
//!    reclaimed or moved aside ([`reclaim`]); then the waiting [`queue`]'s tickets are read.
//! 3. **Decide** ([`decide`](mod@decide)): the first live lock or earlier waiter that blocks us, by the
//!    overlap rules, leaving out our ancestors' locks ([`ancestry`]).
//! 4. **Publish** ([`publish`]): the record, with the next fencing token ([`token`]), written,
//!    flocked and renamed into place.
//! 5. **Release** ([`release`](mod@release)): unlinked if still ours, then the descriptor closed.
//! 6. **Wait** ([`wait`]): attempts repeated, with a watch or a poll between them.
//!
//! The sequences that run them: an attempt to acquire ([`acquire`]) is steps 1 to 4 under
//! one hold of the sentinel, and `try_acquire` is one attempt; `acquire_until` ([`wait`])
//! repeats attempts with step 6 between them; [`find_conflict`] is steps 1 to 3; [`list`] is
//! steps 1 and 2, and with [`Stale::DryRun`] a dry run that only reports what step 2 would
//! change; [`set_aside_invalid`] is step 1 and one move aside; release is step 5.
//!
//! Every lock is taken and ended in [`sys`], and every file below `.running/` is opened there;
//! `clippy.toml` forbids std's lock methods anywhere else. Below `.running/`, nothing is
//! reached by a path: every name is used relative to a directory held open, opened from
//! `.running/` down without following symlinks (docs/protocol.md, "Sharing a directory between
//! users").

mod acquire;
mod ancestry;
mod decide;
mod in_the_way;
mod publish;
mod queue;
mod reclaim;
mod release;
mod scan;
mod sentinel;
mod token;
mod wait;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::conflict::Conflict;
use crate::error::{Error, ErrorKind};
use crate::listing::{LockListing, ProblemKind, Waiter};
use crate::record::{LockRecord, MAX_RECORD_BYTES};
use crate::request::LockRequest;
use crate::scope::ScopeIndex;
use crate::sys;

use acquire::normalize_scope;
#[cfg(feature = "etcd")]
pub(crate) use acquire::normalize_scope_in;
pub(crate) use acquire::{lock_path, try_acquire};
use ancestry::Ancestry;
#[cfg(feature = "etcd")]
pub(crate) use ancestry::Kinship;
pub(crate) use decide::decide;
use in_the_way::{not_a_lock_file, open_error};
pub(crate) use publish::Published;
#[cfg(feature = "etcd")]
pub(crate) use queue::{Queue, Queued};
use reclaim::{Entry, Stale, move_aside};
pub(crate) use release::release;
pub(crate) use scan::Scan;
use scan::scan;
use sentinel::{SentinelGuard, open_parent, open_running_dir};
pub(crate) use wait::acquire_until;

/// What the decision of [`find_conflict`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Question {
    /// Everything [`try_acquire`] would: the scope, the singleton and the lock file's name.
    Request,
    /// The scope and the singleton only, whatever lock file the request would take.
    Scope,
}

/// The conflict that would make [`try_acquire`] refuse `request` right now (or, for
/// [`Question::Scope`], any acquire of its scope): steps 1 to 3.
pub(crate) fn find_conflict(
    running_dir: &Path,
    request: &LockRequest,
    question: Question,
    bound: Duration,
    invalid_grace: Duration,
) -> Result<Option<Conflict>, Error> {
    match question {
        Question::Request => request.validate()?,
        Question::Scope => request.validate_scope()?,
    }
    let scope = normalize_scope(request)?;
    if !present(running_dir)? {
        return Ok(None);
    }
    let sentinel = SentinelGuard::lock(running_dir, bound)?;
    let listing = scan(Scan::clean(invalid_grace), &sentinel)?;
    let queue = queue::scan(Stale::Clean, &sentinel)?;
    let target = lock_path(running_dir, request);
    Ok(decide(
        &listing,
        &queue,
        request,
        &ScopeIndex::new(&scope),
        (question == Question::Request).then_some(target.as_path()),
        None,
        &mut Ancestry::<ancestry::System>::default(),
    ))
}

/// Every live lock and every problem: steps 1 and 2 (the queue too, for its stale tickets),
/// cleaning or only reporting as `stale` says. A missing directory holds no locks.
pub(crate) fn list(
    running_dir: &Path,
    bound: Duration,
    scan_mode: Scan,
) -> Result<LockListing, Error> {
    let stale = scan_mode.stale;
    if !present(running_dir)? {
        return Ok(LockListing {
            dry_run: stale == Stale::DryRun,
            ..LockListing::default()
        });
    }
    // A dry run writes nothing, not even the sentinel: it may look at a read-only directory.
    let sentinel = match stale {
        Stale::Clean => SentinelGuard::lock(running_dir, bound)?,
        Stale::DryRun => SentinelGuard::look(running_dir, bound)?,
    };
    let mut listing = scan(scan_mode, &sentinel)?;
    let queue = queue::scan(stale, &sentinel)?;
    listing.waiters = queue.tickets.into_iter().map(Waiter::from).collect();
    listing.stale_tickets = queue.stale;
    listing.problems.extend(queue.problems);
    listing.problems.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(listing)
}

/// Moves aside the lock file `request` names if it is not flocked and its record cannot be
/// read, under the sentinel: `LockManager::set_aside_invalid`.
pub(crate) fn set_aside_invalid(
    running_dir: &Path,
    request: &LockRequest,
    bound: Duration,
) -> Result<PathBuf, Error> {
    request.validate()?;
    let sentinel = SentinelGuard::lock(running_dir, bound)?;
    let target = lock_path(sentinel.dir().path(), request);
    let missing = || Error::io("cannot open", &target, io::ErrorKind::NotFound.into());
    let Some((dir, name)) = open_parent(&sentinel, &target, false)? else {
        return Err(missing());
    };
    let entry = Entry::new(&dir, name);
    let file = entry
        .dir
        .open_file(&entry.name)
        .map_err(|err| open_error(entry.dir, &entry.name.to_string_lossy(), err))?;
    let meta = file
        .metadata()
        .map_err(|err| Error::io("cannot stat", &target, err))?;
    if !meta.is_file() {
        return Err(not_a_lock_file(&target, sys::file_type_of(&meta)));
    }
    let not_invalid = |why: &str| Error::at_path(ErrorKind::NotInvalid, &target, why);
    if !sys::try_lock_exclusive(&file).map_err(|err| Error::io("cannot lock", &target, err))? {
        return Err(not_invalid(
            "is flocked, so its holder is alive: not moved; `scope-lock break` shows who holds \
             it, and `--kill` stops them",
        ));
    }
    let bytes = sys::read_sized(&file, meta.len(), MAX_RECORD_BYTES + 1)
        .map_err(|err| Error::io("cannot read", &target, err))?;
    let reason = match LockRecord::from_json(&bytes) {
        Ok(_) => {
            return Err(not_invalid(
                "holds a valid record: not moved; a scan reclaims it once its holder is gone \
                 (`scope-lock clean`), and `scope-lock break` shows its holder",
            ));
        }
        Err(err) => format!("{err}; moved aside on request"),
    };
    let mut listing = LockListing::default();
    move_aside(&entry, &file, reason, Stale::Clean, &mut listing, &sentinel);
    match listing.problems.pop().map(|problem| problem.kind) {
        Some(ProblemKind::MovedAside {
            moved_to: Some(moved_to),
            ..
        }) => Ok(moved_to),
        Some(ProblemKind::MovedAside { reason, .. }) => Err(Error::at_path(
            ErrorKind::StaleInTheWay,
            &target,
            format!("cannot be moved aside: {reason}"),
        )),
        // Removed or replaced between the open and the move: nothing of ours to move.
        _ => Err(Error::at_path(
            ErrorKind::Interference,
            &target,
            "was removed or replaced while it was being moved aside; look again",
        )),
    }
}

/// Whether the directory exists: asking and listing never create it.
fn present(running_dir: &Path) -> Result<bool, Error> {
    match open_running_dir(running_dir) {
        Err(err) if err.io_error().map(io::Error::kind) == Some(io::ErrorKind::NotFound) => {
            Ok(false)
        }
        Err(err) => Err(err),
        Ok(_) => Ok(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::ScanProblem;
    use crate::request::MAX_NESTING;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A lock of the original's (no flock; its pid, ours, alive) nested `depth` directories
    /// deep in `running_dir`.
    fn write_nested_lock(
        running_dir: &Path,
        depth: usize,
    ) -> Result<PathBuf, Box<dyn std::error::Error>> {
        let path = running_dir.join(format!("{}x.lock", "d/".repeat(depth)));
        std::fs::create_dir_all(path.parent().ok_or("no parent")?)?;
        let record = LockRecord::new("x", vec!["/x".into()], std::process::id(), "t");
        std::fs::write(&path, record.to_json())?;
        Ok(path)
    }

    /// A dry-run listing of `running_dir`, which leaves every file as it is.
    fn dry_run(running_dir: &Path) -> Result<LockListing, Error> {
        let grace = crate::DEFAULT_INVALID_GRACE;
        list(running_dir, Duration::from_secs(60), Scan::dry_run(grace))
    }

    /// The live locks' paths, in the listing's order.
    fn live_paths(listing: &LockListing) -> Vec<&Path> {
        listing
            .locks
            .iter()
            .map(|lock| lock.path.as_path())
            .collect()
    }

    /// Scans look as deep as names may be nested, and no deeper.
    #[test]
    fn scans_see_locks_nested_as_deep_as_names_may_be_and_no_deeper() -> TestResult {
        let dir = tempfile::tempdir()?;
        let deepest = write_nested_lock(dir.path(), MAX_NESTING)?;
        let too_deep = write_nested_lock(dir.path(), MAX_NESTING + 1)?;
        let listing = dry_run(dir.path())?;
        let listed = live_paths(&listing);
        assert_eq!(listed, [deepest.as_path()]);
        assert!(listing.problems.is_empty(), "{listing:?}");
        assert!(too_deep.exists());
        Ok(())
    }

    /// The reader's size cap is exactly [`MAX_RECORD_BYTES`]: a record padded to it is a lock,
    /// one byte more is a file too large to be one (and says so).
    #[test]
    fn a_record_of_the_size_cap_is_read_and_one_byte_more_is_too_large() -> TestResult {
        let dir = tempfile::tempdir()?;
        let pid = std::process::id();
        let json = LockRecord::new("x", vec!["/x".into()], pid, "t").to_json();
        let mut padded = json.into_bytes();
        padded.resize(usize::try_from(MAX_RECORD_BYTES)?, b' ');
        let at_cap = dir.path().join("at-cap.lock");
        std::fs::write(&at_cap, &padded)?;
        padded.push(b' ');
        let over = dir.path().join("over.lock");
        std::fs::write(&over, &padded)?;

        let listing = dry_run(dir.path())?;
        let listed = live_paths(&listing);
        assert_eq!(listed, [at_cap.as_path()]);
        match listing.problems.as_slice() {
            [
                ScanProblem {
                    path,
                    kind:
                        ProblemKind::BlocksMaybeLive {
                            reason,
                            pid: Some(read),
                        },
                },
            ] if *path == over && *read == pid => {
                assert!(reason.contains("larger than"), "{reason}");
            }
            problems => panic!("not reported as too large: {problems:?}"),
        }
        Ok(())
    }
}
