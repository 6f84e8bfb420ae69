//! `run` as a flock(1) user types it (issue 20, SL-25): a command without `--`, `-w SECS`
//! meaning "wait up to", `-E N` for the conflict status, `-c "command line"`, and a `--help`
//! that says where it differs from flock and why.

use crate::support::{Sandbox, TestResult};

#[test]
fn a_command_without_double_dash_runs_with_its_own_options() -> TestResult {
    let sandbox = Sandbox::new()?;
    // Everything from CMD on is CMD's, options that look like ours included.
    let out = sandbox.run(&["run", "--name", "a", "echo", "--name", "-n", "ran"])?;
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (0, "--name -n ran\n"),
        "{}",
        out.stderr
    );
    Ok(())
}

#[test]
fn an_unknown_option_before_cmd_is_still_a_usage_error() -> TestResult {
    let sandbox = Sandbox::new()?;
    let out = sandbox.run(&["run", "--name", "a", "--bogus", "echo", "ran"])?;
    assert_eq!(out.code(), 2, "{}", out.stderr);
    assert!(out.stderr.contains("'--bogus'"), "{}", out.stderr);
    assert_eq!(out.stdout, "");
    Ok(())
}

/// `-w SECS` waits without `--wait`: the waiter says it is blocked, and runs CMD once the
/// holder ends.
#[test]
fn w_secs_waits_for_the_scope_without_wait() -> TestResult {
    let sandbox = Sandbox::new()?;
    let holder = sandbox.hold("holder", &["--scope", "docs"])?;
    let (mut waiter, said) = crate::support::spawn_waiting(sandbox.command(&[
        "run", "--name", "waiter", "--scope", "docs", "-w", "600", "echo", "got it",
    ]))?;
    assert!(
        said.starts_with("Blocking: waiting for scope docs"),
        "{said}"
    );
    drop(holder);
    waiter.assert_ran("got it");
    Ok(())
}

/// `-w 0` tries once, and `-E N` replaces 75 as the status of a held scope; `-n` is accepted.
#[test]
fn conflict_exit_code_replaces_75_for_a_held_scope() -> TestResult {
    let sandbox = Sandbox::new()?;
    let _holder = sandbox.hold("holder", &["--scope", "docs"])?;
    for (args, status) in [
        (&["-E", "1"][..], 1),
        (&["--conflict-exit-code", "9", "-w", "0"], 9),
        (&["-n"], 75),
        (&[], 75),
    ] {
        let mut all = vec!["run", "--name", "other", "--scope", "docs/api"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["echo", "ran"]);
        let out = sandbox.run(&all)?;
        assert_eq!(out.code(), status, "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{args:?}: CMD ran");
        assert!(
            out.stderr.contains("held by loop `holder`"),
            "{}",
            out.stderr
        );
    }
    Ok(())
}

#[test]
fn c_runs_its_command_line_with_sh() -> TestResult {
    let sandbox = Sandbox::new()?;
    let out = sandbox.run(&["run", "--name", "a", "-c", "echo $((1 + 2)) \"$0\"; exit 4"])?;
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (4, "3 sh\n"),
        "{}",
        out.stderr
    );
    let both = sandbox.run(&["run", "--name", "a", "-c", "true", "echo", "ran"])?;
    assert_eq!(both.code(), 2, "-c and CMD together: {}", both.stderr);
    Ok(())
}

/// The first line of `run --help` says that `run` fails fast; the help says where it differs
/// from flock(1) and why, and that a nested run may take its parent's scope.
#[test]
fn run_help_says_it_fails_fast_and_where_it_differs_from_flock() -> TestResult {
    let sandbox = Sandbox::new()?;
    let out = sandbox.run(&["run", "--help"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let first = out.stdout.lines().next().unwrap_or_default();
    assert!(
        first.contains("fail fast") && first.contains("75"),
        "first line: {first}"
    );
    let (_, flock) = out
        .stdout
        .split_once("Compared with flock(1):\n")
        .ok_or("no comparison with flock(1)")?;
    for difference in [
        "fails fast by default",
        "exits 75",
        "-E 1",
        "sh -c",
        "-w SECS",
    ] {
        assert!(flock.contains(difference), "no `{difference}`:\n{flock}");
    }
    let words = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("may take a scope that overlaps its parent's"),
        "the ancestor rule is not in run --help:\n{}",
        out.stdout
    );
    Ok(())
}
