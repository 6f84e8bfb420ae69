//! `LockManager::list_locks_dry_run`: the scan that `list_locks` runs, judging every file the same
//! way, but only reporting what it would reclaim, move aside or remove. A cleaning scan
//! afterwards does exactly what the dry run said.

use std::collections::BTreeMap;
use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use scope_lock::testing::{DEAD_PID, TestResult, fixture, problem_at};
use scope_lock::{LockManager, ProblemKind};

const STARTED: &str = "2026-01-01T00:00:00.000000+00:00";

/// Every entry under `dir`, recursively, with the contents of its files.
fn snapshot(dir: &Path) -> Result<BTreeMap<PathBuf, Vec<u8>>, Box<dyn Error>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path.clone());
                found.insert(path, Vec::new());
            } else {
                found.insert(path.clone(), fs::read(&path)?);
            }
        }
    }
    Ok(found)
}

/// The original's live lock `legacy.lock`: no flock, and its pid (this process) alive.
fn write_legacy_lock(fx: &scope_lock::testing::Fixture) -> Result<PathBuf, Box<dyn Error>> {
    let me = std::process::id();
    fx.write_lock_file(
        "legacy",
        format!(r#"{{"loop_name": "legacy", "scope": ["/srv/l"], "pid": {me}, "started_at": "{STARTED}"}}"#)
            .as_bytes(),
    )
}

/// The reason of the problem reported for `path`, if it is of kind `WouldMoveAside`.
fn invalid_stale(listing: &scope_lock::LockListing, path: &Path) -> Option<String> {
    problem_at(listing, path).ok().and_then(|p| match p.kind() {
        ProblemKind::WouldMoveAside { reason } => Some(reason.clone()),
        _ => None,
    })
}

#[test]
fn inspecting_reports_what_a_clean_would_do_and_changes_nothing() -> TestResult {
    let fx = fixture()?;
    let live = fx.acquire("live", "src")?;
    // A lock of ours whose holder is gone (unheld, with our marker): stale.
    let stale = fx.write_lock_file(
        "stale",
        format!(
            r#"{{"loop_name": "stale", "scope": ["/srv/stale"], "pid": 1, "started_at": "{STARTED}", "liveness": "flock"}}"#
        )
        .as_bytes(),
    )?;
    // Unheld, ours (the marker), record invalid: a clean moves it aside.
    let ours = fx.write_lock_file(
        "broken",
        format!(
            r#"{{"loop_name": "broken", "scope": ["/srv/b"], "pid": "x", "started_at": "{STARTED}", "liveness": "flock"}}"#
        )
        .as_bytes(),
    )?;
    // Not ours, record invalid, but its pid is dead: a clean moves it aside too.
    let dead = fx.write_lock_file(
        "gen/dead",
        format!(r#"{{"loop_name": 7, "scope": ["/srv/d"], "pid": {DEAD_PID}}}"#).as_bytes(),
    )?;
    // Left alone by both: the original's live lock (no flock; its pid, ours, is alive), a file
    // that is not ours and whose pid is alive, and a file that is not a lock file.
    let me = std::process::id();
    let legacy = write_legacy_lock(&fx)?;
    let foreign = fx.write_lock_file(
        "foreign",
        format!(r#"{{"loop_name": 7, "scope": ["/srv/f"], "pid": {me}}}"#).as_bytes(),
    )?;
    fs::write(fx.running().join("legacy.pid"), "not json")?;
    let orphan = fx.running().join(".scope-lock-publish-AbC123.tmp");
    fs::write(&orphan, "partial")?;
    let before = snapshot(fx.running())?;

    let inspected = fx.locks.list_locks_dry_run()?;

    assert_eq!(snapshot(fx.running())?, before, "a dry run changed a file");
    assert!(inspected.is_dry_run());
    assert_eq!(inspected.reclaimed(), std::slice::from_ref(&stale));
    assert_eq!(inspected.orphans(), std::slice::from_ref(&orphan));
    let live_paths: Vec<_> = inspected.locks().iter().map(|l| l.path()).collect();
    assert_eq!(live_paths, [legacy.as_path(), live.path()]);
    let maybe_live = inspected.problems().iter().find(|p| p.path() == foreign);
    assert!(
        matches!(
            maybe_live.map(|p| p.kind()),
            Some(ProblemKind::BlocksMaybeLive { pid: Some(pid), .. }) if *pid == me
        ),
        "{maybe_live:?}"
    );
    for path in [&ours, &dead] {
        let reason = invalid_stale(&inspected, path).ok_or_else(|| {
            format!(
                "{} not reported as WouldMoveAside: {:?}",
                path.display(),
                inspected.problems()
            )
        })?;
        assert!(reason.contains("not a lock record"), "{reason}");
        let problem = inspected.problems().iter().find(|p| p.path() == path);
        let shown = problem.map(ToString::to_string).unwrap_or_default();
        assert!(shown.ends_with("not held, would be moved aside"), "{shown}");
        assert!(problem.is_some_and(|p| !p.blocks()), "{shown}");
    }
    assert_eq!(inspected.problems().len(), 3, "{:?}", inspected.problems());

    // The cleaning scan does what the dry run announced.
    let cleaned = fx.locks.list_locks()?;
    assert!(!cleaned.is_dry_run());
    assert_eq!(cleaned.reclaimed(), inspected.reclaimed());
    assert_eq!(cleaned.orphans(), inspected.orphans());
    assert_eq!(cleaned.locks(), inspected.locks());
    for path in [&ours, &dead] {
        let moved = cleaned.problems().iter().find(|p| p.path() == path);
        assert!(
            matches!(
                moved.map(|p| p.kind()),
                Some(ProblemKind::MovedAside {
                    moved_to: Some(_),
                    ..
                })
            ),
            "{moved:?}"
        );
        assert!(!path.exists(), "{} was not moved aside", path.display());
    }
    assert!(!stale.exists(), "the stale lock was not reclaimed");
    assert!(!orphan.exists(), "the orphaned publication was not removed");
    assert!(live.path().exists());

    // Nothing is left to clean, and the live lock is still there.
    let again = fx.locks.list_locks_dry_run()?;
    assert!(again.reclaimed().is_empty() && again.orphans().is_empty());
    let left: Vec<_> = again.problems().iter().map(|p| p.path()).collect();
    assert_eq!(left, [foreign.as_path()]);
    assert_eq!(again.locks().len(), 2);
    assert!(legacy.exists() && foreign.exists());
    live.release()?;
    Ok(())
}

#[test]
fn inspecting_a_missing_directory_creates_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let locks = LockManager::new(dir.path().join(".loops"));
    let inspected = locks.list_locks_dry_run()?;
    assert!(inspected.is_dry_run());
    assert!(inspected.locks().is_empty() && inspected.problems().is_empty());
    assert!(!dir.path().join(".loops").exists());
    assert!(!locks.list_locks()?.is_dry_run());
    Ok(())
}

/// A dry run writes nothing, not even the directory sentinel where there is none yet: so it
/// can look at a directory it may not write (SL-25).
#[test]
fn a_dry_run_creates_no_sentinel() -> TestResult {
    let fx = fixture()?;
    fs::create_dir_all(fx.running())?;
    let legacy = write_legacy_lock(&fx)?;
    let before = snapshot(fx.running())?;
    let inspected = fx.locks.list_locks_dry_run()?;
    assert_eq!(snapshot(fx.running())?, before, "a dry run wrote a file");
    let live: Vec<_> = inspected.locks().iter().map(|l| l.path()).collect();
    assert_eq!(live, [legacy.as_path()]);
    Ok(())
}

/// Live waiters are listed, first in line first, with the record of what each waits for and
/// its command line; a listing of the directory sees them, a cleaning one and a dry run alike.
#[test]
fn listings_show_live_waiters_in_ticket_order() -> TestResult {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    let fx = fixture()?;
    let held = fx.acquire("holder", "src")?;
    let (started, waiting) = mpsc::channel();
    let locks = fx.locks.clone();
    let request = fx.request("waiter", "src/api");
    let waiter = std::thread::spawn(move || {
        let mut report = |wait: &scope_lock::Waiting<'_>| {
            if wait.is_first() {
                let _ = started.send(());
            }
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        locks
            .acquire_with(&request, deadline, &mut report)
            .map(|guard| guard.release())
    });
    waiting.recv_timeout(Duration::from_secs(60))?;
    for listing in [fx.locks.list_locks_dry_run()?, fx.locks.list_locks()?] {
        let [queued] = listing.waiters() else {
            panic!("not one waiter: {:?}", listing.waiters());
        };
        assert_eq!(queued.ticket(), 1);
        assert_eq!(queued.record().loop_name(), "waiter");
        assert_eq!(queued.record().pid(), std::process::id());
        assert_eq!(queued.record().scope(), [fx.path("src/api")]);
        assert!(queued.path().starts_with(fx.running().join(".queue")));
        let ours = std::env::args_os().next();
        assert_eq!(queued.command().and_then(|c| c.first().cloned()), ours);
        assert_eq!(
            listing.locks()[0]
                .holder_command()
                .and_then(|c| c.first().cloned()),
            ours
        );
    }
    held.release()?;
    waiter.join().map_err(|_| "the waiter panicked")???;
    assert!(fx.locks.list_locks()?.waiters().is_empty());
    Ok(())
}

/// A listing names the holder of each of its locks, all at once, as each lock would on its
/// own: this process for the locks it holds (proven through its own descriptors, read once
/// for all of them) and for the original's lock whose pid names it.
#[test]
fn holder_commands_are_each_locks_holder_command_in_order() -> TestResult {
    let fx = fixture()?;
    let held = [
        fx.acquire("first", "src/a")?,
        fx.acquire("second", "src/b")?,
        fx.acquire("third", "src/c")?,
    ];
    let original = format!(
        r#"{{"loop_name": "original", "scope": [{:?}], "pid": {}, "started_at": "2026-01-01T00:00:00.000000+00:00"}}"#,
        fx.path("docs"),
        std::process::id()
    );
    fx.write_lock_file("original", original.as_bytes())?;
    let listing = fx.locks.list_locks()?;
    assert_eq!(listing.locks().len(), 4, "{listing:?}");
    let ours = std::env::args_os().next();
    let firsts: Vec<_> = (listing.holder_commands().into_iter())
        .map(|command| command.and_then(|args| args.first().cloned()))
        .collect();
    assert_eq!(firsts, vec![ours; 4]);
    let one_by_one: Vec<_> = listing.locks().iter().map(|l| l.holder_command()).collect();
    assert_eq!(listing.holder_commands(), one_by_one);
    for guard in held {
        guard.release()?;
    }
    Ok(())
}
