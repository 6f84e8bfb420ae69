//! A garbage lock file (no flock, no record, no pid): it blocks while it may be a write in
//! progress, says what to do, and is moved aside after the grace or by `break --force`.

use std::fs;

use crate::support::{Sandbox, TestResult};

/// Writes a garbage lock file `junk.lock` (no flock, no record, no pid), last modified `age` ago.
fn garbage(
    sandbox: &Sandbox,
    age: std::time::Duration,
) -> Result<std::path::PathBuf, Box<dyn std::error::Error>> {
    fs::create_dir_all(sandbox.running())?;
    let path = sandbox.running().join("junk.lock");
    fs::write(&path, "half a recor")?;
    fs::OpenOptions::new()
        .append(true)
        .open(&path)?
        .set_modified(std::time::SystemTime::now() - age)?;
    Ok(path)
}

#[test]
fn a_garbage_lock_file_blocks_while_it_may_be_written_and_says_what_to_do() -> TestResult {
    let sandbox = Sandbox::new()?;
    let path = garbage(&sandbox, std::time::Duration::ZERO)?;
    let refused = sandbox.run(&["run", "--name", "a", "--scope", "x", "--", "echo", "ran"])?;
    assert_eq!(refused.code(), 75, "{}", refused.stderr);
    let cleaned = sandbox.run(&["clean"])?;
    let shown = sandbox.run(&["break", "junk"])?;
    assert_eq!(shown.code(), 1, "{}", shown.stderr);
    for message in [&refused.stderr, &cleaned.stdout, &shown.stderr] {
        assert!(
            message.contains("`scope-lock break junk --force` moves it aside now")
                && message.contains("left unchanged for the grace"),
            "no word of what to do: {message}"
        );
    }
    assert!(
        path.exists(),
        "a file that may be a write in progress was moved"
    );
    Ok(())
}

#[test]
fn a_garbage_lock_file_older_than_the_grace_is_moved_aside_by_the_next_scan() -> TestResult {
    let sandbox = Sandbox::new()?;
    let path = garbage(&sandbox, std::time::Duration::from_secs(120))?;
    let cleaned = sandbox.run(&["clean"])?;
    assert_eq!(cleaned.code(), 0, "{}", cleaned.stderr);
    assert!(
        cleaned.stdout.contains("unchanged for 120s") && cleaned.stdout.contains("moved aside to"),
        "{}",
        cleaned.stdout
    );
    assert!(!path.exists(), "{}", cleaned.stdout);
    sandbox.assert_runs("a", "x")
}

#[test]
fn invalid_grace_sets_how_long_a_garbage_lock_file_blocks() -> TestResult {
    let sandbox = Sandbox::new()?;
    let path = garbage(&sandbox, std::time::Duration::from_secs(120))?;
    let patient = sandbox.run(&["--invalid-grace", "600", "check", "--scope", "x"])?;
    assert_eq!(patient.code(), 75, "{}", patient.stderr);
    assert!(path.exists());
    let hasty = sandbox.run(&["--invalid-grace", "0.5", "check", "--scope", "x"])?;
    assert_eq!(hasty.code(), 0, "{}", hasty.stderr);
    assert!(!path.exists());
    Ok(())
}

#[test]
fn break_force_moves_a_garbage_lock_file_aside_now_and_never_a_live_lock() -> TestResult {
    let sandbox = Sandbox::new()?;
    let path = garbage(&sandbox, std::time::Duration::ZERO)?;
    let out = sandbox.run(&["break", "junk", "--force"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout.contains("moved aside to"), "{}", out.stdout);
    assert!(!path.exists());
    assert_eq!(sandbox.run(&["check", "--scope", "x"])?.code(), 0);

    let mut holder = sandbox.hold("live", &["--scope", "docs"])?;
    let refused = sandbox.run(&["break", "live", "--force"])?;
    assert_eq!(refused.code(), 1, "{}", refused.stdout);
    assert!(refused.stderr.contains("is flocked"), "{}", refused.stderr);
    assert!(sandbox.running().join("live.lock").exists());
    assert_eq!(holder.finish().and_then(|s| s.code()), Some(0));
    Ok(())
}
