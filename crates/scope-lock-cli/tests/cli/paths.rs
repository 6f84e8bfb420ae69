//! `--scope` takes any path, byte for byte: one that is not UTF-8 is locked, blocks what
//! overlaps it, and comes back unchanged from the lock file and from `list --json`.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::support::{self, BOUND, Sandbox, TestResult};

/// A path read back from the JSON output, byte for byte.
#[derive(Debug, serde::Deserialize)]
struct JsonPath(#[serde(deserialize_with = "scope_lock::deserialize_json_path")] PathBuf);

#[derive(Debug, serde::Deserialize)]
struct ListingDoc {
    locks: Vec<LockDoc>,
}

#[derive(Debug, serde::Deserialize)]
struct LockDoc {
    scope: Vec<JsonPath>,
}

#[derive(Debug, serde::Deserialize)]
struct CheckDoc {
    scope: Vec<JsonPath>,
}

/// The Latin-1 `café`: a name that is not UTF-8.
const CAFE: &[u8] = b"caf\xe9";

#[test]
fn a_scope_that_is_not_utf8_is_locked_listed_and_blocks_byte_for_byte() -> TestResult {
    let sandbox = Sandbox::new()?;
    let project = sandbox.path().canonicalize()?;
    let mut command = sandbox.command(&["run", "--name", "latin1", "--scope"]);
    command
        .arg(OsStr::from_bytes(CAFE))
        .args(["--", "sh", "-c", "echo ready; read x; exit 0"]);
    let mut holder = support::spawn(command)?;
    let said = holder.next_line(BOUND);
    if said.as_deref() != Some("ready") {
        let status = holder.wait(BOUND);
        return Err(format!(
            "the holder did not run CMD: {said:?}, {status:?}: {}",
            holder.stderr()
        )
        .into());
    }
    let cafe = project.join(OsStr::from_bytes(CAFE));

    // The lock file writes the byte as Python's json.dump writes os.fsdecode's surrogate.
    let record = fs::read_to_string(sandbox.running().join("latin1.lock"))?;
    assert!(record.contains("/caf\\udce9\""), "{record}");

    let listed = sandbox.run(&["list", "--json"])?;
    assert_eq!(listed.code(), 0, "{}", listed.stderr);
    let listing: ListingDoc = serde_json::from_str(&listed.stdout)?;
    assert_eq!(listing.locks.len(), 1, "{}", listed.stdout);
    assert_eq!(listing.locks[0].scope[0].0, cafe);

    // Inside it is taken; the UTF-8 `café`, which only looks the same, is free.
    let mut inside = sandbox.command(&["check", "--scope"]);
    inside.arg(cafe.join("menu"));
    let inside = support::run_to_end(inside)?;
    assert_eq!(inside.code(), 75, "{}", inside.stderr);
    let lookalike = sandbox.run(&["check", "--scope", "caf\u{e9}"])?;
    assert_eq!(lookalike.code(), 0, "{}", lookalike.stderr);

    // A pattern matches the byte as one character; `literal:` takes such a name as written,
    // and `check --json` reports the path it compared byte for byte.
    let pattern = sandbox.run(&["check", "--scope", "caf?"])?;
    assert_eq!(pattern.code(), 75, "{}", pattern.stderr);
    let longer = sandbox.run(&["check", "--scope", "caf??"])?;
    assert_eq!(longer.code(), 0, "{}", longer.stderr);
    let mut literal = sandbox.command(&["check", "--json", "--scope"]);
    literal.arg(OsStr::from_bytes(b"literal:caf\xe9*"));
    let literal = support::run_to_end(literal)?;
    assert_eq!(literal.code(), 0, "{}", literal.stderr);
    let checked: CheckDoc = serde_json::from_str(&literal.stdout)?;
    assert_eq!(
        checked.scope[0].0,
        project.join(OsStr::from_bytes(b"caf\xe9[*]")),
        "{}",
        literal.stdout
    );

    let status = holder.finish();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    Ok(())
}
