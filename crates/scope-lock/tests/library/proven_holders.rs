//! SL-13, on the real system: a lock counts as an ancestor's only when the
//! process that holds its flock is that ancestor. A record that names our parent, with our
//! parent's real pid namespace and start time, but whose file someone else holds, blocks us:
//! a pid number, and everything else in a record, can be copied; `/proc/locks` says who holds
//! the flock.

#![cfg(target_os = "linux")]

use std::fs;
use std::os::unix::fs::MetadataExt;

use scope_lock::testing::{TestResult, expect_conflict, fixture};
use scope_lock::{ConflictRule, LockRecord};

/// When `pid` started, in clock ticks after boot (`/proc/<pid>/stat`, field 22, counted from
/// the last `)`, since the command name may hold anything).
fn start_ticks(pid: u32) -> Result<u64, Box<dyn std::error::Error>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_comm = &stat[stat.rfind(')').ok_or("no command name")? + 1..];
    let field = after_comm
        .split_ascii_whitespace()
        .nth(19)
        .ok_or("no field 22")?;
    Ok(field.parse()?)
}

#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "stands in for a process that flocks a lock file naming our parent"
)]
fn a_record_naming_our_parent_blocks_us_when_someone_else_holds_its_flock() -> TestResult {
    let f = fixture()?;
    f.init()?;
    let parent = std::os::unix::process::parent_id();
    let namespace = fs::metadata("/proc/self/ns/pid")?.ino();
    let record = LockRecord::new(
        "parent",
        vec![f.path("src")],
        parent,
        "2026-01-01T00:00:00.000000+00:00",
    )
    .with_flock_liveness();
    // Our keys after `liveness`, as docs/protocol.md (A2) has them.
    let json = record.to_json().replace(
        "\"liveness\": \"flock\"}",
        &format!(
            "\"liveness\": \"flock\", \"pid_namespace\": {namespace}, \"pid_start_ticks\": {}}}",
            start_ticks(parent)?
        ),
    );
    assert!(json.contains("pid_start_ticks"), "{json}");
    let path = f.write_lock_file("parent", json.as_bytes())?;
    // We hold it, not our parent: another open file description of this process.
    let held = fs::File::open(&path)?;
    held.try_lock()
        .map_err(|err| format!("cannot flock {}: {err}", path.display()))?;

    let conflict = expect_conflict(f.acquire("child", "src/deep"));
    assert_eq!(conflict.lock_path(), path);
    assert!(
        matches!(conflict.rule(), ConflictRule::Overlap { .. }),
        "{conflict}"
    );
    assert!(!conflict.is_held_by_this_process(), "{conflict}");

    // Once nobody holds it, it is stale (ours, flock free) and is reclaimed.
    drop(held);
    f.acquire("child", "src/deep")?.release()?;
    Ok(())
}
