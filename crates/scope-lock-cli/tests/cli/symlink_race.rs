//! A co-user who may write `.running/` swaps a directory of ours (the waiting queue, a nested
//! lock's directory) for a symlink to a directory elsewhere, back and forth, while scans run;
//! or makes `.running/` itself a symlink. Nothing outside `.running/` may be removed (SL-19).
//!
//! Hostile tests (see `support::hostile`); the swapping needs no other user, since the
//! directories are the racer's to swap either way.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::support::{TestResult, dead_pid, hostile, run_to_end};
use rustix::fs::{CWD, RenameFlags, renameat_with};

/// The `scope-lock` binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_scope-lock");

/// The most scans a test runs, and the longest it runs them.
const MAX_SCANS: usize = 600;
const MAX_SCANNING: Duration = Duration::from_secs(60);

/// The longest a racer swaps, and the most swaps it makes, whatever the test does.
const MAX_RACING: Duration = Duration::from_secs(120);
const MAX_SWAPS: u64 = 50_000_000;

/// A directory outside `.running/` holding files that a scan of `.running/` would remove if it
/// found them there: tickets whose waiter is gone, locks of the original whose pid is dead,
/// and publications left behind.
struct Victim {
    dir: tempfile::TempDir,
    files: Vec<PathBuf>,
}

impl Victim {
    fn new() -> Result<Self, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let dead = dead_pid()?;
        let record = format!(
            "{{\"loop_name\": \"victim\", \"scope\": [\"/victim\"], \"pid\": {dead}, \
             \"started_at\": \"2026-01-01T00:00:00.000000+00:00\"}}"
        );
        let mut files = Vec::new();
        for n in 1..=20 {
            let ticket = dir.path().join(format!("{n:020}"));
            fs::write(&ticket, "not a waiter's")?;
            let lock = dir.path().join(format!("v{n}.lock"));
            fs::write(&lock, &record)?;
            let publication = dir.path().join(format!(".scope-lock-publish-v{n}.tmp"));
            fs::write(&publication, "not a publication")?;
            files.extend([ticket, lock, publication]);
        }
        Ok(Self { dir, files })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The victim's files that are gone.
    fn lost(&self) -> Vec<&Path> {
        self.files
            .iter()
            .filter(|file| !file.exists())
            .map(PathBuf::as_path)
            .collect()
    }
}

/// Swaps `a` and `b` (`renameat2(RENAME_EXCHANGE)`) over and over until told to stop, for at
/// most [`MAX_RACING`] and [`MAX_SWAPS`].
struct Racer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<u64>>,
}

impl Racer {
    fn start(a: PathBuf, b: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let started = Instant::now();
            let mut swaps = 0;
            while !stopped.load(Ordering::Relaxed)
                && swaps < MAX_SWAPS
                && started.elapsed() < MAX_RACING
            {
                if renameat_with(CWD, &a, CWD, &b, RenameFlags::EXCHANGE).is_ok() {
                    swaps += 1;
                }
            }
            swaps
        });
        Self {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the racer; how many swaps it made.
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .and_then(|handle| handle.join().ok())
            .unwrap_or(0)
    }
}

impl Drop for Racer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// A loops directory whose `.running/` holds the waiting queue and a nested lock directory,
/// each with a symlink to the victim beside it (`<name>-swap`) for a racer to swap in.
fn swappable(victim: &Victim) -> Result<(tempfile::TempDir, PathBuf), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let loops = dir.path().join("loops");
    let running = loops.join(".running");
    fs::create_dir_all(running.join(".queue"))?;
    fs::create_dir(running.join("nest"))?;
    std::os::unix::fs::symlink(victim.path(), running.join(".queue-swap"))?;
    std::os::unix::fs::symlink(victim.path(), running.join("nest-swap"))?;
    Ok((dir, loops))
}

/// The directories of `.running/` a racer swaps with a symlink to the victim.
const QUEUE: &[&str] = &[".queue"];
const NESTED: &[&str] = &["nest"];
const BOTH: &[&str] = &[".queue", "nest"];

