//! `list`, `check`, `clean` and `break`, driven as real processes, with snapshots of their
//! human and JSON output (the sandbox path, pids and times redacted).

use crate::support;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::support::{BOUND, Sandbox, TestResult, original_record, redact_dir};

/// A record of ours (it has the marker) with a pid that is not a number.
const BROKEN_OURS: &str = r#"{"loop_name": "half", "scope": ["/srv/half"], "pid": "x", "started_at": "2026-01-01T00:00:00.000000+00:00", "liveness": "flock"}"#;

/// A waiter's ticket as a waiter killed while waiting leaves it: its record, and no flock.
const STALE_TICKET: &str = "00000000000000000007";

/// Files in the waiting queue that are not tickets by name, and a name that is a ticket's but
/// a symlink (to a file outside `.running/`, unlocked): none of them is ever touched.
const NOT_TICKETS: [&str; 3] = ["7", "notes.txt", ".00000000000000000009"];
const SYMLINKED_TICKET: &str = "00000000000000000008";

/// The directory as the original (and the lock files) leave it: a live holder of ours, a live
/// original-format lock (this test process), a stale lock of ours, an unheld lock of ours
/// whose record is invalid, an unreadable file that may be the original's (no marker, no
/// pid), an orphaned publication, the original's other files, and in the waiting queue a
/// killed waiter's ticket beside files that are not tickets.
fn populate(
    sandbox: &Sandbox,
) -> Result<(support::Holder, support::Sleeper), Box<dyn std::error::Error>> {
    let holder = sandbox.hold(
        "docs-fixer",
        &[
            "--instance-id",
            "gen/run-7",
            "--scope",
            "docs",
            "--scope",
            "README.md",
            "--singleton",
        ],
    )?;
    let running = sandbox.running();
    // The original's live lock names a process of its own, whose command line is known.
    let legacy = support::Sleeper::start()?;
    let me = legacy.pid();
    fs::write(
        running.join("legacy.lock"),
        original_record("legacy", "/srv/src", me, "2026-01-01T00:00:00.000000+00:00"),
    )?;
    fs::write(
        running.join("stale.lock"),
        r#"{"loop_name": "stale", "scope": ["/srv/stale"], "pid": 1, "started_at": "2026-01-01T00:00:00.000000+00:00", "liveness": "flock"}"#,
    )?;
    fs::write(running.join("broken.lock"), BROKEN_OURS)?;
    fs::write(running.join("foreign.lock"), "{\"loop_name\": ")?;
    fs::write(running.join(".scope-lock-publish-AbC123.tmp"), "partial")?;
    for other in [
        "legacy.pid",
        "legacy.log",
        "legacy.state.json",
        "legacy.events.jsonl",
        "user-stop.marker",
    ] {
        fs::write(running.join(other), format!("kept: {other}"))?;
    }
    let queue = running.join(".queue");
    fs::create_dir(&queue)?;
    fs::write(
        queue.join(STALE_TICKET),
        r#"{"loop_name": "gone-waiter", "scope": ["/srv/gone"], "pid": 1, "started_at": "2026-01-01T00:00:00.000000+00:00", "liveness": "flock"}"#,
    )?;
    for other in NOT_TICKETS {
        fs::write(queue.join(other), format!("kept: {other}"))?;
    }
    let outside = sandbox.path().join("outside-ticket");
    fs::write(&outside, "kept: outside-ticket")?;
    std::os::unix::fs::symlink(&outside, queue.join(SYMLINKED_TICKET))?;
    Ok((holder, legacy))
}

/// Checks that the files `populate` put in the queue that are not tickets are all there, as
/// they were.
fn assert_not_tickets_kept(sandbox: &Sandbox) -> TestResult {
    let queue = sandbox.running().join(".queue");
    for other in NOT_TICKETS {
        assert_eq!(
            fs::read_to_string(queue.join(other))?,
            format!("kept: {other}"),
            "{other}"
        );
    }
    let link = queue.join(SYMLINKED_TICKET);
    assert_eq!(fs::read_link(&link)?, sandbox.path().join("outside-ticket"));
    assert_eq!(fs::read_to_string(&link)?, "kept: outside-ticket");
    Ok(())
}

