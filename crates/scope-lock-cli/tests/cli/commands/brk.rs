//! `break`: it shows the holder; with `--kill` it signals only a holder it can prove.

use std::fs;
use std::process::Command;

use crate::support::{BOUND, Sandbox, TestResult, original_record};

#[test]
fn break_without_kill_only_shows_the_holder() -> TestResult {
    let sandbox = Sandbox::new()?;
    let mut holder = sandbox.hold("docs", &["--scope", "docs"])?;
    let out = sandbox.run(&["break", "docs"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!("pid {}", holder.pid())),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("scope-lock break docs --kill"),
        "{}",
        out.stdout
    );
    assert_eq!(sandbox.run(&["check", "--scope", "docs"])?.code(), 75);
    assert_eq!(holder.finish().and_then(|s| s.code()), Some(0));

    let missing = sandbox.run(&["break", "nobody"])?;
    assert_eq!(missing.code(), 1);
    assert!(
        missing.stderr.contains("no live lock named `nobody`"),
        "{}",
        missing.stderr
    );
    Ok(())
}

#[test]
fn break_kill_does_not_signal_the_pid_an_original_lock_names() -> TestResult {
    let sandbox = Sandbox::new()?;
    fs::create_dir_all(sandbox.running())?;
    // The original's lock holds no flock: nothing proves that the pid its file names, here a
    // live bystander, is its holder.
    let mut bystander = Command::new("sleep").arg("300").spawn()?;
    let record = original_record(
        "ghost",
        "/srv/ghost",
        bystander.id(),
        "2001-01-01T00:00:00.000000+00:00",
    );
    fs::write(sandbox.running().join("ghost.lock"), record)?;
    let out = sandbox.run(&["break", "ghost", "--kill", "--grace", "1"]);
    let alive = bystander.try_wait()?.is_none();
    let _ = bystander.kill();
    let _ = bystander.wait();
    let out = out?;
    assert!(alive, "break signalled the pid a file named");
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("no holder of")
            && out.stderr.contains("little-loops' own tools")
            && !out.stdout.contains("sent SIG"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    Ok(())
}

#[cfg(target_os = "linux")]
#[test]
fn break_kill_stops_the_holder_with_sigterm_and_waits_until_the_lock_is_free() -> TestResult {
    let sandbox = Sandbox::new()?;
    let mut holder = sandbox.hold("stuck", &["--scope", "docs"])?;
    let out = sandbox.run(&["break", "stuck", "--kill"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains(&format!("sent SIGTERM to pid {}", holder.pid())),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("SIGKILL"), "{}", out.stdout);
    // scope-lock passed SIGTERM on to CMD, which died of it: 128 + 15.
    assert_eq!(holder.wait(BOUND).and_then(|s| s.code()), Some(143));
    assert_eq!(sandbox.run(&["check", "--scope", "docs"])?.code(), 0);
    Ok(())
}
