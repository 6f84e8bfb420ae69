//! `list`, `check`, `clean` and `break`, driven as real processes, with snapshots of their
//! human and JSON output (the sandbox path, pids and times redacted): one module a command,
//! then what a failure says, file names that are not UTF-8 in JSON, and garbage lock files.
//! What they share is here: the populated directory most of them look at, and the redaction.

mod brk;
mod check;
mod clean;
mod failures;
mod garbage;
mod json_names;
mod list;

use std::fs;

use crate::support::{self, Sandbox, TestResult, original_record, redact_dir};

/// A record of ours (it has the marker) with a pid that is not a number.
const BROKEN_OURS: &str = r#"{"loop_name": "half", "scope": ["/srv/half"], "pid": "x", "started_at": "2026-01-01T00:00:00.000000+00:00", "liveness": "flock"}"#;

/// A waiter's ticket as a waiter killed while waiting leaves it: its record, and no flock.
const STALE_TICKET: &str = "00000000000000000007";

/// The original's other files in `.running/` (its pid file, log, state, events and stop
/// marker), which no command touches.
const ORIGINALS_OTHER_FILES: [&str; 5] = [
    "legacy.pid",
    "legacy.log",
    "legacy.state.json",
    "legacy.events.jsonl",
    "user-stop.marker",
];

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
    for other in ORIGINALS_OTHER_FILES {
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

/// A sandbox as [`populate`] leaves it, with the processes that hold its live locks.
struct Populated {
    sandbox: Sandbox,
    holder: support::Holder,
    legacy: support::Sleeper,
}

impl Populated {
    fn new() -> Result<Self, Box<dyn std::error::Error>> {
        let sandbox = Sandbox::new()?;
        let (holder, legacy) = populate(&sandbox)?;
        Ok(Self {
            sandbox,
            holder,
            legacy,
        })
    }

    /// The pids a listing of it names: its holder's, the original's process, and this test
    /// process's.
    fn pids(&self) -> [u32; 3] {
        [self.holder.pid(), self.legacy.pid(), std::process::id()]
    }

    /// Ends the holder's CMD, which must exit 0.
    fn finish(mut self) {
        assert_eq!(self.holder.finish().and_then(|s| s.code()), Some(0));
    }
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
