//! `list` as an lslocks(8) user expects it (issue 20, SL-25): a look that changes nothing and
//! needs no write access, waiters shown beside holders, the holder's command, `-o`,
//! `--noheadings`, `--raw`, and a `"version"` in every JSON report.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::{self, BOUND, Sandbox, TestResult, hostile, original_record};

/// Every file below `dir`, with its contents (a directory as `<dir>`).
fn tree(dir: &Path) -> Result<BTreeMap<String, String>, Box<dyn std::error::Error>> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(next) = todo.pop() {
        for entry in fs::read_dir(&next)? {
            let path = entry?.path();
            let name = path.strip_prefix(dir)?.display().to_string();
            if path.is_dir() {
                files.insert(name, "<dir>".to_owned());
                todo.push(path);
            } else {
                files.insert(name, fs::read_to_string(&path)?);
            }
        }
    }
    Ok(files)
}

/// A stale lock of the original's (its pid is dead), an unheld file of ours with an invalid
/// record, an orphaned publication and a dead waiter's ticket: all things a cleaning scan
/// removes or moves aside.
fn leave_litter(running: &Path) -> TestResult {
    let dead = support::dead_pid()?;
    fs::create_dir_all(running.join(".queue"))?;
    fs::write(
        running.join("stale.lock"),
        original_record(
            "stale",
            "/srv/stale",
            dead,
            "2026-01-01T00:00:00.000000+00:00",
        ),
    )?;
    fs::write(
        running.join("broken.lock"),
        r#"{"loop_name": "half", "pid": "x", "liveness": "flock"}"#,
    )?;
    fs::write(running.join(".scope-lock-publish-AbC123.tmp"), "partial")?;
    fs::write(
        running.join(".queue/00000000000000000007"),
        original_record(
            "gone",
            "/srv/gone",
            dead,
            "2026-01-01T00:00:00.000000+00:00",
        ),
    )?;
    Ok(())
}

#[test]
fn list_changes_nothing_and_says_what_clean_would_do() -> TestResult {
    let sandbox = Sandbox::new()?;
    let running = sandbox.running();
    fs::create_dir_all(&running)?;
    leave_litter(&running)?;
    let before = tree(&running)?;
    for args in [&["list"][..], &["list", "--json"]] {
        let out = sandbox.run(args)?;
        assert_eq!(out.code(), 0, "{args:?}: {}", out.stderr);
        assert_eq!(tree(&running)?, before, "{args:?} changed the directory");
    }
    let out = sandbox.run(&["list"])?;
    for said in [
        "stale (holder gone); `scope-lock clean` would remove:",
        "left by acquirers killed while publishing; `scope-lock clean` would remove:",
        "tickets of waiters killed while waiting; `scope-lock clean` would remove:",
        "not held, would be moved aside",
    ] {
        assert!(out.stdout.contains(said), "no `{said}`:\n{}", out.stdout);
    }
    Ok(())
}

/// A user who may not write the directory, which has no sentinel yet (nobody has locked
/// through it), still sees the live lock in it; nothing is created or removed.
#[test]
fn list_works_on_a_directory_it_may_not_write() -> TestResult {
    if !hostile::available("list_works_on_a_directory_it_may_not_write") {
        return Ok(());
    }
    let sandbox = Sandbox::new()?;
    fs::set_permissions(sandbox.path(), fs::Permissions::from_mode(0o755))?;
    let running = sandbox.running();
    fs::create_dir_all(&running)?;
    // The original's live lock: this test process is its pid.
    fs::write(
        running.join("legacy.lock"),
        original_record(
            "legacy",
            "/srv/src",
            std::process::id(),
            "2026-01-01T00:00:00.000000+00:00",
        ),
    )?;
    leave_litter(&running)?;
    let before = tree(&running)?;
    let mut command = sandbox.command(&["list"]);
    hostile::run_as(&mut command, hostile::NOBODY);
    let out = support::run_to_end(command)?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        out.stdout.lines().any(|line| line.starts_with("legacy ")),
        "{}",
        out.stdout
    );
    assert_eq!(
        tree(&running)?,
        before,
        "list as nobody changed the directory"
    );
    Ok(())
}

