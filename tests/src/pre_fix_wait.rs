//! Short ports of the waiting this repository's waiting acquire replaces, so that the tests of
//! BUG-1281, BUG-1361 and SL-1 can be shown failing on the code before the fix
//! (`SCOPE_LOCK_IMPL=pre-fix`). Test support only.
//!
//! The first two keep the fixed library for the lock itself, so that the only thing that
//! differs is how they wait:
//!
//! - [`wait_for_scope`]: the original's `wait_for_scope(scope, timeout) -> bool`, which polls
//!   `find_conflict` (every second upstream; [`POLL`] here, to keep tests short) and takes no
//!   lock. Its caller then acquires once and may lose (BUG-1281).
//! - [`PortQueue`]: a first-come queue of entry files that their waiters remove when they stop
//!   waiting, and nothing else ever does: a waiter killed while queued keeps its entry, and
//!   everyone behind it waits for ever (BUG-1361). The original's queue is not in the reference
//!   files we have; this models what its record describes.
//! - [`blocking_sentinel`]: this crate's own directory sentinel before SL-1, a blocking
//!   `flock(LOCK_EX)` with no bound.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use scope_lock::{LockManager, LockRequest, ScopeGuard};

/// How often the ports look again.
pub const POLL: Duration = Duration::from_millis(10);

/// The original's `wait_for_scope`: `true` once `find_conflict` finds nothing, `false` at the
/// deadline. `on_wait` is called once, when it first finds a conflict. It holds nothing when it
/// returns `true`, which is the bug.
///
/// # Errors
///
/// `find_conflict`'s errors, as text.
pub fn wait_for_scope(
    locks: &LockManager,
    request: &LockRequest,
    deadline: Instant,
    on_wait: &mut dyn FnMut(),
) -> Result<bool, String> {
    let mut told = false;
    loop {
        if locks
            .find_conflict(request)
            .map_err(|err| err.to_string())?
            .is_none()
        {
            return Ok(true);
        }
        if !told {
            on_wait();
            told = true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        std::thread::sleep(POLL.min(left));
    }
}

/// A first-come queue whose entries only their own waiters remove.
#[derive(Debug)]
pub struct PortQueue {
    dir: PathBuf,
}

impl PortQueue {
    /// The queue in `<running_dir>/.port-queue/`.
    pub fn new(running_dir: &Path) -> Self {
        Self {
            dir: running_dir.join(".port-queue"),
        }
    }

    /// Joins the queue: an entry numbered after every entry present.
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub fn join(&self) -> io::Result<PathBuf> {
        fs::create_dir_all(&self.dir)?;
        let next = self.entries()?.last().map_or(0, |(n, _)| n + 1);
        let entry = self.dir.join(format!("{next:020}-{}", std::process::id()));
        File::create(&entry)?;
        Ok(entry)
    }

    /// Whether `entry` is first in the queue.
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub fn is_first(&self, entry: &Path) -> io::Result<bool> {
        Ok(self.entries()?.first().map(|(_, path)| path.as_path()) == Some(entry))
    }

    fn entries(&self) -> io::Result<Vec<(u64, PathBuf)>> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let number = name
                .to_str()
                .and_then(|name| name.split('-').next())
                .and_then(|n| n.parse().ok());
            if let Some(number) = number {
                entries.push((number, entry.path()));
            }
        }
        entries.sort();
        Ok(entries)
    }
}

/// Waits in `queue` for its turn, then acquires. `Ok(None)` at the deadline. The entry is
/// removed on every way out of this function, and on no other.
///
/// # Errors
///
/// I/O and lock errors, as text.
pub fn queue_then_acquire(
    locks: &LockManager,
    request: &LockRequest,
    queue: &PortQueue,
    deadline: Instant,
    on_wait: &mut dyn FnMut(),
) -> Result<Option<ScopeGuard>, String> {
    let entry = queue.join().map_err(|err| err.to_string())?;
    let result = (|| {
        let mut told = false;
        loop {
            if queue.is_first(&entry).map_err(|err| err.to_string())?
                && let Ok(guard) = locks.try_acquire(request)
            {
                return Ok(Some(guard));
            }
            if !told {
                on_wait();
                told = true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            std::thread::sleep(POLL.min(left));
        }
    })();
    let _ = fs::remove_file(&entry);
    result
}

/// The directory sentinel as this crate took it before SL-1: open, then `flock(LOCK_EX)`,
/// blocking for as long as anyone holds it. Returns the locked file.
///
/// # Errors
///
/// I/O errors.
#[allow(
    clippy::disallowed_methods,
    reason = "the port locks the way the pre-fix code did, not through the library"
)]
pub fn blocking_sentinel(running_dir: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(running_dir.join(".acquire.lock"))?;
    file.lock()?;
    Ok(file)
}

/// A barrier between processes, in files: each arrival creates `<phase>-<worker>` in `dir`,
/// then waits (bounded) until `count` arrivals of that phase exist. The BUG-1281 scenario uses
/// it to put every waiter of the port in the same poll tick, as the bug report describes,
/// instead of hoping that timing does.
///
/// # Errors
///
/// I/O errors, or fewer than `count` arrivals within `patience`.
pub fn file_barrier(
    dir: &Path,
    phase: &str,
    worker: u64,
    count: usize,
    patience: Duration,
) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|err| err.to_string())?;
    File::create(dir.join(format!("{phase}-{worker}"))).map_err(|err| err.to_string())?;
    let deadline = Instant::now() + patience;
    loop {
        let arrived = fs::read_dir(dir)
            .map_err(|err| err.to_string())?
            .filter_map(Result::ok)
            .filter(|entry| {
                entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| name.starts_with(&format!("{phase}-")))
            })
            .count();
        if arrived >= count {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "barrier {phase}: {arrived} of {count} arrived in time"
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
