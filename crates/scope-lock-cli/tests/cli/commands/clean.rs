//! `clean` and `clean --dry-run`: what is reclaimed, moved aside or removed, and what is
//! left alone.

use std::fs;

use super::{
    BROKEN_OURS, ORIGINALS_OTHER_FILES, Populated, STALE_TICKET, assert_not_tickets_kept, redact,
    redact_invalid_suffix,
};
use crate::support::{BOUND, Sandbox, TestResult, original_record};

#[test]
fn clean_reclaims_stale_locks_and_leaves_live_locks_and_other_files_alone() -> TestResult {
    let Populated {
        sandbox,
        mut holder,
        legacy,
    } = Populated::new()?;
    let running = sandbox.running();
    let out = sandbox.run(&["clean"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let text = redact_invalid_suffix(&redact(&out.stdout, &sandbox, &[holder.pid()])?);
    insta::assert_snapshot!("clean_text", text);

    for other in ORIGINALS_OTHER_FILES {
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
    let p = Populated::new()?;
    let sandbox = &p.sandbox;
    let running = sandbox.running();
    let before = tree(&running)?;

    let text_out = sandbox.run(&["clean", "--dry-run"])?;
    assert_eq!(text_out.code(), 0, "{}", text_out.stderr);
    let json_out = sandbox.run(&["clean", "--dry-run", "--json"])?;
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
    assert_not_tickets_kept(sandbox)?;
    let text = redact(&json_out.stdout, sandbox, &p.pids())?;
    insta::assert_snapshot!("clean_dry_run_json", text);
    let text = redact(&text_out.stdout, sandbox, &p.pids())?;
    insta::assert_snapshot!("clean_dry_run_text", text);

    p.finish();
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