/// Runs `scan` up to [`MAX_SCANS`] times (for at most [`MAX_SCANNING`]) while a racer swaps
/// each of `swapped` with its symlink to the victim; fails naming what was lost.
fn race_scans(
    what: &str,
    swapped: &[&str],
    mut scan: impl FnMut(&Path, usize) -> String,
) -> TestResult {
    let victim = Victim::new()?;
    let (_dir, loops) = swappable(&victim)?;
    let running = loops.join(".running");
    let racers: Vec<Racer> = swapped
        .iter()
        .map(|name| Racer::start(running.join(name), running.join(format!("{name}-swap"))))
        .collect();
    let started = Instant::now();
    let mut runs = 0;
    let mut lost_after = None;
    while runs < MAX_SCANS && started.elapsed() < MAX_SCANNING {
        let said = scan(&loops, runs);
        runs += 1;
        if !victim.lost().is_empty() {
            lost_after = Some(said);
            break;
        }
    }
    let swaps: u64 = racers.into_iter().map(Racer::stop).sum();
    let lost = victim.lost();
    assert!(
        lost.is_empty(),
        "{what} deleted files outside .running/ after {runs} scans ({swaps} swaps): \
         {lost:?}; the last scan said {lost_after:?}"
    );
    assert!(swaps > 0, "the racers never swapped anything");
    eprintln!("{what}: {runs} scans, {swaps} swaps, nothing outside .running/ lost");
    Ok(())
}

/// `scope-lock list` or `scope-lock clean` (taking turns by `run`), and what it said.
fn list_or_clean(loops: &Path, run: usize) -> String {
    let verb = if run.is_multiple_of(2) {
        "list"
    } else {
        "clean"
    };
    let mut command = Command::new(BIN);
    command.arg("--loops-dir").arg(loops).arg(verb);
    match run_to_end(command) {
        Ok(output) => format!("{verb}: {:?} {:?}", output.stdout, output.stderr),
        Err(err) => format!("{verb} did not run: {err}"),
    }
}

/// `scope-lock list` and `clean` never remove the victim's files through the waiting queue's
/// directory swapped for a symlink (it removed a dead waiter's "ticket" there).
#[test]
fn list_and_clean_never_delete_outside_running_through_a_swapped_queue() -> TestResult {
    if !hostile::available("list_and_clean_never_delete_outside_running_through_a_swapped_queue") {
        return Ok(());
    }
    race_scans("scope-lock list/clean", QUEUE, list_or_clean)
}

/// `scope-lock list` and `clean` never remove the victim's files through a nested lock's
/// directory swapped for a symlink (they removed dead-pid locks and "leftover publications").
#[test]
fn list_and_clean_never_delete_outside_running_through_a_swapped_nested_directory() -> TestResult {
    if !hostile::available(
        "list_and_clean_never_delete_outside_running_through_a_swapped_nested_directory",
    ) {
        return Ok(());
    }
    race_scans("scope-lock list/clean", NESTED, list_or_clean)
}

/// The library's listing, in this process, never removes the victim's files.
#[test]
fn the_library_listing_never_deletes_outside_running_through_a_swapped_directory() -> TestResult {
    if !hostile::available(
        "the_library_listing_never_deletes_outside_running_through_a_swapped_directory",
    ) {
        return Ok(());
    }
    race_scans("LockManager::list_locks", BOTH, |loops, _| {
        format!("{:?}", scope_lock::LockManager::new(loops).list_locks())
    })
}

/// A `.running` that is itself a symlink is refused, with an error that names it and says
/// what to do, by listing, cleaning and acquiring alike; nothing where it points is touched.
#[test]
fn a_symlinked_running_directory_is_refused_with_an_error_naming_it() -> TestResult {
    if !hostile::available("a_symlinked_running_directory_is_refused_with_an_error_naming_it") {
        return Ok(());
    }
    let victim = Victim::new()?;
    let dir = tempfile::tempdir()?;
    let loops = dir.path().join("loops");
    fs::create_dir(&loops)?;
    let running = loops.join(".running");
    std::os::unix::fs::symlink(victim.path(), &running)?;

    for args in [
        &["list"][..],
        &["clean"],
        &["run", "--name", "x", "--scope", "/x", "--", "true"],
    ] {
        let mut command = Command::new(BIN);
        command.arg("--loops-dir").arg(&loops).args(args);
        let output = run_to_end(command)?;
        assert_ne!(output.code(), 0, "{args:?} used a symlinked .running");
        assert!(
            output.stderr.contains(&running.display().to_string())
                && output.stderr.contains("is a symlink"),
            "{args:?} did not say that {} is a symlink: {:?}",
            running.display(),
            output.stderr
        );
        assert_eq!(victim.lost(), Vec::<&Path>::new(), "{args:?}");
    }
    let err = scope_lock::LockManager::new(&loops)
        .list_locks()
        .expect_err("a symlinked .running was listed");
    assert_eq!(err.kind(), scope_lock::ErrorKind::NotALockFile, "{err}");
    assert_eq!(err.path(), Some(running.as_path()), "{err}");
    assert_eq!(victim.lost(), Vec::<&Path>::new());
    Ok(())
}
