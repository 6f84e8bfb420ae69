//! Step 4, publication (docs/protocol.md, "How this crate takes a lock"): the record written to
//! a fresh dot file, flocked, and only then renamed to the lock file's name, never over one.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use super::in_the_way::not_a_lock_file;
use super::sentinel::{SentinelGuard, open_parent};
use crate::error::{Error, ErrorKind};
use crate::fault;
use crate::listing::{LockListing, ProblemKind};
use crate::record::LockRecord;
use crate::request;
use crate::sys::{self, FileId, FileType};

/// Files being published are named `<PUBLISH_PREFIX><random><PUBLISH_SUFFIX>`.
pub(super) const PUBLISH_PREFIX: &str = ".scope-lock-publish-";
pub(super) const PUBLISH_SUFFIX: &str = ".tmp";

/// A stale file at our own name that the scan could not remove or move aside would make
/// publication fail with a confusing `EEXIST`: say what is in the way, and why.
pub(super) fn stale_file_in_the_way(
    listing: &LockListing,
    target: &Path,
    sentinel: &SentinelGuard,
) -> Result<(), Error> {
    for problem in listing.problems.iter().filter(|p| p.path == target) {
        if let ProblemKind::MovedAside {
            reason,
            moved_to: None,
        }
        | ProblemKind::ReclaimFailed { reason } = &problem.kind
            && open_parent(sentinel, target, false)
                .ok()
                .flatten()
                .is_some_and(|(dir, name)| dir.id_of(name).ok().flatten().is_some())
        {
            return Err(Error::at_path(
                ErrorKind::StaleInTheWay,
                target,
                format!("a stale lock file is in the way and could not be removed ({reason})"),
            ));
        }
    }
    Ok(())
}

/// A lock just published: what a [`ScopeGuard`](crate::ScopeGuard) holds, and all it needs
/// to release it. The protocol returns it; only the manager makes a guard of it.
#[derive(Debug)]
pub(crate) struct Published {
    /// The lock file, open and flocked: the lock itself.
    pub(crate) file: File,
    /// The inode `file` is open on, which `path` must still name for a release to unlink it.
    pub(crate) id: FileId,
    pub(crate) path: PathBuf,
    /// `.running/`, as the sentinel opened it.
    pub(crate) running_dir: PathBuf,
    pub(crate) record: LockRecord,
    /// The record's fencing token.
    pub(crate) token: u64,
}

/// Writes `record` with the fencing token `token`, flocks it, and gives it the name `target` without ever overwriting.
/// Returns what was published: the open, flocked descriptor and the identity of its inode,
/// with the record and where it is. Under the sentinel, so
/// that the scan's verdict still holds when the name appears. Everything happens in the
/// target's directory held open (made, for a nested name, with `.running/`'s mode): the file
/// is created there (`O_EXCL`, mode 0444 whatever the umask) and renamed there.
pub(crate) fn publish(
    target: &Path,
    record: LockRecord,
    token: u64,
    sentinel: &SentinelGuard,
) -> Result<Published, Error> {
    let record = record.fenced(token);
    let json = readable_json(&record, target)?;
    let Some((dir, name)) = open_parent(sentinel, target, true)? else {
        // `open_parent` makes what is missing.
        return Err(Error::at_path(
            ErrorKind::Interference,
            target,
            "its directory vanished while it was made",
        ));
    };
    let (staged, file) = dir
        .create_unique(PUBLISH_PREFIX, PUBLISH_SUFFIX, sys::LOCK_FILE_MODE)
        .map_err(|err| Error::io("cannot write a new lock file in", dir.path(), err))?;
    let staged = Staged {
        dir: &dir,
        name: staged,
        published: false,
    };
    let staged_path = dir.join(&staged.name);
    fault::pause("acquire:staged-created");
    (&file)
        .write_all(json.as_bytes())
        .map_err(|err| Error::io("cannot write a new lock file", &staged_path, err))?;
    fault::pause("acquire:staged-written");
    let locked = sys::try_lock_exclusive(&file)
        .map_err(|err| Error::io("cannot lock", &staged_path, err))?;
    if !locked {
        return Err(Error::at_path(
            ErrorKind::Interference,
            &staged_path,
            "a freshly created file is already locked by someone else",
        ));
    }
    fault::pause("acquire:staged-locked");
    staged.publish_as(&name).map_err(|err| {
        if err.kind() == io::ErrorKind::AlreadyExists {
            match dir.stat(&name) {
                Ok(Some(stat)) if stat.file_type != FileType::RegularFile => {
                    not_a_lock_file(target, stat.file_type)
                }
                _ => Error::at_path(
                    ErrorKind::Interference,
                    target,
                    "appeared while we held the directory sentinel; some writer does not \
                     follow the locking protocol",
                ),
            }
        } else {
            Error::io("cannot publish lock file", target, err)
        }
    })?;
    let id = sys::file_id(&file).map_err(|err| Error::io("cannot stat", target, err))?;
    fault::pause("acquire:published");
    Ok(Published {
        file,
        id,
        path: target.to_path_buf(),
        running_dir: sentinel.dir().path().to_path_buf(),
        record,
        token,
    })
}

