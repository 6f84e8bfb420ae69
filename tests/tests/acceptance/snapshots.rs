//! AC-7: the lock file keeps the original's format, so both implementations can share one
//! `.running/` directory. Snapshots pin the JSON (pid, the writer's identity, timestamp and
//! temporary paths redacted); byte-level checks pin the one-line shape; the original's reader
//! is applied to our file, and ours to the original's legacy file.

use std::fs;

use regression::original_reader;
use scope_lock::testing::{Fixture, TestResult, fixture};
use scope_lock::{AcquireError, ConflictRule, Liveness, LockRecord, LockRequest, ScopeGuard};

/// The raw lock file with what changes from run to run replaced by placeholders.
fn redacted_bytes(f: &Fixture, bytes: &[u8]) -> Result<String, Box<dyn std::error::Error>> {
    let record = LockRecord::from_json(bytes)?;
    let mut text = String::from_utf8(bytes.to_vec())?
        .replace(&*f.root.to_string_lossy(), "[project]")
        .replace(&format!("\"pid\": {}", record.pid()), "\"pid\": [pid]")
        .replace(record.started_at(), "[started_at]");
    if let (Some(namespace), Some(started)) = (record.pid_namespace(), record.pid_start_ticks()) {
        text = text
            .replace(
                &format!("\"pid_namespace\": {namespace}"),
                "\"pid_namespace\": [pid_namespace]",
            )
            .replace(
                &format!("\"pid_start_ticks\": {started}"),
                "\"pid_start_ticks\": [pid_start_ticks]",
            );
    }
    Ok(text)
}

/// The singleton both snapshots show: two scope entries, so that the list's shape shows too.
fn acquire_demo_singleton(f: &Fixture) -> Result<ScopeGuard, AcquireError> {
    f.locks.try_acquire(
        &LockRequest::new("demo")
            .scope([f.path("src"), f.path("docs")])
            .singleton(true),
    )
}

#[test]
fn lock_file_json_matches_the_snapshot() -> TestResult {
    let f = fixture()?;
    let guard = acquire_demo_singleton(&f)?;
    let json: serde_json::Value = serde_json::from_slice(&fs::read(guard.path())?)?;
    let root = f.root.to_string_lossy().into_owned();
    insta::assert_json_snapshot!("singleton_lock_file", json, {
        ".pid" => "[pid]",
        ".started_at" => "[started_at]",
        ".pid_namespace" => "[pid_namespace]",
        ".pid_start_ticks" => "[pid_start_ticks]",
        ".scope[]" => insta::dynamic_redaction(move |value, _path| {
            value.as_str().unwrap_or_default().replace(&root, "[project]")
        }),
    });
    guard.release()?;
    Ok(())
}

#[test]
fn lock_file_bytes_keep_the_originals_one_line_shape() -> TestResult {
    let f = fixture()?;
    let singleton = acquire_demo_singleton(&f)?;
    let plain = f.locks.try_acquire(
        &LockRequest::new("plain")
            .instance_id("plain-20261127T000000")
            .scope([f.path("tests")]),
    )?;
    let singleton_bytes = fs::read(singleton.path())?;
    let plain_bytes = fs::read(plain.path())?;
    insta::assert_snapshot!(
        "lock_file_bytes",
        format!(
            "{}\n{}",
            redacted_bytes(&f, &singleton_bytes)?,
            redacted_bytes(&f, &plain_bytes)?
        )
    );
    for bytes in [&singleton_bytes, &plain_bytes] {
        assert!(!bytes.contains(&b'\n'), "one line, no trailing newline");
        assert!(bytes.starts_with(b"{\"loop_name\": \""));
        assert!(bytes.is_ascii(), "Python's json.dump escapes non-ASCII");
    }
    singleton.release()?;
    plain.release()?;
    Ok(())
}

#[test]
fn the_originals_reader_accepts_our_lock_file() -> TestResult {
    let f = fixture()?;
    let guard = f.locks.try_acquire(
        &LockRequest::new("démo")
            .scope([f.path("src")])
            .singleton(true),
    )?;
    let lock = original_reader::parse(&fs::read(guard.path())?)?;
    assert_eq!(lock.loop_name, "démo");
    assert_eq!(lock.scope, [f.path("src")]);
    assert_eq!(lock.pid, std::process::id());
    assert!(lock.singleton);
    assert_eq!(lock.started_at, guard.record().started_at());
    guard.release()?;
    Ok(())
}

#[test]
fn a_legacy_original_lock_file_is_read_and_honoured() -> TestResult {
    let f = fixture()?;
    // Written by an old original: a string scope, no singleton key, no flock; its pid is
    // alive (this process), so it is live by the original's rule.
    let legacy = format!(
        r#"{{"loop_name": "old", "scope": "{}", "pid": {}, "started_at": "2026-01-01T00:00:00.123456+00:00"}}"#,
        f.path("src"),
        std::process::id()
    );
    let lock_file = f.write_lock_file("old", legacy.as_bytes())?;

    let listing = f.locks.list_locks()?;
    let [live] = listing.locks() else {
        panic!("expected one live lock, got {:?}", listing.locks());
    };
    assert_eq!(live.record().scope(), [f.path("src")]);
    assert!(!live.record().singleton());
    assert_eq!(live.liveness(), Liveness::Pid);

    let err = f
        .locks
        .try_acquire(&LockRequest::new("new").scope([f.path("src/deep")]))
        .map(|_| ())
        .unwrap_err();
    let conflict = err.conflict().ok_or("expected a conflict")?;
    assert!(matches!(conflict.rule(), ConflictRule::Overlap { .. }));
    assert_eq!(
        fs::read_to_string(&lock_file)?,
        legacy,
        "the original's file was modified"
    );
    Ok(())
}

/// Our shared locks carry `"mode": "shared"` last; the original's reader ignores the key, so
/// its check (the port's `find_conflict` and `acquire`, which read files with that reader)
/// takes two of our readers, holding one scope together, for held locks: it is stricter than
/// we are, never weaker.
#[test]
fn the_original_sees_our_shared_locks_as_held() -> TestResult {
    let f = fixture()?;
    let review = f
        .locks
        .try_acquire(&LockRequest::new("review").scope([f.path("src")]).shared())?;
    let report = f.locks.try_acquire(
        &LockRequest::new("report")
            .scope([f.path("src/lib")])
            .shared(),
    )?;
    let bytes = fs::read(review.path())?;
    assert!(
        bytes.ends_with(br#", "mode": "shared"}"#),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let seen = original_reader::parse(&bytes)?;
    assert_eq!(seen.scope, [f.path("src")]);

    let original = regression::pre_fix::PreFixLockManager::new(&f.loops_dir());
    let conflict = original
        .find_conflict(&[f.path("src/lib/x")])?
        .ok_or("the original sees no lock where our readers hold src")?;
    assert!(
        ["review", "report"].contains(&conflict.loop_name()),
        "{conflict:?}"
    );
    assert!(
        !original.acquire("original", &[f.path("src")])?,
        "the original acquired a scope our readers hold"
    );
    // And it does not touch them: their pid (ours) is alive.
    assert!(review.path().exists() && report.path().exists());
    report.release()?;
    review.release()?;
    assert_eq!(original.find_conflict(&[f.path("src")])?, None);
    Ok(())
}