/// `pids`, those with more digits first: replacing 123 before 1234 would leave "[pid]4".
fn longest_first(pids: &[u32]) -> Vec<u32> {
    let mut pids = pids.to_vec();
    pids.sort_by_key(|pid| std::cmp::Reverse(*pid));
    pids
}

/// `text` with the sandbox path, the given pids and the live locks' start times replaced.
fn redact(
    text: &str,
    sandbox: &Sandbox,
    pids: &[u32],
) -> Result<String, Box<dyn std::error::Error>> {
    // The holder's command line names the `scope-lock` built here.
    let mut text =
        redact_dir(text, sandbox.path()).replace(env!("CARGO_BIN_EXE_scope-lock"), "[scope-lock]");
    for pid in longest_first(pids) {
        text = text.replace(&format!("pid {pid}"), "pid [pid]");
        text = text.replace(&format!("\"pid\": {pid}"), "\"pid\": \"[pid]\"");
        text = text.replace(&format!("-{pid}-"), "-[pid]-");
    }
    let listing = scope_lock::LockManager::new(sandbox.path().join(".loops")).list_locks()?;
    for lock in listing.locks() {
        let started_at = lock.record().started_at();
        // The records this file writes by hand keep their fixed time.
        if !started_at.starts_with("2026-01-01T00:00:00") {
            text = text.replace(started_at, "[started_at]");
        }
    }
    Ok(text)
}

#[test]
fn list_json_has_the_documented_shape() -> TestResult {
    let sandbox = Sandbox::new()?;
    let (mut holder, legacy) = populate(&sandbox)?;
    let mut command = sandbox.command(&["list", "--json"]);
    command.stdout(Stdio::piped());
    let out = support::run_to_end(command)?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let value: serde_json::Value = serde_json::from_str(&out.stdout)?;
    // The moved-aside file is named after the pid of the scanning `list` process.
    let text = redact(
        &out.stdout,
        &sandbox,
        &[holder.pid(), legacy.pid(), std::process::id()],
    )?;
    let text = redact_invalid_suffix(&text);
    insta::assert_snapshot!("list_json", text);
    assert_eq!(value["locks"].as_array().map(Vec::len), Some(2));
    assert_eq!(holder.finish().and_then(|s| s.code()), Some(0));
    Ok(())
}

