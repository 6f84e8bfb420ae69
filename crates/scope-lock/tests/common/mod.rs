//! The test fixture and helpers, written once for both packages that test the library: this
//! crate's integration tests (`matrix`, `held_for_life`, `bad_input`: `mod common;`) and the
//! regression suite in `tests/`, whose own `tests/tests/common/mod.rs` compiles this file into
//! its test binaries with `#[path]` and adds what only it needs (the worker binary).
//!
//! Why a shared source file and not a shared crate: a fixture crate hands out `scope-lock`
//! types, so it depends on `scope-lock`, and this crate could use it only as a dev-dependency:
//! a cycle. Cargo resolves it by building `scope-lock` once more for the fixture crate, apart
//! from the library under test with its unit tests, and there the two copies' types do not
//! match. Compiled into each test binary, the fixture uses the one `scope-lock` that binary
//! links.

// Every test file is a crate of its own and uses a different subset of these helpers: without
// this, each test binary would report the helpers it leaves unused as dead code.
#![allow(dead_code)]

use std::error::Error;
use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use scope_lock::{AcquireError, Conflict, LockManager, LockRequest, ScopeGuard};
use tempfile::TempDir;

pub(crate) type TestResult = Result<(), Box<dyn Error>>;

/// A pid above any kernel's `pid_max` (at most 2^22): `kill(pid, 0)` answers ESRCH.
pub(crate) const DEAD_PID: u32 = 99_999_999;

/// Where the project's loops keep their state, as in little-loops.
const LOOPS_DIR: &str = ".loops";

/// A temporary project: `root` (canonical, so normalised scopes equal the paths we build) with
/// the lock manager of `root/.loops`. The directory is removed when the fixture drops.
pub(crate) struct Fixture {
    _dir: TempDir,
    pub(crate) root: PathBuf,
    pub(crate) locks: LockManager,
}

pub(crate) fn fixture() -> Result<Fixture, Box<dyn Error>> {
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
    pub(crate) fn path(&self, rel: &str) -> String {
        self.root.join(rel).to_string_lossy().into_owned()
    }

    /// Creates the directory `rel` inside the project and returns it as a scope entry, for
    /// tests that need the scope to exist (another process changes into it, or its mode).
    pub(crate) fn scope_dir(&self, rel: &str) -> Result<String, Box<dyn Error>> {
        fs::create_dir_all(self.root.join(rel))?;
        Ok(self.path(rel))
    }

    /// `.loops/`, the directory the lock manager was made with, for other processes and
    /// implementations to use the same locks.
    pub(crate) fn loops_dir(&self) -> PathBuf {
        self.root.join(LOOPS_DIR)
    }

    /// `.loops/.running/`, where the lock files are.
    pub(crate) fn running(&self) -> &Path {
        self.locks.running_dir()
    }

    /// A request of `name` over the project path `rel`.
    pub(crate) fn request(&self, name: &str, rel: &str) -> LockRequest {
        LockRequest::new(name).scope([self.path(rel)])
    }

    /// Acquires `name` over the project path `rel`.
    pub(crate) fn acquire(&self, name: &str, rel: &str) -> Result<ScopeGuard, AcquireError> {
        self.locks.try_acquire(&self.request(name, rel))
    }

    /// Acquires `name` over the project paths `rels`.
    pub(crate) fn acquire_paths(
        &self,
        name: &str,
        rels: &[&str],
    ) -> Result<ScopeGuard, AcquireError> {
        let scope: Vec<String> = rels.iter().map(|r| self.path(r)).collect();
        self.locks.try_acquire(&LockRequest::new(name).scope(scope))
    }

    /// `try_acquire(request)` on another thread, failing if it does not return within a minute
    /// (see [`without_hanging`]); `what` names the call in that failure.
    pub(crate) fn try_acquire_without_hanging(
        &self,
        what: &str,
        request: LockRequest,
    ) -> Result<Result<ScopeGuard, AcquireError>, Box<dyn Error>> {
        let locks = self.locks.clone();
        without_hanging(what, move || locks.try_acquire(&request))
    }

    /// Creates `.running/`, to put things in it before the manager ever ran.
    pub(crate) fn init(&self) -> Result<(), Box<dyn Error>> {
        fs::create_dir_all(self.running())?;
        Ok(())
    }

    /// Writes `bytes` as the lock file `<stem>.lock`, as a foreign writer would.
    pub(crate) fn write_lock_file(
        &self,
        stem: &str,
        bytes: &[u8],
    ) -> Result<PathBuf, Box<dyn Error>> {
        let path = self.running().join(format!("{stem}.lock"));
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, bytes)?;
        Ok(path)
    }

    /// The `*.lock` files under `.running/`, recursively, dot entries excluded.
    pub(crate) fn lock_files(&self) -> Result<Vec<PathBuf>, Box<dyn Error>> {
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

/// The conflict of a refused acquire; panics (failing the test) on success or another error.
pub(crate) fn expect_conflict(result: Result<ScopeGuard, AcquireError>) -> Conflict {
    match result {
        Err(AcquireError::Conflict(conflict)) => *conflict,
        Err(err @ (AcquireError::Failed(_) | AcquireError::Timeout(_))) => {
            panic!("expected a conflict, got: {err}")
        }
        Ok(guard) => panic!("expected a conflict, but acquired {guard:?}"),
    }
}

/// The error of a failed acquire; panics (failing the test) on success or a conflict.
pub(crate) fn expect_failure(result: Result<ScopeGuard, AcquireError>) -> scope_lock::Error {
    match result {
        Err(AcquireError::Failed(err)) => err,
        Err(err @ (AcquireError::Conflict(_) | AcquireError::Timeout(_))) => {
            panic!("expected an error, got: {err}")
        }
        Ok(guard) => panic!("expected an error, but acquired {guard:?}"),
    }
}

/// Runs `f` on another thread and fails the test if it has not returned within a minute: for
/// calls that a wrong implementation would block forever (opening a FIFO, flocking ourselves).
pub(crate) fn without_hanging<T: Send + 'static>(
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
#[allow(
    clippy::disallowed_methods,
    reason = "a probe checks the library from outside, so it flocks on its own"
)]
pub(crate) fn flock_is_held(path: &Path) -> Result<bool, Box<dyn Error>> {
    let probe = File::open(path)?;
    match probe.try_lock() {
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(err)) => Err(format!("probing {}: {err}", path.display()).into()),
    }
}

/// Asserts that [`flock_is_held`] for `path`; `when` says at which point of the test.
pub(crate) fn assert_held(path: &Path, when: &str) -> TestResult {
    assert!(
        flock_is_held(path)?,
        "{} is not flocked {when}",
        path.display()
    );
    Ok(())
}
