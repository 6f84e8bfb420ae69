//! Races made to happen in one chosen order: a worker stops at one of the library's pause
//! points (the `test-support` feature; it says `paused <step>`), the test changes the
//! directory as another process could at that instant, and then resumes the worker and checks
//! what it does. These are the race branches of `protocol/` that nothing else reaches: the
//! file gone between a release's (or a reclaim's) check and its unlink, a name taken by
//! someone outside the protocol between the scan and the no-overwrite rename that publishes a
//! lock, a nested lock's directory made by someone else between its lstat and its mkdir, and
//! a holder that releases between a waiter's attempt and its new watch.

use std::fs;
use std::path::Path;

use crate::support::{Workers, project, worker};
use regression::attempt::AttemptProcess;
use regression::locker::Impl;
use scope_lock::testing::{Fixture, TestResult};

/// A worker of the fix over `scope` as `victim`, paused at `step` once told to go.
fn paused_worker(f: &Fixture, scope: &str, step: &str) -> std::io::Result<AttemptProcess> {
    AttemptProcess::spawn_paused(worker(), &f.loops_dir(), "victim", scope, step, &[])
}

/// The names in `.running/` that a failed publication must not leave: staged files.
fn staged_files(running: &Path) -> Result<Vec<String>, std::io::Error> {
    let mut staged = Vec::new();
    for entry in fs::read_dir(running)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with(".scope-lock-publish-") {
            staged.push(name);
        }
    }
    Ok(staged)
}

#[test]
fn a_release_whose_lock_file_is_removed_after_its_check_still_succeeds() -> TestResult {
    let (f, scope) = project()?;
    let mut victim = paused_worker(&f, &scope, "release:checked")?;
    let held = victim.go()?;
    let path = held.strip_prefix("held ").ok_or(held.clone())?.to_owned();
    assert_eq!(victim.release_on_line()?, "paused release:checked");

    // Between the release's check (the path names its file) and its unlink.
    fs::remove_file(&path)?;
    assert_eq!(
        victim.resume()?,
        "released",
        "a lock file already gone is released, not an error"
    );
    victim.release()?;

    assert!(f.lock_files()?.is_empty(), "{:?}", f.lock_files()?);
    f.acquire("next", "src")?.release()?;
    Ok(())
}

/// Pauses a publisher after staging, lets `take_name` put something at the lock's name, and
/// returns what the resumed publisher said, after checking that it left no staged file.
fn publish_into(
    f: &Fixture,
    scope: &str,
    take_name: impl FnOnce(&Path) -> TestResult,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut publisher = paused_worker(f, scope, "acquire:staged-locked")?;
    assert_eq!(publisher.go()?, "paused acquire:staged-locked");
    take_name(&f.running().join("victim.lock"))?;
    let said = publisher.resume()?;
    publisher.release()?;
    let staged = staged_files(f.running())?;
    assert!(staged.is_empty(), "left behind: {staged:?}");
    Ok(said)
}

#[test]
fn a_file_created_at_the_lock_name_before_publication_fails_the_acquire_untouched() -> TestResult {
    let (f, scope) = project()?;
    let target = f.running().join("victim.lock");
    let foreign = b"not written by the protocol";
    let said = publish_into(&f, &scope, |target| Ok(fs::write(target, foreign)?))?;

    let expected = format!(
        "failed {}: appeared while we held the directory sentinel",
        target.display()
    );
    assert!(said.starts_with(&expected), "{said}");
    assert_eq!(fs::read(&target)?, foreign, "the other file was changed");
    Ok(())
}

#[test]
fn a_directory_created_at_the_lock_name_before_publication_fails_the_acquire_untouched()
-> TestResult {
    let (f, scope) = project()?;
    let target = f.running().join("victim.lock");
    let said = publish_into(&f, &scope, |target| {
        fs::create_dir(target)?;
        Ok(fs::write(target.join("inside"), "kept")?)
    })?;

    let expected = format!(
        "failed {}: is a directory, not a regular lock file",
        target.display()
    );
    assert!(said.starts_with(&expected), "{said}");
    assert_eq!(fs::read_to_string(target.join("inside"))?, "kept");
    Ok(())
}

#[test]
fn a_stale_lock_removed_by_someone_else_after_the_reclaim_check_is_no_problem() -> TestResult {
    let (f, scope) = project()?;
    let stale = f.write_dead_lock("stale", &scope)?;
    let loops_dir = f.loops_dir();
    let mut lister = AttemptProcess::spawn_command_paused(
        worker(),
        "list",
        [std::ffi::OsStr::new("--loops-dir"), loops_dir.as_os_str()],
        "scan:reclaim-checked",
    )?;
    assert_eq!(lister.go()?, "paused scan:reclaim-checked");

    // Between the reclaim's check (the path still names the stale file) and its unlink.
    fs::remove_file(&stale)?;
    let mut said = vec![lister.resume()?];
    while said
        .last()
        .is_some_and(|line| line != "listed" && !line.starts_with("failed"))
    {
        said.push(lister.next_line()?);
    }
    lister.release()?;

    // Gone, as the reclaim wanted: neither a failure to reclaim nor a reclaim of ours.
    assert_eq!(said, ["listed"]);
    Ok(())
}

#[test]
fn a_nested_directory_made_by_someone_else_before_our_mkdir_is_used() -> TestResult {
    let (f, scope) = project()?;
    let mut victim = AttemptProcess::spawn_paused(
        worker(),
        &f.loops_dir(),
        "victim",
        &scope,
        "acquire:directory-missing",
        &["--instance", "team/run-1"],
    )?;
    assert_eq!(victim.go()?, "paused acquire:directory-missing");

    // Between the lstat that found `.running/team` missing and the mkdir.
    fs::create_dir(f.running().join("team"))?;
    let target = f.running().join("team/run-1.lock");
    assert_eq!(victim.resume()?, format!("held {}", target.display()));
    assert_eq!(victim.release()?, "released");
    Ok(())
}

#[test]
fn a_waiter_whose_holder_releases_before_its_new_watch_looks_again() -> TestResult {
    let (f, scope) = project()?;
    // A nested name: its directory is watched only once a waiter finds it in the way.
    let mut holder =
        f.spawn_attempt(Impl::Fixed, "holder", &scope, &["--instance", "team/run-1"])?;
    let held = holder.go()?;
    assert!(held.ends_with("team/run-1.lock"), "{held}");
    let loops_dir = f.loops_dir();
    let args = [
        "--impl",
        Impl::Fixed.name(),
        "--loops-dir",
        &loops_dir.to_string_lossy(),
        "--name",
        "waiter",
        "--scope",
        &scope,
        "--timeout-ms",
        "60000",
    ]
    .map(str::to_owned);
    let mut waiter = AttemptProcess::spawn_command_paused(worker(), "wait", args, "wait:blocked")?;
    assert_eq!(waiter.go()?, "paused wait:blocked");

    // Between the attempt that found the holder and the watch on `.running/team/`: the
    // release's event comes before anyone watches for it.
    assert_eq!(holder.release()?, "released");
    let mut said = waiter.resume()?;
    if cfg!(not(any(target_os = "linux", target_os = "android"))) {
        // No directory watch there (no inotify): the waiter polls, so it says that it waits
        // and finds the scope free at its first poll.
        assert!(said.starts_with("waiting"), "{said}");
        said = waiter.next_line()?;
    }
    assert!(
        said.starts_with("held"),
        "the holder is gone, so the waiter must look again before it waits: {said}"
    );
    assert_eq!(waiter.release()?, "released");
    Ok(())
}