/// `.broken.lock.invalid-<pid>-<n>` → `.broken.lock.invalid-[pid]-<n>`.
fn redact_invalid_suffix(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(".invalid-") {
        let (head, tail) = rest.split_at(at + ".invalid-".len());
        out.push_str(head);
        let digits = tail.chars().take_while(char::is_ascii_digit).count();
        out.push_str(if digits > 0 { "[pid]" } else { "" });
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

#[test]
fn list_prints_holders_problems_and_what_clean_would_do() -> TestResult {
    let sandbox = Sandbox::new()?;
    let (mut holder, legacy) = populate(&sandbox)?;
    let out = sandbox.run(&["list"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let pids = [holder.pid(), legacy.pid(), std::process::id()];
    let text = redact(&out.stdout, &sandbox, &pids)?;
    // Column widths follow the pids' lengths; the table layout itself is unit-tested.
    let mut text: String = redact_invalid_suffix(&text)
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" ") + "\n")
        .collect();
    for pid in longest_first(&pids) {
        text = text.replace(&format!(" {pid} "), " [pid] ");
    }
    insta::assert_snapshot!("list_text", text);
    assert_eq!(holder.finish().and_then(|s| s.code()), Some(0));
    Ok(())
}

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

#[test]
fn clean_reclaims_stale_locks_and_leaves_live_locks_and_other_files_alone() -> TestResult {
    let sandbox = Sandbox::new()?;
    let (mut holder, legacy) = populate(&sandbox)?;
    let running = sandbox.running();
    let out = sandbox.run(&["clean"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let text = redact_invalid_suffix(&redact(&out.stdout, &sandbox, &[holder.pid()])?);
    insta::assert_snapshot!("clean_text", text);

    for other in [
        "legacy.pid",
        "legacy.log",
        "legacy.state.json",
        "legacy.events.jsonl",
        "user-stop.marker",
    ] {
        assert_eq!(
            fs::read_to_string(running.join(other))?,
            format!("kept: {other}"),
            "{other}"
        );
    }
    assert!(
        !running.join("stale.lock").exists(),
        "the stale lock was not reclaimed"
    );
    assert!(!running.join(".scope-lock-publish-AbC123.tmp").exists());
    assert!(
        !running.join(".queue").join(STALE_TICKET).exists(),
        "the killed waiter's ticket was not removed"
    );
    assert_not_tickets_kept(&sandbox)?;
    assert!(
        !running.join("broken.lock").exists(),
        "our unheld lock with an invalid record was not moved aside"
    );
    // Without our marker and without a pid, it may be the original's live lock: left as is.
    assert_eq!(
        fs::read_to_string(running.join("foreign.lock"))?,
        "{\"loop_name\": "
    );
    let moved: Vec<_> = fs::read_dir(&running)?
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".broken.lock.invalid-")
        })
        .collect();
    assert_eq!(moved.len(), 1, "the unreadable lock's content must be kept");
    assert_eq!(fs::read_to_string(moved[0].path())?, BROKEN_OURS);
    // The live locks are untouched and still held.
    let listed = sandbox.run(&["list", "--json"])?;
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout)?;
    let names: Vec<&str> = listed["locks"]
        .as_array()
        .map(|locks| locks.iter().filter_map(|l| l["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["gen/run-7", "legacy"]);
    let record = original_record(
        "legacy",
        "/srv/src",
        legacy.pid(),
        "2026-01-01T00:00:00.000000+00:00",
    );
    assert_eq!(fs::read_to_string(running.join("legacy.lock"))?, record);
    assert_eq!(holder.finish().and_then(|s| s.code()), Some(0));
    // A second clean has nothing left to reclaim or move.
    let again = sandbox.run(&["clean"])?;
    assert!(
        !again.stdout.contains("reclaimed") && !again.stdout.contains("moved aside"),
        "{}",
        again.stdout
    );
    Ok(())
}

/// Every entry under a directory, recursively, with the contents of its files.
type Tree = std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>;

fn tree(dir: &std::path::Path) -> Result<Tree, Box<dyn std::error::Error>> {
    let mut found = Tree::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let content = if path.is_dir() {
                pending.push(path.clone());
                Vec::new()
            } else {
                fs::read(&path)?
            };
            found.insert(path, content);
        }
    }
    Ok(found)
}

#[test]
fn clean_dry_run_changes_no_file_and_says_what_clean_would_do() -> TestResult {
    let sandbox = Sandbox::new()?;
    let (mut holder, legacy) = populate(&sandbox)?;
    let running = sandbox.running();
    let before = tree(&running)?;

    let text_out = sandbox.run(&["clean", "--dry-run"])?;
    assert_eq!(text_out.code(), 0, "{}", text_out.stderr);
    let mut command = sandbox.command(&["clean", "--dry-run", "--json"]);
    command.stdout(Stdio::piped());
    let json_out = support::run_to_end(command)?;
    assert_eq!(json_out.code(), 0, "{}", json_out.stderr);
    // Taken before `redact`, whose own listing cleans.
    let after = tree(&running)?;
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "clean --dry-run added or removed a file"
    );
    assert_eq!(after, before, "clean --dry-run changed a file's content");

    let value: serde_json::Value = serde_json::from_str(&json_out.stdout)?;
    assert_eq!(value["dry_run"], true);

    // The real clean then does what the dry run said (before `redact`, which cleans too).
    let cleaned = sandbox.run(&["clean", "--json"])?;
    let cleaned: serde_json::Value = serde_json::from_str(&cleaned.stdout)?;
    assert_eq!(cleaned["dry_run"], false);
    assert_eq!(cleaned["reclaimed"], value["reclaimed"]);
    assert_eq!(cleaned["orphans"], value["orphans"]);
    assert_eq!(cleaned["stale_tickets"], value["stale_tickets"]);
    assert!(!running.join("stale.lock").exists());
    assert!(!running.join(".queue").join(STALE_TICKET).exists());
    assert_not_tickets_kept(&sandbox)?;
    // The original-format lock is this test process's.
    let pids = [holder.pid(), legacy.pid(), std::process::id()];
    let text = redact(&json_out.stdout, &sandbox, &pids)?;
    insta::assert_snapshot!("clean_dry_run_json", text);
    let text = redact(&text_out.stdout, &sandbox, &pids)?;
    insta::assert_snapshot!("clean_dry_run_text", text);

    assert_eq!(holder.finish().and_then(|s| s.code()), Some(0));
    Ok(())
}

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