/// A file being published, under its hidden name: removed again unless it gets its final one.
struct Staged<'a> {
    dir: &'a sys::Dir,
    name: OsString,
    published: bool,
}

impl Staged<'_> {
    /// Gives it the name `target` in the same directory, never replacing a file there.
    fn publish_as(mut self, target: &OsStr) -> io::Result<()> {
        self.dir.rename_noreplace(&self.name, target)?;
        self.published = true;
        Ok(())
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if !self.published {
            let _ = self.dir.remove_file(&self.name);
        }
    }
}

/// The JSON of `record`, refused if a scan could not read it back as the same record (B10).
/// [`LockRequest::record`](crate::LockRequest::record) refused an oversized one already; this is the last check before
/// anything is published.
fn readable_json(record: &LockRecord, target: &Path) -> Result<String, Error> {
    let json = request::json_that_fits(record, &target.display().to_string())?;
    match LockRecord::from_json(json.as_bytes()) {
        Ok(read_back) if read_back == *record => Ok(json),
        _ => Err(Error::input(
            ErrorKind::InvalidScope,
            format!(
                "the lock record for {} would not read back as written; this is a bug in \
                 scope-lock",
                target.display()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::MAX_RECORD_BYTES;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A record whose JSON is `len` bytes long: its one scope entry padded to fit.
    fn record_of_len(len: usize) -> Result<LockRecord, Box<dyn std::error::Error>> {
        let with = |entry: usize| {
            let path = format!("/{}", "p".repeat(entry));
            LockRecord::new("x", vec![path], 5, "t")
        };
        let base = with(0).to_json().len();
        let record = with(len.checked_sub(base).ok_or("too short")?);
        assert_eq!(record.to_json().len(), len);
        Ok(record)
    }

    /// Writers refuse exactly what readers would: a record of [`MAX_RECORD_BYTES`] is
    /// published, one byte more is refused as too large.
    #[test]
    fn a_record_of_the_size_cap_is_written_and_one_byte_more_is_refused() -> TestResult {
        let cap = usize::try_from(MAX_RECORD_BYTES)?;
        let target = Path::new("/run/x.lock");
        let at_cap = record_of_len(cap)?;
        assert_eq!(readable_json(&at_cap, target)?, at_cap.to_json());
        let err = readable_json(&record_of_len(cap + 1)?, target).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidScope, "{err}");
        assert!(err.to_string().contains("over the limit"), "{err}");
        Ok(())
    }

    /// Whatever a scan would not read back as written is never published. A pid of 0 is one
    /// such record (the reader wants a positive process id); acquiring never makes one, but
    /// the check is what keeps any such mistake from blocking a directory.
    #[test]
    fn a_record_that_would_not_read_back_is_refused() {
        let record = LockRecord::new("x", vec!["/x".into()], 0, "t");
        let err = readable_json(&record, Path::new("/run/x.lock")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidScope, "{err}");
        assert!(err.to_string().contains("would not read back"), "{err}");
    }
}
