//! `check`: exit 0 when the scope is free, 75 naming the holder when not.

use std::fs;

use super::redact;
use crate::support::{Sandbox, TestResult, redact_dir};

#[test]
fn check_exits_0_when_free_and_75_with_the_holder_when_not() -> TestResult {
    let sandbox = Sandbox::new()?;
    // `check` refuses a loops directory that does not exist (SL-25).
    fs::create_dir_all(sandbox.running())?;
    let free = sandbox.run(&["check", "--scope", "docs"])?;
    assert_eq!(free.code(), 0, "{}", free.stderr);
    let free_json = sandbox.run(&["check", "--json", "--scope", "docs"])?;
    assert_eq!(free_json.code(), 0);
    insta::assert_snapshot!(
        "check_free_json",
        redact_dir(&free_json.stdout, sandbox.path())
    );

    let mut holder = sandbox.hold(
        "nightly",
        &[
            "--instance-id",
            "nightly-1",
            "--scope",
            "docs",
            "--singleton",
        ],
    )?;
    let pids = [holder.pid()];
    let busy = sandbox.run(&["check", "--scope", "docs/api"])?;
    assert_eq!(busy.code(), 75);
    assert_eq!(busy.stdout, "");
    insta::assert_snapshot!("check_busy_stderr", redact(&busy.stderr, &sandbox, &pids)?);
    let busy_json = sandbox.run(&["check", "--json", "--scope", "docs/api"])?;
    assert_eq!(busy_json.code(), 75);
    insta::assert_snapshot!(
        "check_busy_json",
        redact(&busy_json.stdout, &sandbox, &pids)?
    );
    // A singleton conflicts whatever the scopes; a disjoint scope under another name is free.
    let singleton = sandbox.run(&[
        "check",
        "--name",
        "nightly",
        "--singleton",
        "--scope",
        "src",
    ])?;
    assert_eq!(singleton.code(), 75);
    assert!(
        singleton.stderr.contains("singleton `nightly` is running"),
        "{}",
        singleton.stderr
    );
    assert_eq!(sandbox.run(&["check", "--scope", "src"])?.code(), 0);
    assert_eq!(holder.finish().and_then(|s| s.code()), Some(0));
    assert_eq!(sandbox.run(&["check", "--scope", "docs/api"])?.code(), 0);
    Ok(())
}

/// Without --name, `check` asks about the scope alone: no lock file name, however it is
/// spelled, makes a disjoint scope busy; with --name, a live lock of that name does.
#[test]
fn check_without_a_name_asks_about_the_scope_alone() -> TestResult {
    let sandbox = Sandbox::new()?;
    let mut holder = sandbox.hold("scope-lock-check", &["--scope", "src"])?;
    let free = sandbox.run(&["check", "--scope", "docs"])?;
    assert_eq!(free.code(), 0, "{}", free.stderr);
    let named = sandbox.run(&["check", "--name", "scope-lock-check", "--scope", "docs"])?;
    assert_eq!(named.code(), 75);
    assert!(
        named
            .stderr
            .contains("lock name `scope-lock-check` is taken"),
        "{}",
        named.stderr
    );
    let nameless_singleton = sandbox.run(&["check", "--singleton", "--scope", "docs"])?;
    assert_eq!(
        nameless_singleton.code(),
        2,
        "{}",
        nameless_singleton.stderr
    );
    assert_eq!(holder.finish().and_then(|s| s.code()), Some(0));
    Ok(())
}
