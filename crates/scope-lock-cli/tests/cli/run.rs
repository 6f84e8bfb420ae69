//! `scope-lock run`, driven as a real process: contention, exit statuses, signals, and what
//! happens to the lock when scope-lock dies.

use crate::support;

use crate::support::{BOUND, Sandbox, TestResult, process_exists};
use rustix::process::Signal;

#[test]
fn two_runs_started_together_on_overlapping_scopes_admit_exactly_one() -> TestResult {
    let sandbox = Sandbox::new()?;
    let mut first = sandbox.spawn_holder("docs-a", &["--scope", "docs"], "")?;
    let mut second = sandbox.spawn_holder("docs-b", &["--scope", "docs/api"], "")?;
    // Each either runs CMD (which prints "ready") or exits 75 without running it (end of output).
    let a = first.next_line(BOUND);
    let b = second.next_line(BOUND);
    let (mut winner, mut loser, winner_name) = match (&a, &b) {
        (Some(line), None) if line.starts_with("ready") => (first, second, "docs-a"),
        (None, Some(line)) if line.starts_with("ready") => (second, first, "docs-b"),
        _ => return Err(format!("expected exactly one CMD to run, got {a:?} and {b:?}").into()),
    };
    let refused = loser.wait(BOUND).ok_or("the refused run did not exit")?;
    assert_eq!(refused.code(), Some(75), "{}", loser.stderr());
    let stderr = loser.stderr();
    assert!(
        stderr.contains(&format!("held by loop `{winner_name}`"))
            && stderr.contains(&format!("pid {}", winner.pid())),
        "the refusal does not name the holder: {stderr}"
    );
    assert_eq!(winner.finish().and_then(|s| s.code()), Some(0));
    Ok(())
}

#[test]
fn a_refused_run_names_the_holder_in_one_line_and_does_not_run_cmd() -> TestResult {
    let sandbox = Sandbox::new()?;
    let holder = sandbox.hold(
        "docs-fixer",
        &["--instance-id", "docs-fixer-7", "--scope", "docs"],
    )?;
    let out = sandbox.run_refused(&["--name", "site", "--scope", "docs/api"])?;
    assert_eq!(out.stdout, "");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    let line = lines[0];
    let dir = sandbox.path().canonicalize()?;
    for needle in [
        format!("{}/docs/api overlaps {}/docs", dir.display(), dir.display()),
        "loop `docs-fixer`".to_owned(),
        "instance `docs-fixer-7`".to_owned(),
        format!("pid {}", holder.pid()),
        "since 20".to_owned(),
    ] {
        assert!(line.contains(&needle), "{needle:?} missing from {line:?}");
    }
    Ok(())
}

#[test]
fn disjoint_scopes_both_run() -> TestResult {
    let sandbox = Sandbox::new()?;
    let mut holder = sandbox.hold("docs", &["--scope", "docs"])?;
    sandbox.assert_runs("src", "src")?;
    // The other holder is still running and still holds its scope.
    let busy = sandbox.run(&["check", "--scope", "docs"])?;
    assert_eq!(busy.code(), 75);
    assert_eq!(holder.finish().and_then(|s| s.code()), Some(0));
    Ok(())
}

#[test]
fn cmd_exit_statuses_and_deaths_by_signal_propagate() -> TestResult {
    let sandbox = Sandbox::new()?;
    std::fs::write(sandbox.path().join("not-executable"), "#!/bin/sh\n")?;
    for (cmd, expected) in [
        (&["true"][..], 0),
        (&["sh", "-c", "exit 3"], 3),
        (&["sh", "-c", "exit 255"], 255),
        (&["sh", "-c", "kill -KILL $$"], 128 + 9),
        (&["sh", "-c", "kill -TERM $$"], 128 + 15),
        (&["./not-executable"], 126),
        (&["no-such-command-anywhere"], 127),
    ] {
        let mut args = vec!["run", "--name", "status", "--"];
        args.extend_from_slice(cmd);
        let out = sandbox.run(&args)?;
        assert_eq!(out.code(), expected, "{cmd:?}: {}", out.stderr);
        // Whatever CMD did, the lock is gone afterwards.
        assert!(!sandbox.running().join("status.lock").exists(), "{cmd:?}");
    }
    Ok(())
}

