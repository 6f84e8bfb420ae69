//! JSON for any file name: names that are not UTF-8 are escaped and read back byte for byte
//! (SL-12).

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::Command;

use super::STALE_TICKET;
use crate::support::{self, Sandbox, TestResult, original_record};

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
