//! The fixture of the tests that drive the library from outside: this crate's integration tests
//! and the regression suite (`tests/`), which adds what only it needs (its worker binary).
//!
//! Compiled in only with the `test-support` feature. Here, and not in a fixture crate of its
//! own: such a crate would depend on `scope-lock`, this crate could take it only as a
//! dev-dependency, and Cargo would build a second `scope-lock` for it whose types do not match
//! those of the library under test.
//!
//! A helper that finds the test wrong panics, failing it, as an assertion does; a helper that
//! cannot do its work (a temporary directory, a file it writes) returns the error instead.

#![allow(
    clippy::panic,
    reason = "the expect_ helpers fail the test they are called from, as assertions do"
)]

use std::error::Error;
use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tempfile::TempDir;

use crate::{
    AcquireError, Conflict, LockListing, LockManager, LockRecord, LockRequest, ScanProblem,
    ScopeGuard,
};

#[cfg(feature = "etcd")]
pub mod etcd;

/// What a test returns: `?` fails it with the error.
pub type TestResult = Result<(), Box<dyn Error>>;

/// A pid above any kernel's `pid_max` (at most 2^22): `kill(pid, 0)` answers ESRCH.
pub const DEAD_PID: u32 = 99_999_999;

/// Where the project's loops keep their state, as in little-loops.
const LOOPS_DIR: &str = ".loops";

/// A temporary project: `root` (canonical, so normalised scopes equal the paths we build) with
/// the lock manager of `root/.loops`. The directory is removed when the fixture drops.
#[derive(Debug)]
pub struct Fixture {
    _dir: TempDir,
    /// The project directory.
    pub root: PathBuf,
    /// The lock manager of `root/.loops`.
    pub locks: LockManager,
}

/// A new [`Fixture`] in a temporary directory.
///
/// # Errors
///
/// When the temporary directory cannot be made or resolved.
pub fn fixture() -> Result<Fixture, Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let root = fs::canonicalize(dir.path())?;
    let locks = LockManager::new(root.join(LOOPS_DIR));
    Ok(Fixture {
        _dir: dir,
        root,
        locks,
    })
}

impl Fixture {
    /// The absolute path of `rel` inside the project, as a scope entry.
    pub fn path(&self, rel: &str) -> String {
        self.root.join(rel).to_string_lossy().into_owned()
    }

    /// Creates the directory `rel` inside the project and returns it as a scope entry, for
    /// tests that need the scope to exist (another process changes into it, or its mode).
    ///
    /// # Errors
    ///
    /// When the directory cannot be made.
    pub fn scope_dir(&self, rel: &str) -> Result<String, Box<dyn Error>> {
        fs::create_dir_all(self.root.join(rel))?;
        Ok(self.path(rel))
    }

    /// `.loops/`, the directory the lock manager was made with, for other processes and
    /// implementations to use the same locks.
    pub fn loops_dir(&self) -> PathBuf {
        self.root.join(LOOPS_DIR)
    }

    /// `.loops/.running/`, where the lock files are.
    pub fn running(&self) -> &Path {
        self.locks.running_dir()
    }

    /// A request of `name` over the project path `rel`.
    pub fn request(&self, name: &str, rel: &str) -> LockRequest {
        LockRequest::new(name).scope([self.path(rel)])
    }

    /// Acquires `name` over the project path `rel`.
    pub fn acquire(&self, name: &str, rel: &str) -> Result<ScopeGuard, AcquireError> {
        self.locks.try_acquire(&self.request(name, rel))
    }

    /// Acquires `name` over the project paths `rels`.
    pub fn acquire_paths(&self, name: &str, rels: &[&str]) -> Result<ScopeGuard, AcquireError> {
        let scope: Vec<String> = rels.iter().map(|r| self.path(r)).collect();
        self.locks.try_acquire(&LockRequest::new(name).scope(scope))
    }

    /// `try_acquire(request)` on another thread, failing if it does not return within a minute
    /// (see [`without_hanging`]); `what` names the call in that failure.
    ///
    /// # Errors
    ///
    /// When the call hangs; what it returns is the inner result.
    pub fn try_acquire_without_hanging(
        &self,
        what: &str,
        request: LockRequest,
    ) -> Result<Result<ScopeGuard, AcquireError>, Box<dyn Error>> {
        let locks = self.locks.clone();
        without_hanging(what, move || locks.try_acquire(&request))
    }

    /// Creates `.running/`, to put things in it before the manager ever ran.
    ///
    /// # Errors
    ///
    /// When the directory cannot be made.
    pub fn init(&self) -> Result<(), Box<dyn Error>> {
        fs::create_dir_all(self.running())?;
        Ok(())
    }