/// CMD traps the signal, reports whether the lock file still exists while it handles it, and
/// exits 7; the test then checks the lock is free.
///
/// CMD waits for its stdin to close with `wait` on a reader in the background, not with the
/// `read` builtin: dash acts on a trapped signal that comes after its `echo ready` and before
/// `read` blocks only once `read` returns, a window a busy machine can hold open long enough for
/// the signal to fall in (the trap then ran only after the test gave up waiting for its
/// lines). `wait` blocks with the signal already let in (sigsuspend), so it ends whenever the
/// signal comes.
fn signal_reaches_cmd_and_lock_outlives_it(signal: Signal, name: &str) -> TestResult {
    let sandbox = Sandbox::new()?;
    // A job in the background reads /dev/null unless told otherwise: fd 3 keeps stdin for it.
    let script = format!(
        "exec 3<&0\n\
         trap 'test -e .loops/.running/sig.lock && echo held-in-trap; echo got-{name}; exit 7' {name}\n\
         echo ready $$\n\
         cat <&3 >/dev/null 2>&1 &\n\
         wait $!\n\
         exit 0\n"
    );
    let run = [
        "run", "--name", "sig", "--scope", "docs", "--", "sh", "-c", &script,
    ];
    let mut holder = support::spawn(sandbox.command(&run))?;
    holder.assert_cmd_runs("sig")?;
    holder.signal(signal)?;
    // `wait` returns when the trapped signal arrives; if it did not, closing stdin ends it and
    // the missing "got-" line fails the test.
    let mut lines = Vec::new();
    while let Some(line) = holder.next_line(BOUND) {
        lines.push(line);
    }
    let status = holder.finish().ok_or("scope-lock did not exit")?;
    assert_eq!(lines, ["held-in-trap".to_owned(), format!("got-{name}")]);
    assert_eq!(status.code(), Some(7), "{}", holder.stderr());
    assert!(!sandbox.running().join("sig.lock").exists());
    assert_eq!(sandbox.run(&["check", "--scope", "docs"])?.code(), 0);
    Ok(())
}

#[test]
fn sigint_to_scope_lock_reaches_cmd_and_the_lock_is_released_after_cmd_ends() -> TestResult {
    signal_reaches_cmd_and_lock_outlives_it(Signal::INT, "INT")
}

#[test]
fn sigterm_to_scope_lock_reaches_cmd_and_the_lock_is_released_after_cmd_ends() -> TestResult {
    signal_reaches_cmd_and_lock_outlives_it(Signal::TERM, "TERM")
}

#[test]
fn a_run_killed_with_sigkill_keeps_the_scope_locked_until_cmd_ends() -> TestResult {
    let sandbox = Sandbox::new()?;
    let mut holder = sandbox.hold("victim", &["--scope", "docs"])?;
    let cmd_pid = holder.cmd_pid.ok_or("CMD did not say its pid")?;
    holder.signal(Signal::KILL)?;
    let status = holder.wait(BOUND).ok_or("scope-lock survived SIGKILL")?;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    // CMD reads its stdin, which the test keeps open: it runs on, orphaned.
    assert!(process_exists(cmd_pid), "CMD should outlive scope-lock");
    let check = sandbox.run(&["check", "--scope", "docs/api"])?;
    assert_eq!(
        check.code(),
        75,
        "check says the scope is free while CMD (pid {cmd_pid}) still runs: {}{}",
        check.stdout,
        check.stderr
    );
    let second = sandbox.run(&[
        "run",
        "--name",
        "next",
        "--scope",
        "docs/api",
        "--",
        "echo",
        "second ran",
    ])?;
    assert_eq!(
        (second.code(), second.stdout.as_str()),
        (75, ""),
        "a second run got the scope while CMD (pid {cmd_pid}) still runs: {}",
        second.stderr
    );
    // A waiting run gets it once CMD ends, and not before.
    let (mut waiter, _) = support::spawn_waiting(sandbox.command(&[
        "run",
        "--name",
        "next",
        "--scope",
        "docs/api",
        "--wait",
        "--",
        "echo",
        "second ran",
    ]))?;
    assert!(waiter.is_running(), "the waiting run did not wait for CMD");
    holder.finish(); // closes CMD's stdin: CMD ends, and the lock with it
    waiter.assert_ran("second ran");
    Ok(())
}

#[cfg(target_os = "linux")]
#[test]
fn cmd_inherits_the_lock_file_and_nothing_else_of_the_lock_directory() -> TestResult {
    let sandbox = Sandbox::new()?;
    let out = sandbox.run(&[
        "run",
        "--name",
        "fds",
        "--scope",
        "docs",
        "--",
        "sh",
        "-c",
        "ls -l /proc/$$/fd/",
    ])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let lock_dir_fds: Vec<&str> = out
        .stdout
        .lines()
        .filter(|line| line.contains(".running"))
        .collect();
    assert!(
        lock_dir_fds.len() == 1 && lock_dir_fds[0].ends_with("/.running/fds.lock"),
        "CMD should hold the lock file's descriptor and no other in the lock directory:\n{}",
        out.stdout
    );
    Ok(())
}