/// A waiter is a row of its own: its ticket, its pid, since when, what it waits for, and its
/// command; the holder's row shows the holder's command.
#[test]
fn list_shows_waiters_with_their_ticket_and_what_they_wait_for() -> TestResult {
    let sandbox = Sandbox::new()?;
    let holder = sandbox.hold("holder", &["--scope", "docs"])?;
    let (mut waiter, _) = support::spawn_waiting(sandbox.command(&[
        "run", "--name", "waiter", "--scope", "docs/api", "--wait", "--", "echo", "got it",
    ]))?;

    let out = sandbox.run(&["list"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let row = format!(" waiter  {}  ", waiter.pid());
    assert!(
        out.stdout
            .lines()
            .any(|line| line.contains(&row) && line.contains(" waiting ")),
        "no row of the waiter:\n{}",
        out.stdout
    );

    let out = sandbox.run(&[
        "list",
        "--raw",
        "--noheadings",
        "-o",
        "state,name,loop,pid,ticket,scope,command",
    ])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|line| line.split(' ').collect())
        .collect();
    let docs = sandbox.path().canonicalize()?.join("docs");
    let held = rows
        .iter()
        .find(|row| row[0] == "held")
        .ok_or(out.stdout.clone())?;
    assert_eq!(
        held[1..5],
        ["holder", "holder", &holder.pid().to_string(), "-"]
    );
    assert_eq!(held[5], docs.display().to_string());
    assert!(
        held[6].contains("\\x20run\\x20--name\\x20holder\\x20"),
        "{}",
        held[6]
    );
    let waiting = rows
        .iter()
        .find(|row| row[0] == "waiting")
        .ok_or(out.stdout.clone())?;
    assert_eq!(
        waiting[1..5],
        ["waiter", "waiter", &waiter.pid().to_string(), "1"]
    );
    assert_eq!(waiting[5], docs.join("api").display().to_string());
    assert!(
        waiting[6].contains("\\x20--wait\\x20--\\x20echo\\x20got\\x20it"),
        "{}",
        waiting[6]
    );

    let json = sandbox.run(&["list", "--json"])?;
    let json: serde_json::Value = serde_json::from_str(&json.stdout)?;
    let waiters = json["waiters"].as_array().ok_or("no waiters[]")?;
    assert_eq!(waiters.len(), 1, "{json}");
    assert_eq!(waiters[0]["ticket"], 1);
    assert_eq!(waiters[0]["loop_name"], "waiter");
    assert_eq!(waiters[0]["pid"], waiter.pid());
    assert_eq!(waiters[0]["scope"], serde_json::json!([docs.join("api")]));
    assert_eq!(
        waiters[0]["command"].as_array().and_then(|c| c.last()),
        Some(&"got it".into())
    );
    assert_eq!(json["locks"][0]["command"][1], "run");

    drop(holder);
    waiter.assert_ran("got it");
    Ok(())
}

/// A waiter's NAME is the lock it will take: with an instance id, that id (what `break` will
/// take once it holds), not its loop name; `--json` gives it as `name`.
#[test]
fn a_waiters_name_is_the_lock_it_will_take() -> TestResult {
    let sandbox = Sandbox::new()?;
    let holder = sandbox.hold("holder", &["--scope", "docs"])?;
    let (mut waiter, _) = support::spawn_waiting(sandbox.command(&[
        "run",
        "--name",
        "gen",
        "--instance-id",
        "gen/run-7",
        "--scope",
        "docs",
        "--wait",
        "--",
        "echo",
        "got it",
    ]))?;

    let out = sandbox.run(&["list", "--raw", "--noheadings", "-o", "state,name,loop"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        out.stdout
            .lines()
            .any(|line| line == "waiting gen/run-7 gen"),
        "{}",
        out.stdout
    );
    let json = sandbox.run(&["list", "--json"])?;
    let json: serde_json::Value = serde_json::from_str(&json.stdout)?;
    assert_eq!(json["waiters"][0]["name"], "gen/run-7", "{json}");
    assert_eq!(json["waiters"][0]["loop_name"], "gen", "{json}");

    drop(holder);
    assert_eq!(waiter.next_line(BOUND).as_deref(), Some("got it"));
    assert_eq!(waiter.wait(BOUND).and_then(|s| s.code()), Some(0));
    Ok(())
}

/// A reader that stops early (`list --json | head`) is no failure, for a JSON report as for
/// text: nothing on stderr, and the command's own status.
#[test]
fn a_closed_stdout_is_no_failure_for_json_or_text() -> TestResult {
    let sandbox = Sandbox::new()?;
    let holder = sandbox.hold("holder", &["--scope", "docs"])?;
    let reports: [&[&str]; 4] = [
        &["list"],
        &["list", "--json"],
        &["check", "--json", "--scope", "src"],
        &["break", "--json", "holder"],
    ];
    for args in reports {
        // Its read end closed before the command starts: every write gets EPIPE.
        let (reader, writer) = std::io::pipe()?;
        drop(reader);
        let out = support::run_to_end_with_stdout(sandbox.command(args), writer.into())?;
        assert_eq!((out.code(), out.stderr.as_str()), (0, ""), "{args:?}");
    }
    drop(holder);
    Ok(())
}

/// `-o` picks and orders columns (`+` adds to the default), `--noheadings` drops the heading,
/// `--raw` writes one space between cells with spaces inside them escaped; an unknown column
/// is a usage error naming the known ones.
#[test]
fn list_takes_lslocks_columns_noheadings_and_raw() -> TestResult {
    let sandbox = Sandbox::new()?;
    let holder = sandbox.hold("holder", &["--scope", "docs", "--scope", "README.md"])?;
    let root = sandbox.path().canonicalize()?;
    let pid = holder.pid();

    let out = sandbox.run(&["list", "-o", "PID,name", "--noheadings"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{pid}  holder\n"));

    let out = sandbox.run(&["list", "--raw", "-o", "name,scope"])?;
    assert_eq!(
        out.stdout,
        format!(
            "NAME SCOPE\nholder {}\\x20{}\n",
            root.join("docs").display(),
            root.join("README.md").display()
        )
    );

    let out = sandbox.run(&["list", "-o", "+path"])?;
    let heading = out.stdout.lines().next().unwrap_or_default();
    assert_eq!(
        heading.split_whitespace().collect::<Vec<_>>(),
        [
            "NAME", "LOOP", "PID", "TOKEN", "SINCE", "STATE", "TICKET", "SCOPE", "COMMAND", "PATH"
        ]
    );

    let out = sandbox.run(&["list", "-o", "name,size"])?;
    assert_eq!(out.code(), 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("`size`") && out.stderr.contains("NAME,LOOP"),
        "{}",
        out.stderr
    );
    Ok(())
}

/// Every command that reports in JSON says which version of its documents it writes.
#[test]
fn every_json_report_has_a_version() -> TestResult {
    let sandbox = Sandbox::new()?;
    fs::create_dir_all(sandbox.running())?;
    for args in [
        &["list", "--json"][..],
        &["clean", "--json"],
        &["clean", "--dry-run", "--json"],
        &["check", "--json", "--scope", "docs"],
    ] {
        let out = sandbox.run(args)?;
        assert_eq!(out.code(), 0, "{args:?}: {}", out.stderr);
        let value: serde_json::Value = serde_json::from_str(&out.stdout)?;
        assert_eq!(value["version"], 1, "{args:?}: {}", out.stdout);
    }
    Ok(())
}

/// `check` without a conflict reports the scope it checked, resolved, in JSON too.
#[test]
fn check_json_names_the_resolved_scope_and_the_directory() -> TestResult {
    let sandbox = Sandbox::new()?;
    fs::create_dir_all(sandbox.running())?;
    let out = sandbox.run(&["check", "--json", "--scope", "docs/../src"])?;
    let value: serde_json::Value = serde_json::from_str(&out.stdout)?;
    let root = sandbox.path().canonicalize()?;
    assert_eq!(value["scope"], serde_json::json!([root.join("src")]));
    assert_eq!(value["running_dir"], serde_json::json!(sandbox.running()));
    Ok(())
}

/// `run --json` reports its outcome as one JSON line on stderr (stdout stays CMD's), `break
/// --json` as one document; both with a version, a failure included.
#[test]
fn run_and_break_report_their_outcome_in_json() -> TestResult {
    let sandbox = Sandbox::new()?;
    let parse = |text: &str| -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        let [line] = text.lines().collect::<Vec<_>>()[..] else {
            return Err(format!("not one line: {text:?}").into());
        };
        Ok(serde_json::from_str(line)?)
    };
    let out = sandbox.run(&[
        "run",
        "--json",
        "--name",
        "a",
        "sh",
        "-c",
        "echo out; exit 3",
    ])?;
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (3, "out\n"),
        "{}",
        out.stderr
    );
    let ran = parse(&out.stderr)?;
    assert_eq!(
        (
            &ran["version"],
            &ran["outcome"],
            &ran["status"],
            &ran["exit_code"]
        ),
        (&1.into(), &"ran".into(), &3.into(), &3.into()),
        "{ran}"
    );
    assert_eq!(
        ran["lock"],
        serde_json::json!(sandbox.running().join("a.lock"))
    );

    let holder = sandbox.hold("holder", &["--scope", "docs"])?;
    let out = sandbox.run(&[
        "run", "--json", "-E", "9", "--name", "b", "--scope", "docs", "true",
    ])?;
    assert_eq!(out.code(), 9, "{}", out.stderr);
    let busy = parse(&out.stderr)?;
    assert_eq!(
        (&busy["outcome"], &busy["status"]),
        (&"busy".into(), &9.into()),
        "{busy}"
    );
    assert_eq!(busy["conflict"]["holder"]["pid"], holder.pid());

    let out = sandbox.run(&["break", "holder", "--json"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let shown: serde_json::Value = serde_json::from_str(&out.stdout)?;
    assert_eq!(
        (&shown["version"], &shown["outcome"]),
        (&1.into(), &"shown".into()),
        "{shown}"
    );
    assert_eq!(shown["holders"][0]["pid"], holder.pid());
    assert_eq!(shown["lock"]["name"], "holder");

    let out = sandbox.run(&["break", "nobody", "--json"])?;
    assert_eq!(out.code(), 1, "{}", out.stderr);
    let failed: serde_json::Value = serde_json::from_str(&out.stdout)?;
    assert_eq!(failed["outcome"], "failed", "{failed}");
    assert!(
        failed["message"]
            .as_str()
            .is_some_and(|m| m.contains("no live lock named `nobody`"))
    );
    Ok(())
}