    /// Writes `bytes` as the lock file `<stem>.lock`, as a foreign writer would.
    ///
    /// # Errors
    ///
    /// When the file or its directory cannot be written.
    pub fn write_lock_file(&self, stem: &str, bytes: &[u8]) -> Result<PathBuf, Box<dyn Error>> {
        let path = self.running().join(format!("{stem}.lock"));
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, bytes)?;
        Ok(path)
    }

    /// Writes `<stem>.lock` over `scope` as the original writes it, for a process that does not
    /// exist: a stale lock, which the next cleaning scan reclaims.
    ///
    /// # Errors
    ///
    /// As [`Fixture::write_lock_file`].
    pub fn write_dead_lock(&self, stem: &str, scope: &str) -> Result<PathBuf, Box<dyn Error>> {
        let record = LockRecord::new(
            stem,
            vec![scope.to_owned()],
            DEAD_PID,
            "2026-01-01T00:00:00.000000+00:00",
        );
        self.write_lock_file(stem, record.to_json().as_bytes())
    }

    /// The `*.lock` files under `.running/`, recursively, dot entries excluded.
    ///
    /// # Errors
    ///
    /// When a directory under `.running/` cannot be read.
    pub fn lock_files(&self) -> Result<Vec<PathBuf>, Box<dyn Error>> {
        let mut found = Vec::new();
        if self.running().exists() {
            collect_lock_files(self.running(), &mut found)?;
        }
        found.sort();
        Ok(found)
    }
}

fn collect_lock_files(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), Box<dyn Error>> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            collect_lock_files(&entry.path(), found)?;
        } else if name.ends_with(".lock") {
            found.push(entry.path());
        }
    }
    Ok(())
}

/// The conflict of a refused acquire.
///
/// # Panics
///
/// On success or another error, failing the test.
pub fn expect_conflict(result: Result<ScopeGuard, AcquireError>) -> Conflict {
    match result {
        Err(AcquireError::Conflict(conflict)) => *conflict,
        Err(err @ (AcquireError::Failed(_) | AcquireError::Timeout(_))) => {
            panic!("expected a conflict, got: {err}")
        }
        Ok(guard) => panic!("expected a conflict, but acquired {guard:?}"),
    }
}

/// The error of a failed acquire.
///
/// # Panics
///
/// On success or a conflict, failing the test.
pub fn expect_failure(result: Result<ScopeGuard, AcquireError>) -> crate::Error {
    match result {
        Err(AcquireError::Failed(err)) => err,
        Err(err @ (AcquireError::Conflict(_) | AcquireError::Timeout(_))) => {
            panic!("expected an error, got: {err}")
        }
        Ok(guard) => panic!("expected an error, but acquired {guard:?}"),
    }
}

/// The problem `listing` reports for the file at `path`.
///
/// # Errors
///
/// When it reports none: the error names the path and shows the listing.
pub fn problem_at<'a>(listing: &'a LockListing, path: &Path) -> Result<&'a ScanProblem, String> {
    listing
        .problems()
        .iter()
        .find(|p| p.path() == path)
        .ok_or_else(|| format!("{} is not reported: {listing:#?}", path.display()))
}

/// Runs `f` on another thread and fails the test if it has not returned within a minute: for
/// calls that a wrong implementation would block forever (opening a FIFO, flocking ourselves).
///
/// # Errors
///
/// When `f` has not returned within the minute (a panic in `f` reads the same).
pub fn without_hanging<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Box<dyn Error>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .map_err(|_| format!("{what} did not return within 60 s: it hangs").into())
}

/// Whether some other open file description holds the flock of `path`: opens the file anew and
/// tries `flock(LOCK_EX | LOCK_NB)`. (If the probe gets the lock, closing it at return lets go.)
///
/// # Errors
///
/// When `path` cannot be opened or the probe fails otherwise than by finding it held.
#[allow(
    clippy::disallowed_methods,
    reason = "a probe checks the library from outside, so it flocks on its own"
)]
pub fn flock_is_held(path: &Path) -> Result<bool, Box<dyn Error>> {
    let probe = File::open(path)?;
    match probe.try_lock() {
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(err)) => Err(format!("probing {}: {err}", path.display()).into()),
    }
}

/// Asserts that [`flock_is_held`] for `path`; `when` says at which point of the test.
///
/// # Errors
///
/// As [`flock_is_held`].
///
/// # Panics
///
/// When nothing holds the flock, failing the test.
pub fn assert_held(path: &Path, when: &str) -> TestResult {
    assert!(
        flock_is_held(path)?,
        "{} is not flocked {when}",
        path.display()
    );
    Ok(())
}