#[test]
fn the_loops_directory_comes_from_the_flag_or_the_environment() -> TestResult {
    let sandbox = Sandbox::new()?;
    let mut command = sandbox.holder_command("env", &["--scope", "docs"], "");
    command.env("SCOPE_LOCK_LOOPS_DIR", "elsewhere");
    let mut holder = support::spawn(command)?;
    let line = holder.next_line(BOUND).ok_or("CMD did not start")?;
    assert!(line.starts_with("ready"), "{line}");
    assert!(sandbox.path().join("elsewhere/.running/env.lock").exists());
    std::fs::create_dir_all(sandbox.running())?;
    assert_eq!(sandbox.run(&["check", "--scope", "docs"])?.code(), 0);
    let flag = ["check", "--loops-dir", "elsewhere", "--scope", "docs"];
    assert_eq!(sandbox.run(&flag)?.code(), 75);
    assert_eq!(holder.finish().and_then(|s| s.code()), Some(0));
    Ok(())
}

#[test]
fn a_waiting_run_says_so_once_and_runs_when_the_holder_ends() -> TestResult {
    let sandbox = Sandbox::new()?;
    let mut holder = sandbox.hold("docs-a", &["--scope", "docs"])?;
    let command = sandbox.command(&[
        "run", "--name", "docs-b", "--scope", "docs/api", "--wait", "--", "echo", "ran-b",
    ]);
    let (mut waiter, blocking) = support::spawn_waiting(command)?;
    assert!(
        blocking.starts_with("Blocking: waiting for scope docs/api: ")
            && blocking.contains("held by loop `docs-a`")
            && blocking.contains(&format!("pid {}", holder.pid())),
        "{blocking}"
    );
    // It said it waits, and it does: still running, its CMD not run while the holder holds.
    assert!(
        waiter.is_running(),
        "the waiting run exited while the scope was held"
    );
    assert_eq!(holder.finish().and_then(|s| s.code()), Some(0));
    waiter.assert_ran("ran-b");
    assert_eq!(waiter.stderr(), "", "more than one line while waiting");
    Ok(())
}

#[test]
fn a_waiting_run_that_times_out_exits_75_without_running_cmd() -> TestResult {
    let sandbox = Sandbox::new()?;
    let mut holder = sandbox.hold("docs-a", &["--scope", "docs"])?;
    // Longer than the library's one-second report interval, so the wait is reported again
    // meanwhile, and must stay quiet.
    let out = sandbox.run_refused(&[
        "--name",
        "docs-b",
        "--scope",
        "docs/api",
        "--wait",
        "--timeout",
        "1.5",
    ])?;
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stderr);
    assert!(
        lines[0].starts_with("Blocking: waiting for scope docs/api: "),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("scope-lock: timed out waiting: ")
            && lines[1].contains("held by loop `docs-a`"),
        "{}",
        lines[1]
    );
    assert_eq!(holder.finish().and_then(|s| s.code()), Some(0));
    Ok(())
}

/// CMD finds its lock's fencing token in `SCOPE_LOCK_TOKEN`; `list` shows the same token for
/// the lock, in its table and its JSON; the next run's token is larger.
#[test]
fn cmd_gets_the_locks_fencing_token_and_list_shows_it() -> TestResult {
    let sandbox = Sandbox::new()?;
    let mut holder = sandbox.hold_with(
        "fenced",
        &["--scope", "docs"],
        "echo token $SCOPE_LOCK_TOKEN >&2",
    )?;
    let said = holder
        .next_stderr_line(BOUND)
        .ok_or("CMD printed no token")?;
    let token: u64 = said
        .strip_prefix("token ")
        .ok_or_else(|| format!("not a token line: {said:?}"))?
        .parse()?;
    let json = sandbox.run(&["list", "--json"])?;
    let value: serde_json::Value = serde_json::from_str(&json.stdout)?;
    assert_eq!(value["locks"][0]["token"], token, "{}", json.stdout);
    let text = sandbox.run(&["list"])?;
    let row = text.stdout.lines().nth(1).ok_or("no row")?.to_owned();
    let header = text.stdout.lines().next().ok_or("no header")?.to_owned();
    let column = header
        .split_whitespace()
        .position(|name| name == "TOKEN")
        .ok_or_else(|| format!("no TOKEN column: {header}"))?;
    assert_eq!(
        row.split_whitespace().nth(column),
        Some(token.to_string().as_str()),
        "{}",
        text.stdout
    );
    assert_eq!(holder.finish().and_then(|s| s.code()), Some(0));

    let next = sandbox.run(&[
        "run",
        "--name",
        "fenced",
        "--",
        "sh",
        "-c",
        "echo $SCOPE_LOCK_TOKEN",
    ])?;
    assert_eq!(next.code(), 0, "{}", next.stderr);
    let next: u64 = next.stdout.trim().parse()?;
    assert!(next > token, "token {next} after {token}");
    Ok(())
}
