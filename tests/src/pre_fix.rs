//! A line-by-line Rust port of the lock manager BUG-423 was filed against: little-loops,
//! `scripts/little_loops/fsm/concurrency.py` at scan commit 71616c7 (`docs/protocol.md`, A4).
//!
//! It exists so that the regression suite can show it would catch the bug's return: the same
//! scenarios run against this port and against the fix. It is deliberately wrong, step for
//! step where the original was:
//!
//! - `acquire`: scans for conflicts *without* any directory lock, then opens `<loop_name>.lock`
//!   truncating it, flocks, writes the JSON, **unlocks**, closes, and returns `true`: nothing
//!   holds the lock once `acquire` returns, and readers can see the file empty in between.
//! - `release`: `if path.exists(): path.unlink()`, which raises `FileNotFoundError` when a
//!   concurrent releaser gets between the check and the unlink.
//! - the scan unlinks locks whose pid is dead, racing with every other scanner; a
//!   `FileNotFoundError` there is swallowed only because it is in the skip list.
//!
//! The optional [`Hooks`] run at the original's race windows so that tests can force an
//! interleaving deterministically. They add no behaviour of their own.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use scope_lock::{LockRecord, normalize_path, paths_overlap};

use crate::original_reader;

/// Callbacks run inside the original's race windows.
#[derive(Default)]
pub struct Hooks<'a> {
    /// After the conflict scan found nothing, before the lock file is written.
    pub after_scan: Option<Box<dyn Fn() + 'a>>,
    /// After the lock file is truncated, before the record is written into it.
    pub after_truncate: Option<Box<dyn Fn() + 'a>>,
}

/// The pre-fix lock manager.
pub struct PreFixLockManager<'a> {
    running_dir: PathBuf,
    hooks: Hooks<'a>,
}

impl<'a> PreFixLockManager<'a> {
    /// `LockManager(loops_dir)`: locks in `<loops_dir>/.running/`.
    pub fn new(loops_dir: &Path) -> Self {
        Self {
            running_dir: loops_dir.join(".running"),
            hooks: Hooks::default(),
        }
    }

    /// The same, with callbacks in the race windows.
    pub fn with_hooks(loops_dir: &Path, hooks: Hooks<'a>) -> Self {
        Self {
            hooks,
            ..Self::new(loops_dir)
        }
    }

    /// The lock file of `loop_name`.
    pub fn lock_path(&self, loop_name: &str) -> PathBuf {
        self.running_dir.join(format!("{loop_name}.lock"))
    }

    /// `acquire(loop_name, scope) -> bool`.
    ///
    /// # Errors
    ///
    /// What the Python code would raise: I/O errors of the write, and of a stale-lock unlink
    /// other than `FileNotFoundError`.
    #[allow(
        clippy::disallowed_methods,
        reason = "the port locks the way the original did, not through the library"
    )]
    pub fn acquire(&self, loop_name: &str, scope: &[String]) -> io::Result<bool> {
        // Empty means the whole project.
        let whole_project = [".".to_owned()];
        let scope = normalize_all(if scope.is_empty() {
            &whole_project
        } else {
            scope
        })?;

        // No directory lock: another process can pass this check at the same time.
        if self.find_conflict(&scope)?.is_some() {
            return Ok(false);
        }
        if let Some(hook) = &self.hooks.after_scan {
            hook();
        }

        fs::create_dir_all(&self.running_dir)?;
        let lock_file = self.lock_path(loop_name);
        // `started_at` plays no part in any decision; a fixed value keeps the port small.
        let record = LockRecord::new(
            loop_name,
            scope,
            std::process::id(),
            "2026-02-15T02:29:53.000000+00:00",
        );
        // `open(lock_file, "w")`: truncates first, so readers can see it empty.
        let mut file = File::create(&lock_file)?;
        if let Some(hook) = &self.hooks.after_truncate {
            hook();
        }
        file.lock()?;
        let written = file.write_all(record.to_json().as_bytes());
        // The `finally: fcntl.flock(f, fcntl.LOCK_UN)` that is BUG-423.
        let unlocked = file.unlock();
        drop(file);
        written?;
        unlocked?;
        Ok(true)
    }

    /// `release(loop_name)`: check, then unlink.
    ///
    /// # Errors
    ///
    /// `NotFound` when the file disappears between the check and the unlink: the original's
    /// `FileNotFoundError`.
    pub fn release(&self, loop_name: &str) -> io::Result<()> {
        self.release_with(loop_name, &|| {})
    }

    /// `release`, running `between` after `exists()` said yes and before `unlink()`.
    ///
    /// # Errors
    ///
    /// As [`release`](Self::release).
    pub fn release_with(&self, loop_name: &str, between: &dyn Fn()) -> io::Result<()> {
        let lock_file = self.lock_path(loop_name);
        if lock_file.exists() {
            between();
            fs::remove_file(&lock_file)?;
        }
        Ok(())
    }

    /// `find_conflict(scope)`: the first live lock whose scope overlaps, cleaning stale ones.
    ///
    /// # Errors
    ///
    /// An unlink of a stale lock failing with anything but `NotFound`.
    pub fn find_conflict(&self, scope: &[String]) -> io::Result<Option<LockRecord>> {
        let Ok(entries) = fs::read_dir(&self.running_dir) else {
            return Ok(None);
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // `running_dir.glob("*.lock")`: flat, no nested names.
            if name.starts_with('.') || !name.ends_with(".lock") {
                continue;
            }
            let path = entry.path();
            // `json.load`; JSONDecodeError, KeyError and FileNotFoundError are skipped.
            let Ok(bytes) = fs::read(&path) else { continue };
            let Ok(lock) = original_reader::parse(&bytes) else {
                continue;
            };
            if !original_process_alive(lock.pid) {
                match fs::remove_file(&path) {
                    Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                    _ => continue,
                }
            }
            let theirs = normalize_all(&lock.scope)?;
            // `_scopes_overlap`: any pair of paths, compared as paths (`*` is no wildcard).
            if scope
                .iter()
                .any(|ours| theirs.iter().any(|t| paths_overlap(ours, t)))
            {
                return Ok(Some(LockRecord::new(
                    lock.loop_name,
                    theirs,
                    lock.pid,
                    lock.started_at,
                )));
            }
        }
        Ok(None)
    }
}

fn normalize_all(scope: &[String]) -> io::Result<Vec<String>> {
    scope
        .iter()
        .map(|entry| {
            // The port compares text, as the original does; a path that is not UTF-8 is
            // refused, as this port always refused it.
            normalize_path(entry)
                .map_err(io::Error::other)?
                .into_os_string()
                .into_string()
                .map_err(|raw| io::Error::other(format!("{raw:?} is not UTF-8")))
        })
        .collect()
}

/// `_process_alive`: `os.kill(pid, 0)`, and any `OSError` means dead, `EPERM` included (the
/// original's BUG-526: a process of another user looks dead, and its live lock is deleted).
fn original_process_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        // `os.kill` of a pid that is not a pid raises too (`OverflowError`, or kills the
        // process group for 0): never reached with records the reader accepted.
        return true;
    };
    rustix::process::test_kill_process(pid).is_ok()
}