/// The tickets in the waiting queue, lowest number first.
fn tickets(sandbox: &Sandbox) -> Result<Vec<std::path::PathBuf>, Box<dyn std::error::Error>> {
    let mut found = fs::read_dir(sandbox.running().join(".queue"))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<Vec<_>, _>>()?;
    found.sort();
    Ok(found)
}

#[cfg(target_os = "linux")]
#[test]
fn clean_removes_a_killed_waiters_ticket_and_live_waiters_still_go_in_order() -> TestResult {
    use std::os::unix::process::ExitStatusExt;

    let sandbox = Sandbox::new()?;
    let mut holder = sandbox.hold("docs-fixer", &["--scope", "docs"])?;
    // The waiter is killed while no other waiter is queued: a live waiter's next attempt (it
    // attempts again each time it reports, about once a second) would remove the dead ticket
    // before `clean` could, so the test would depend on when that happens.
    let (mut killed, _) = sandbox.waiter("killed", &["--scope", "docs/guide"])?;
    let queued = tickets(&sandbox)?;
    assert_eq!(queued.len(), 1, "{queued:?}");
    killed.signal(rustix::process::Signal::KILL)?;
    let status = killed.wait(BOUND).ok_or("the killed waiter did not exit")?;
    assert_eq!(status.signal(), Some(9));
    assert_eq!(
        tickets(&sandbox)?,
        queued,
        "the killed waiter's ticket is gone already"
    );
    let said = format!(
        "{} (ticket of a waiter killed while waiting)\n",
        queued[0].display()
    );

    let dry = sandbox.run(&["clean", "--dry-run"])?;
    assert_eq!(dry.code(), 0, "{}", dry.stderr);
    assert!(
        dry.stdout.contains(&format!("would remove {said}")),
        "{}",
        dry.stdout
    );
    assert_eq!(
        tickets(&sandbox)?,
        queued,
        "clean --dry-run removed a ticket"
    );

    let out = sandbox.run(&["clean"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!("removed {said}")),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.matches("ticket").count(), 1, "{}", out.stdout);
    assert_eq!(tickets(&sandbox)?, Vec::<std::path::PathBuf>::new());

    // Live waiters' tickets, flocked by them, are left by `clean`, which names none of them.
    let (mut first, _) = sandbox.waiter("first", &["--scope", "docs/api"])?;
    let (mut second, _) = sandbox.waiter("second", &["--scope", "docs"])?;
    let queued = tickets(&sandbox)?;
    assert_eq!(queued.len(), 2, "{queued:?}");
    let again = sandbox.run(&["clean", "--json"])?;
    assert_eq!(again.code(), 0, "{}", again.stderr);
    let again: serde_json::Value = serde_json::from_str(&again.stdout)?;
    assert_eq!(again["stale_tickets"], serde_json::json!([]));
    assert_eq!(
        tickets(&sandbox)?,
        queued,
        "clean removed a live waiter's ticket"
    );

    // The live waiters still get the scope, in the order they came, when its holder ends.
    assert_eq!(holder.finish().and_then(|s| s.code()), Some(0));
    first.assert_cmd_runs("the first waiter")?;
    assert!(
        second.is_running(),
        "the second waiter did not wait its turn"
    );
    assert_eq!(first.finish().and_then(|s| s.code()), Some(0));
    second.assert_cmd_runs("the second waiter")?;
    assert_eq!(second.finish().and_then(|s| s.code()), Some(0));
    assert_eq!(tickets(&sandbox)?, Vec::<std::path::PathBuf>::new());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// What a failure says, and JSON for any file name (SL-12)
// ---------------------------------------------------------------------------------------------

/// Asserts that a failure's message names `path` and says `reason` in the system's words.
fn assert_says_why(out: &support::Output, path: &std::path::Path, reason: &str) {
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&path.display().to_string()),
        "the message does not name {}: {}",
        path.display(),
        out.stderr
    );
    assert!(
        out.stderr.contains(reason),
        "the message drops the OS cause {reason:?}: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("(os error"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

const EVERY_COMMAND: [&[&str]; 4] = [
    &["list"],
    &["check", "--scope", "src"],
    &["clean"],
    &["run", "--name", "job", "--scope", "src", "--", "true"],
];

#[test]
fn a_loops_dir_that_is_a_file_fails_saying_not_a_directory() -> TestResult {
    let sandbox = Sandbox::new()?;
    fs::write(sandbox.path().join("afile"), "")?;
    for args in EVERY_COMMAND {
        let mut all = vec!["--loops-dir", "afile"];
        all.extend_from_slice(args);
        let out = sandbox.run(&all)?;
        assert_says_why(&out, &sandbox.path().join("afile"), "Not a directory");
    }
    Ok(())
}

#[test]
fn a_lock_directory_another_user_cannot_open_fails_saying_permission_denied() -> TestResult {
    if !support::hostile::available(
        "a_lock_directory_another_user_cannot_open_fails_saying_permission_denied",
    ) {
        return Ok(());
    }
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new()?;
    // `nobody` may enter the project and `.loops`, but not root's `.running/`.
    fs::set_permissions(sandbox.path(), fs::Permissions::from_mode(0o755))?;
    fs::create_dir_all(sandbox.running())?;
    fs::set_permissions(sandbox.running(), fs::Permissions::from_mode(0o700))?;
    for args in EVERY_COMMAND {
        let mut command = sandbox.command(args);
        support::hostile::run_as(&mut command, support::hostile::NOBODY);
        let out = support::run_to_end(command)?;
        assert_says_why(&out, &sandbox.running(), "Permission denied");
    }
    Ok(())
}

/// A path read back from the JSON output, byte for byte.
#[derive(Debug, serde::Deserialize)]
struct JsonPath(#[serde(deserialize_with = "scope_lock::deserialize_json_path")] PathBuf);

#[derive(Debug, serde::Deserialize)]
struct ListingDoc {
    running_dir: JsonPath,
    locks: Vec<LockDoc>,
    problems: Vec<ProblemDoc>,
    reclaimed: Vec<JsonPath>,
    orphans: Vec<JsonPath>,
    stale_tickets: Vec<JsonPath>,
}

#[derive(Debug, serde::Deserialize)]
struct LockDoc {
    name: JsonPath,
    path: JsonPath,
    scope: Vec<JsonPath>,
}

#[derive(Debug, serde::Deserialize)]
struct ProblemDoc {
    path: JsonPath,
}

#[derive(Debug, serde::Deserialize)]
struct CheckDoc {
    conflict: ConflictDoc,
}

#[derive(Debug, serde::Deserialize)]
struct ConflictDoc {
    name: JsonPath,
    path: JsonPath,
    holder: HolderDoc,
}

#[derive(Debug, serde::Deserialize)]
struct HolderDoc {
    scope: Vec<JsonPath>,
}

fn bytes_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

/// `scope-lock ARGS` with the loops directory `loops` (which need not be UTF-8).
fn run_in(
    sandbox: &Sandbox,
    loops: &std::path::Path,
    args: &[&str],
) -> Result<support::Output, Box<dyn std::error::Error>> {
    let mut command = sandbox.command(args);
    command.env("SCOPE_LOCK_LOOPS_DIR", loops);
    support::run_to_end(command)
}

fn parse<T: serde::de::DeserializeOwned>(
    out: &support::Output,
    expected_code: i32,
) -> Result<T, Box<dyn std::error::Error>> {
    assert_eq!(out.code(), expected_code, "{}", out.stderr);
    serde_json::from_str(&out.stdout)
        .map_err(|err| format!("not valid JSON ({err}): {}", out.stdout).into())
}

#[test]
fn json_output_escapes_names_that_are_not_utf8_and_they_read_back_byte_for_byte() -> TestResult {
    let sandbox = Sandbox::new()?;
    // Every path in the documents is under this loops directory, so none of them is UTF-8.
    let loops = sandbox.path().join(bytes_path(b"loops-\xff"));
    let running = loops.join(".running");
    let queue = running.join(".queue");
    fs::create_dir_all(&queue)?;
    // The original's live lock, named and scoped in Latin-1 as its json.dump writes such
    // names. Its pid is 1, which is alive and, unlike this test process, never an ancestor
    // that `check` would let through.
    let project = sandbox.path().canonicalize()?;
    let project_text = project.to_str().ok_or("the sandbox path is not UTF-8")?;
    let scope = project.join(bytes_path(b"caf\xe9"));
    let live = running.join(bytes_path(b"caf\xe9.lock"));
    fs::write(
        &live,
        original_record(
            "latin",
            &format!(r"{project_text}/caf\udce9"),
            1,
            "2026-01-01T00:00:00.000000+00:00",
        ),
    )?;
    let check = run_in(
        &sandbox,
        &loops,
        &["check", "--json", "--scope", project_text],
    )?;
    let check: CheckDoc = parse(&check, 75)?;
    assert_eq!(check.conflict.name.0, bytes_path(b"caf\xe9"));
    assert_eq!(check.conflict.path.0, live);
    assert_eq!(check.conflict.holder.scope[0].0, scope);

    // A stale lock, an unreadable one, an orphaned publication and a killed waiter's ticket.
    let mut dead = Command::new("true").spawn()?;
    dead.wait()?;
    let stale = running.join(bytes_path(b"gone\xfd.lock"));
    fs::write(
        &stale,
        original_record(
            "gone",
            "/srv/gone",
            dead.id(),
            "2026-01-01T00:00:00.000000+00:00",
        ),
    )?;
    let unreadable = running.join(bytes_path(b"bad\xfe.lock"));
    fs::write(&unreadable, "{\"loop_name\": ")?;
    let orphan = running.join(".scope-lock-publish-AbC123.tmp");
    fs::write(&orphan, "partial")?;
    let ticket = queue.join(STALE_TICKET);
    fs::write(
        &ticket,
        r#"{"loop_name": "gone-waiter", "scope": ["/srv/gone"], "pid": 1, "started_at": "2026-01-01T00:00:00.000000+00:00", "liveness": "flock"}"#,
    )?;

    let dry = run_in(&sandbox, &loops, &["clean", "--dry-run", "--json"])?;
    let dry: ListingDoc = parse(&dry, 0)?;
    let list = run_in(&sandbox, &loops, &["list", "--json"])?;
    let list: ListingDoc = parse(&list, 0)?;
    for doc in [&dry, &list] {
        assert_eq!(
            doc.running_dir.0,
            project.join(bytes_path(b"loops-\xff/.running"))
        );
        assert_eq!(doc.locks.len(), 1, "{doc:?}");
        assert_eq!(doc.locks[0].name.0, bytes_path(b"caf\xe9"));
        assert_eq!(doc.locks[0].path.0, live);
        assert_eq!(doc.locks[0].scope[0].0, scope);
        assert_eq!(doc.problems.len(), 1, "{doc:?}");
        assert_eq!(doc.problems[0].path.0, unreadable);
        assert_eq!(doc.reclaimed.len(), 1, "{doc:?}");
        assert_eq!(doc.reclaimed[0].0, stale);
        assert_eq!(doc.orphans.len(), 1, "{doc:?}");
        assert_eq!(doc.orphans[0].0, orphan);
        assert_eq!(doc.stale_tickets.len(), 1, "{doc:?}");
        assert_eq!(doc.stale_tickets[0].0, ticket);
    }
    Ok(())
}

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
