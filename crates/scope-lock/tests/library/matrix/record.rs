//! R1 of the original's suite: the record, in the original's shape and ours.

use std::fs;

use scope_lock::LockRecord;
use scope_lock::testing::{TestResult, expect_conflict, fixture};
use serde_json::{Value, json};

use super::{STARTED, strings};

#[test]
fn record_round_trips_through_json_in_the_originals_exact_shape() -> TestResult {
    let original = r#"{"loop_name": "demo", "scope": ["/abs/repo/src", "/abs/repo/docs"], "pid": 7818, "started_at": "2026-11-27T21:33:58.129615+00:00", "singleton": true}"#;
    let record = LockRecord::new(
        "demo",
        strings(&["/abs/repo/src", "/abs/repo/docs"]),
        7818,
        "2026-11-27T21:33:58.129615+00:00",
    )
    .with_singleton(true);
    assert_eq!(record.to_json(), original);
    let parsed = LockRecord::from_json(original.as_bytes())?;
    assert_eq!(parsed, record);
    assert_eq!(parsed.loop_name(), "demo");
    assert_eq!(parsed.scope(), ["/abs/repo/src", "/abs/repo/docs"]);
    assert_eq!(parsed.pid(), 7818);
    assert_eq!(parsed.started_at(), "2026-11-27T21:33:58.129615+00:00");
    assert!(parsed.singleton());
    assert!(!parsed.is_flock_liveness());

    let ours = record.clone().with_flock_liveness();
    assert_eq!(LockRecord::from_json(ours.to_json().as_bytes())?, ours);
    Ok(())
}

#[test]
fn singleton_false_is_omitted_and_a_record_without_singleton_reads_false() -> TestResult {
    let record = LockRecord::new("a", strings(&["/x"]), 5, STARTED);
    let json = record.to_json();
    assert_eq!(
        json,
        format!(r#"{{"loop_name": "a", "scope": ["/x"], "pid": 5, "started_at": "{STARTED}"}}"#)
    );
    assert!(!json.contains("singleton"));
    assert!(!LockRecord::from_json(json.as_bytes())?.singleton());
    assert!(
        LockRecord::from_json(record.with_singleton(true).to_json().as_bytes())?.singleton(),
        "singleton true must be written and read back"
    );
    Ok(())
}

#[test]
fn an_acquired_singleton_lock_file_is_the_originals_json_plus_our_liveness_key() -> TestResult {
    let f = fixture()?;
    let guard = f
        .locks
        .try_acquire(&f.request("r1", "src").singleton(true))?;
    let text = fs::read_to_string(guard.path())?;
    let record = guard.record();
    // Then who we are beyond our pid (docs/protocol.md, A2), where /proc can tell (Linux).
    let identity = match (record.pid_namespace(), record.pid_start_ticks()) {
        (Some(namespace), Some(started)) => {
            format!(r#", "pid_namespace": {namespace}, "pid_start_ticks": {started}"#)
        }
        _ => String::new(),
    };
    assert_eq!(
        identity.is_empty(),
        cfg!(not(target_os = "linux")),
        "{text}"
    );
    let expected = format!(
        r#"{{"loop_name": "r1", "scope": ["{}"], "pid": {}, "started_at": "{}", "singleton": true, "liveness": "flock"{identity}, "token": {}}}"#,
        f.path("src"),
        std::process::id(),
        record.started_at(),
        guard.token()
    );
    assert_eq!(text, expected);
    // Python's datetime.now(UTC).isoformat(): 2026-11-27T21:33:58.129615+00:00
    let started = record.started_at();
    assert_eq!(started.len(), 32, "{started}");
    assert!(started.ends_with("+00:00"), "{started}");
    let parsed = LockRecord::from_json(text.as_bytes())?;
    assert_eq!(&parsed, record);
    assert!(parsed.singleton());
    assert!(parsed.is_flock_liveness());
    guard.release()?;
    Ok(())
}

#[test]
fn an_acquired_non_singleton_lock_file_has_no_singleton_key_and_reads_false() -> TestResult {
    let f = fixture()?;
    let guard = f.acquire("plain", "src")?;
    let bytes = fs::read(guard.path())?;
    let value: Value = serde_json::from_slice(&bytes)?;
    let object = value.as_object().ok_or("lock file is not a JSON object")?;
    assert!(!object.contains_key("singleton"), "{value}");
    assert_eq!(object["loop_name"], json!("plain"));
    assert_eq!(object["scope"], json!([f.path("src")]));
    assert_eq!(object["pid"], json!(std::process::id()));
    let parsed = LockRecord::from_json(&bytes)?;
    assert!(!parsed.singleton());
    assert_eq!(&parsed, guard.record());
    Ok(())
}

#[test]
fn an_original_file_with_a_legacy_string_scope_is_read_and_enforced() -> TestResult {
    let f = fixture()?;
    let legacy = format!(
        r#"{{"loop_name": "legacy", "scope": "{}", "pid": {}, "started_at": "{STARTED}"}}"#,
        f.path("docs"),
        std::process::id()
    );
    let path = f.write_lock_file("legacy", legacy.as_bytes())?;
    let listing = f.locks.list_locks()?;
    assert_eq!(listing.locks().len(), 1);
    assert_eq!(listing.locks()[0].record().scope(), [f.path("docs")]);
    assert!(!listing.locks()[0].record().singleton());
    let conflict = expect_conflict(f.acquire("new", "docs/api"));
    assert_eq!(conflict.lock_path(), path);
    assert_eq!(fs::read(&path)?, legacy.as_bytes());
    Ok(())
}

#[test]
fn non_ascii_names_and_paths_are_written_ascii_escaped_like_python_and_read_back() -> TestResult {
    let f = fixture()?;
    let guard = f.acquire("\u{e9}-loop", "d\u{e9}\u{1f600}")?;
    let text = fs::read_to_string(guard.path())?;
    assert!(text.is_ascii(), "{text}");
    assert!(
        text.starts_with(r#"{"loop_name": "\u00e9-loop", "scope": ["#),
        "{text}"
    );
    assert!(text.contains(r#"/d\u00e9\ud83d\ude00"]"#), "{text}");
    let parsed = LockRecord::from_json(text.as_bytes())?;
    assert_eq!(parsed.loop_name(), "\u{e9}-loop");
    assert_eq!(parsed.scope(), [f.path("d\u{e9}\u{1f600}")]);
    assert_eq!(&parsed, guard.record());
    Ok(())
}
