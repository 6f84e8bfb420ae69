//! The behaviours the original lock manager's own test suite checks, in our own words and
//! through our API, grouped under this file's section labels: R1, L1-L6, X1, X2, P1, M1-M3, S1,
//! T1. The original's tests that need other processes or another user (an ancestor's singleton
//! not blocking its child; the EPERM half of L5) are in `tests/tests/acceptance/processes.rs`; its tests
//! of waiting for a scope have no counterpart until the library can wait.

use std::error::Error;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::thread;

use scope_lock::testing::{DEAD_PID, Fixture, TestResult, expect_conflict, fixture, flock_is_held};
use scope_lock::{
    AcquireError, Conflict, ConflictRule, Liveness, LockManager, LockRecord, LockRequest,
    ScopeGuard, normalize_path, normalize_path_in, paths_overlap, resolve_scope, scopes_overlap,
};
use serde_json::{Map, Value, json};

/// The timestamp of hand-written records.
const STARTED: &str = "2026-01-01T00:00:00.000000+00:00";

/// A record in the original's shape (no `liveness` key).
fn original_record(loop_name: &str, scope: &[String], pid: u32) -> String {
    LockRecord::new(loop_name, scope.to_vec(), pid, STARTED).to_json()
}

fn context(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn strings(paths: &[&str]) -> Vec<String> {
    paths.iter().map(|p| (*p).to_owned()).collect()
}

/// Writes `<name>.lock` in the original's format, over the project path `rel`, for a process
/// that does not exist.
fn write_dead_original_lock(f: &Fixture, name: &str, rel: &str) -> Result<PathBuf, Box<dyn Error>> {
    f.write_lock_file(
        name,
        original_record(name, &[f.path(rel)], DEAD_PID).as_bytes(),
    )
}

/// Asserts that `conflict` is the overlap of our project path `ours` with the holder's `theirs`.
#[track_caller]
fn assert_overlap(f: &Fixture, conflict: &Conflict, ours: &str, theirs: &str) {
    assert_eq!(
        conflict.rule(),
        &ConflictRule::Overlap {
            ours: f.path(ours),
            theirs: f.path(theirs),
        }
    );
}

// ---------------------------------------------------------------------------------------------
// R1: the record
// ---------------------------------------------------------------------------------------------

#[test]
fn r1_record_round_trips_through_json_in_the_originals_exact_shape() -> TestResult {
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
fn r1_singleton_false_is_omitted_and_a_record_without_singleton_reads_false() -> TestResult {
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
fn r1_an_acquired_singleton_lock_file_is_the_originals_json_plus_our_liveness_key() -> TestResult {
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
        r#"{{"loop_name": "r1", "scope": ["{}"], "pid": {}, "started_at": "{}", "singleton": true, "liveness": "flock"{identity}}}"#,
        f.path("src"),
        std::process::id(),
        record.started_at()
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
fn r1_an_acquired_non_singleton_lock_file_has_no_singleton_key_and_reads_false() -> TestResult {
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
fn r1_an_original_file_with_a_legacy_string_scope_is_read_and_enforced() -> TestResult {
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
fn r1_non_ascii_names_and_paths_are_written_ascii_escaped_like_python_and_read_back() -> TestResult
{
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

// ---------------------------------------------------------------------------------------------
// L1: files
// ---------------------------------------------------------------------------------------------

#[test]
fn l1_acquire_creates_running_stem_lock_and_release_removes_it() -> TestResult {
    let f = fixture()?;
    let request = f.request("demo", "src");
    let expected = f.running().join("demo.lock");
    assert_eq!(f.locks.lock_path(&request), expected);
    assert!(!expected.exists());
    let guard = f.locks.try_acquire(&request)?;
    assert_eq!(guard.path(), expected);
    assert!(expected.is_file());
    guard.release()?;
    assert!(!expected.exists());
    assert!(f.lock_files()?.is_empty());
    Ok(())
}

#[test]
fn l1_dropping_a_guard_removes_its_lock_file() -> TestResult {
    let f = fixture()?;
    let guard = f.acquire("dropped", "src")?;
    let path = guard.path().to_path_buf();
    assert!(path.is_file());
    drop(guard);
    assert!(!path.exists());
    // And the scope is free again.
    f.acquire("next", "src")?.release()?;
    Ok(())
}

#[test]
fn l1_an_instance_id_names_the_lock_file_and_a_nested_one_creates_its_directory() -> TestResult {
    let f = fixture()?;
    let guard = f.locks.try_acquire(
        &f.request("gen", "out")
            .instance_id("generated/foo-20260101T000000"),
    )?;
    let expected = f.running().join("generated/foo-20260101T000000.lock");
    assert_eq!(guard.path(), expected);
    assert!(expected.is_file());
    assert!(!f.running().join("gen.lock").exists());
    guard.release()?;
    assert!(!expected.exists());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// L2, L3: conflicts
// ---------------------------------------------------------------------------------------------

/// L2: `holder` acquires the project path `held`, then `asker` asking for `asked` gets a conflict
/// for the overlap of exactly those two paths. Returns the holder's guard and the conflict.
fn l2_overlap_refused(
    f: &Fixture,
    (holder, held): (&str, &str),
    (asker, asked): (&str, &str),
) -> Result<(ScopeGuard, Conflict), Box<dyn Error>> {
    let guard = f.acquire(holder, held)?;
    let conflict = expect_conflict(f.acquire(asker, asked));
    assert_overlap(f, &conflict, asked, held);
    Ok((guard, conflict))
}

#[test]
fn l2_the_same_scope_conflicts() -> TestResult {
    let f = fixture()?;
    let (holder, conflict) = l2_overlap_refused(&f, ("first", "src"), ("second", "src"))?;
    assert_eq!(conflict.holder(), Some(holder.record()));
    assert!(!f.running().join("second.lock").exists());
    Ok(())
}

#[test]
fn l2_parent_then_child_conflicts() -> TestResult {
    let f = fixture()?;
    let (_parent, _) = l2_overlap_refused(&f, ("parent", "src"), ("child", "src/module/file.rs"))?;
    Ok(())
}

#[test]
fn l2_child_then_parent_conflicts() -> TestResult {
    let f = fixture()?;
    let (_child, _) = l2_overlap_refused(&f, ("child", "src/module"), ("parent", "src"))?;
    Ok(())
}

#[test]
fn l2_siblings_both_acquire() -> TestResult {
    let f = fixture()?;
    let src = f.acquire("src", "src/")?;
    let tests = f.acquire("tests", "tests/")?;
    assert_eq!(f.lock_files()?.len(), 2);
    src.release()?;
    tests.release()?;
    Ok(())
}

#[test]
fn l3_an_empty_scope_means_the_whole_project_so_two_empty_scopes_conflict() -> TestResult {
    let f = fixture()?;
    let whole = normalize_path(".")?;
    let first = f.locks.try_acquire(&LockRequest::new("one"))?;
    assert_eq!(first.record().scope(), std::slice::from_ref(&whole));
    let conflict = expect_conflict(f.locks.try_acquire(&LockRequest::new("two")));
    assert_eq!(
        conflict.rule(),
        &ConflictRule::Overlap {
            ours: whole.clone(),
            theirs: whole.clone(),
        }
    );
    // Anything inside the project conflicts with it too.
    let inside = Path::new(&whole).join("some/nested/file");
    let conflict = expect_conflict(
        f.locks
            .try_acquire(&LockRequest::new("three").scope([inside.to_string_lossy()])),
    );
    assert_eq!(conflict.holder(), Some(first.record()));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// L4, L4', L5: stale locks
// ---------------------------------------------------------------------------------------------

#[test]
fn l4_an_original_format_lock_of_a_nonexistent_pid_is_reclaimed_by_the_next_acquire() -> TestResult
{
    let f = fixture()?;
    let stale = write_dead_original_lock(&f, "old", "src")?;
    let guard = f.acquire("new", "src")?;
    assert!(!stale.exists(), "the stale lock file must be gone");
    assert_eq!(f.lock_files()?, [guard.path().to_path_buf()]);
    Ok(())
}

#[test]
fn l4_list_locks_reclaims_an_original_format_lock_of_a_nonexistent_pid() -> TestResult {
    let f = fixture()?;
    let stale = write_dead_original_lock(&f, "old", "src")?;
    let listing = f.locks.list_locks()?;
    assert!(listing.locks().is_empty(), "{listing:?}");
    assert!(listing.problems().is_empty(), "{listing:?}");
    assert_eq!(listing.reclaimed(), std::slice::from_ref(&stale));
    assert!(!stale.exists());
    Ok(())
}

#[test]
fn l4_find_conflict_also_reclaims_a_stale_original_lock_and_reports_no_conflict() -> TestResult {
    let f = fixture()?;
    let stale = write_dead_original_lock(&f, "old", "src")?;
    let request = f.request("new", "src");
    assert_eq!(f.locks.find_conflict(&request)?, None);
    assert!(!stale.exists());
    Ok(())
}

#[test]
fn l4_prime_our_format_lock_with_a_free_flock_is_reclaimed_even_though_its_pid_is_alive()
-> TestResult {
    let f = fixture()?;
    // pid 1 and this very process are both alive: a pid probe would keep these forever (PID
    // reuse). Our records say "alive exactly while flocked", and nobody holds their flock.
    let by_init = LockRecord::new("init", vec![f.path("src")], 1, STARTED).with_flock_liveness();
    let by_us = LockRecord::new("us", vec![f.path("docs")], std::process::id(), STARTED)
        .with_flock_liveness();
    let init_path = f.write_lock_file("init", by_init.to_json().as_bytes())?;
    let us_path = f.write_lock_file("nested/us", by_us.to_json().as_bytes())?;

    let listing = f.locks.list_locks()?;
    assert!(listing.locks().is_empty(), "{listing:?}");
    assert_eq!(listing.reclaimed(), [init_path.clone(), us_path.clone()]);
    assert!(!init_path.exists());
    assert!(!us_path.exists());
    Ok(())
}

#[test]
fn l4_prime_an_acquire_over_our_format_lock_with_a_free_flock_succeeds() -> TestResult {
    let f = fixture()?;
    let record = LockRecord::new("ghost", vec![f.path("src")], std::process::id(), STARTED)
        .with_flock_liveness();
    let stale = f.write_lock_file("ghost", record.to_json().as_bytes())?;
    let guard = f.acquire("ghost", "src")?;
    // Same name: the stale file was removed and a new, held one published in its place.
    assert_eq!(guard.path(), stale);
    assert!(guard.record().started_at() != STARTED);
    assert_eq!(
        LockRecord::from_json(&fs::read(&stale)?)?,
        guard.record().clone()
    );
    Ok(())
}

#[test]
fn l5_kill_esrch_reclaims_an_original_lock_but_a_live_pid_keeps_it_and_conflicts() -> TestResult {
    let f = fixture()?;
    let dead = write_dead_original_lock(&f, "dead", "src")?;
    let alive_json = original_record("alive", &[f.path("docs")], std::process::id());
    let alive = f.write_lock_file("alive", alive_json.as_bytes())?;

    let listing = f.locks.list_locks()?;
    assert_eq!(listing.reclaimed(), std::slice::from_ref(&dead));
    assert!(!dead.exists());
    assert_eq!(listing.locks().len(), 1);
    assert_eq!(listing.locks()[0].path(), alive);
    assert_eq!(listing.locks()[0].liveness(), Liveness::Pid);

    let conflict = expect_conflict(f.acquire("new", "docs/x"));
    assert_eq!(conflict.lock_path(), alive);
    assert!(conflict.is_held_by_this_process());
    assert_eq!(fs::read(&alive)?, alive_json.as_bytes(), "kept as it was");
    // The dead one's scope is free.
    f.acquire("new", "src")?.release()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// L6: find_conflict and list_locks
// ---------------------------------------------------------------------------------------------

#[test]
fn l6_find_conflict_returns_the_overlapping_holder_and_none_for_a_disjoint_scope() -> TestResult {
    let f = fixture()?;
    let holder = f.acquire("holder", "src")?;
    let overlapping = f.request("asker", "src/lib.rs");
    let conflict = f
        .locks
        .find_conflict(&overlapping)?
        .ok_or("expected a conflict for an overlapping scope")?;
    assert_eq!(conflict.lock_path(), holder.path());
    assert_eq!(conflict.holder(), Some(holder.record()));
    assert_overlap(&f, &conflict, "src/lib.rs", "src");
    let disjoint = f.request("asker", "docs");
    assert_eq!(f.locks.find_conflict(&disjoint)?, None);
    // Asking takes nothing.
    assert!(!f.locks.lock_path(&disjoint).exists());
    assert_eq!(f.lock_files()?, [holder.path().to_path_buf()]);
    Ok(())
}

/// "Is this scope free?" asks about the scope alone: a live lock of the same name over a
/// disjoint scope, which `find_conflict` must report (the file cannot hold two records), is no
/// answer to it; an overlap, and a singleton of the same loop, are.
#[test]
fn l6_find_scope_conflict_leaves_out_the_lock_file_name() -> TestResult {
    let f = fixture()?;
    let holder = f
        .locks
        .try_acquire(&f.request("nightly", "src").singleton(true))?;
    let same_name = f.request("nightly", "docs");
    let taken = f
        .locks
        .find_conflict(&same_name)?
        .ok_or("the name is taken")?;
    assert_eq!(taken.rule(), &ConflictRule::SameName);
    assert_eq!(f.locks.find_scope_conflict(&same_name)?, None);

    let overlap = f
        .locks
        .find_scope_conflict(&f.request("nightly", "src/lib.rs"))?;
    assert_eq!(overlap.map(|c| c.rule().as_str()), Some("overlap"));
    let singleton = f
        .locks
        .find_scope_conflict(&same_name.clone().singleton(true))?
        .ok_or("a live singleton of the same loop")?;
    assert_eq!(singleton.rule(), &ConflictRule::Singleton);
    assert_eq!(singleton.lock_path(), holder.path());
    // The loop name is not looked at unless the request is a singleton.
    let nameless = LockRequest::new("").scope([f.path("docs")]);
    assert_eq!(f.locks.find_scope_conflict(&nameless)?, None);
    let err = f.locks.find_scope_conflict(&nameless.singleton(true));
    assert_eq!(
        err.map_err(|e| e.kind()),
        Err(scope_lock::ErrorKind::InvalidName)
    );
    holder.release()?;
    Ok(())
}

#[test]
fn l6_list_locks_returns_every_live_holder_including_nested_stems() -> TestResult {
    let f = fixture()?;
    let plain = f.acquire("plain", "a")?;
    let nested = f.locks.try_acquire(
        &f.request("gen", "b")
            .instance_id("generated/foo-20260101T000000"),
    )?;
    let deep = f
        .locks
        .try_acquire(&f.request("deep", "c").instance_id("x/y/z/deep"))?;
    let listing = f.locks.list_locks()?;
    assert!(listing.problems().is_empty(), "{listing:?}");
    assert!(listing.reclaimed().is_empty(), "{listing:?}");
    let mut seen: Vec<(String, PathBuf, LockRecord, Liveness)> = listing
        .locks()
        .iter()
        .map(|l| {
            (
                l.lock_name().to_owned(),
                l.path().to_path_buf(),
                l.record().clone(),
                l.liveness(),
            )
        })
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (
            "generated/foo-20260101T000000".to_owned(),
            nested.path().to_path_buf(),
            nested.record().clone(),
            Liveness::Flock,
        ),
        (
            "plain".to_owned(),
            plain.path().to_path_buf(),
            plain.record().clone(),
            Liveness::Flock,
        ),
        (
            "x/y/z/deep".to_owned(),
            deep.path().to_path_buf(),
            deep.record().clone(),
            Liveness::Flock,
        ),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(seen, expected);
    Ok(())
}

#[test]
fn l6_a_nested_holder_blocks_another_nested_holder_of_an_overlapping_scope() -> TestResult {
    // BUG-1788: the original's flat glob missed nested names, so both holders of `.` got in.
    let f = fixture()?;
    let first = f.locks.try_acquire(
        &f.request("gen", "")
            .instance_id("generated/gen-20260101T000000"),
    )?;
    let conflict = expect_conflict(
        f.locks.try_acquire(
            &f.request("gen", "")
                .instance_id("generated/gen-20260101T000001"),
        ),
    );
    assert_eq!(conflict.lock_path(), first.path());
    assert_eq!(conflict.holder(), Some(first.record()));
    Ok(())
}

#[test]
fn l6_a_lock_nested_32_directories_deep_is_listed_and_blocks_an_overlapping_acquire() -> TestResult
{
    let f = fixture()?;
    let deep = f.locks.try_acquire(
        &f.request("deep", "src")
            .instance_id(format!("{}deep", "d/".repeat(32))),
    )?;
    let conflict = expect_conflict(f.acquire("plain", "src"));
    assert_eq!(conflict.lock_path(), deep.path());
    let listing = f.locks.list_locks()?;
    assert_eq!(listing.locks().len(), 1);
    assert_eq!(listing.locks()[0].path(), deep.path());
    Ok(())
}

#[test]
fn l6_a_name_nested_deeper_than_scans_look_is_refused() -> TestResult {
    // A lock no scan can see would let a second holder of the same scope in, so a name one
    // directory deeper than the 32 that scans descend is refused up front.
    let f = fixture()?;
    let deep_id = format!("{}deep", "d/".repeat(33));
    let result = f
        .locks
        .try_acquire(&f.request("deep", "src").instance_id(deep_id.clone()));
    match result {
        Err(AcquireError::Failed(err)) => {
            assert_eq!(err.kind(), scope_lock::ErrorKind::InvalidName, "{err}");
            assert!(err.to_string().contains(&deep_id), "{err}");
        }
        other => panic!("a name too deep for scans was not refused: {other:?}"),
    }
    assert!(
        !f.locks.running_dir().join("d").exists(),
        "nothing may be created for it"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Conflicts: rules, holder, same process
// ---------------------------------------------------------------------------------------------

#[test]
fn an_overlapping_acquire_from_the_same_process_is_an_immediate_conflict_not_a_hang() -> TestResult
{
    let f = fixture()?;
    let holder = f.acquire("mine", "src")?;
    let result = f.try_acquire_without_hanging(
        "an overlapping acquire from the holder's own process",
        f.request("mine-too", "src/deeper"),
    )?;
    let conflict = expect_conflict(result);
    assert!(conflict.is_held_by_this_process());
    assert_eq!(conflict.holder(), Some(holder.record()));
    assert_eq!(
        conflict.holder().map(LockRecord::pid),
        Some(std::process::id())
    );
    assert!(conflict.to_string().contains("this process"), "{conflict}");
    Ok(())
}

#[test]
fn an_overlap_conflict_names_our_path_and_the_holders_path_that_overlap() -> TestResult {
    let f = fixture()?;
    let holder = f.acquire_paths("holder", &["alpha", "beta"])?;
    let conflict = expect_conflict(f.acquire_paths("asker", &["gamma", "beta/inner"]));
    assert_overlap(&f, &conflict, "beta/inner", "beta");
    assert_eq!(conflict.lock_path(), holder.path());
    let holder_record = conflict
        .holder()
        .ok_or("an overlap conflict has a holder")?;
    assert_eq!(holder_record.loop_name(), "holder");
    assert_eq!(holder_record.scope(), [f.path("alpha"), f.path("beta")]);
    Ok(())
}

#[test]
fn a_singleton_conflict_carries_the_singleton_rule_and_the_holder() -> TestResult {
    let f = fixture()?;
    let (holder, conflict) = second_singleton_refused(&f, "a", "b")?;
    assert_eq!(conflict.rule(), &ConflictRule::Singleton);
    assert_eq!(conflict.holder(), Some(holder.record()));
    assert_eq!(conflict.lock_path(), holder.path());
    Ok(())
}

#[test]
fn an_instance_id_held_live_is_a_same_name_conflict_and_its_file_is_not_overwritten() -> TestResult
{
    let f = fixture()?;
    let holder = f
        .locks
        .try_acquire(&f.request("one", "a").instance_id("shared-id"))?;
    let before = fs::read(holder.path())?;
    let inode = fs::metadata(holder.path())?.ino();

    // Disjoint scope, different loop, same lock name.
    let conflict = expect_conflict(
        f.locks
            .try_acquire(&f.request("two", "b").instance_id("shared-id")),
    );
    assert_eq!(conflict.rule(), &ConflictRule::SameName);
    assert_eq!(conflict.holder(), Some(holder.record()));
    assert_eq!(conflict.lock_path(), holder.path());
    assert!(conflict.is_held_by_this_process());

    assert_eq!(
        fs::read(holder.path())?,
        before,
        "the holder's file changed"
    );
    assert_eq!(fs::metadata(holder.path())?.ino(), inode);
    holder.release()?;
    Ok(())
}

#[test]
fn an_original_format_live_lock_at_our_name_is_a_same_name_conflict_and_is_not_overwritten()
-> TestResult {
    let f = fixture()?;
    let json = original_record("same", &[f.path("a")], std::process::id());
    let path = f.write_lock_file("same", json.as_bytes())?;
    let conflict = expect_conflict(f.acquire("same", "b"));
    assert_eq!(conflict.rule(), &ConflictRule::SameName);
    assert_eq!(conflict.lock_path(), path);
    assert_eq!(fs::read(&path)?, json.as_bytes());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// X1: things disappearing under us
// ---------------------------------------------------------------------------------------------

#[test]
fn x1_release_after_someone_deleted_the_lock_file_is_ok() -> TestResult {
    let f = fixture()?;
    let guard = f.acquire("victim", "src")?;
    fs::remove_file(guard.path())?;
    guard.release()?;
    // Dropping such a guard does not panic either.
    let dropped = f.acquire("victim", "src")?;
    fs::remove_file(dropped.path())?;
    drop(dropped);
    assert!(f.lock_files()?.is_empty());
    Ok(())
}

#[test]
fn x1_release_after_the_whole_running_directory_was_deleted_is_ok() -> TestResult {
    let f = fixture()?;
    let guard = f.acquire("victim", "src")?;
    fs::remove_dir_all(f.running())?;
    guard.release()?;
    assert!(
        !f.running().exists(),
        "release must not recreate the directory"
    );
    Ok(())
}

#[test]
fn x1_a_guard_whose_file_was_deleted_and_whose_name_was_reacquired_leaves_the_new_file_alone()
-> TestResult {
    let f = fixture()?;
    let old = f.acquire("name", "src")?;
    let path = old.path().to_path_buf();
    fs::remove_file(&path)?;
    // The old guard still holds a flock, but on an inode no name points to any more.
    let new = f.acquire("name", "docs")?;
    assert_eq!(new.path(), path);
    let new_bytes = fs::read(&path)?;
    let new_inode = fs::metadata(&path)?.ino();

    old.release()?;

    assert!(
        path.exists(),
        "the old guard removed the new holder's lock file"
    );
    assert_eq!(fs::read(&path)?, new_bytes);
    assert_eq!(fs::metadata(&path)?.ino(), new_inode);
    assert!(
        flock_is_held(&path)?,
        "the new holder's flock must still be held"
    );
    let conflict = expect_conflict(f.acquire("third", "docs/x"));
    assert_eq!(conflict.holder(), Some(new.record()));
    new.release()?;
    assert!(!path.exists());
    Ok(())
}

#[test]
fn x1_concurrent_acquires_releases_scans_and_reclaims_never_fail() -> TestResult {
    const THREADS: usize = 6;
    const ROUNDS: usize = 30;
    let f = fixture()?;
    let barrier = Barrier::new(THREADS);
    let failures: Vec<String> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (f, barrier) = (&f, &barrier);
                s.spawn(move || -> Vec<String> {
                    let mut failures = Vec::new();
                    barrier.wait();
                    for round in 0..ROUNDS {
                        // A stale lock of the original's, published atomically (as a complete
                        // file), for any scan to reclaim.
                        let stale = original_record("stale", &[f.path("stale")], DEAD_PID);
                        let tmp = f.running().join(format!(".stale-{t}-{round}.tmp"));
                        let dest = f.running().join(format!("stale-{t}-{round}.lock"));
                        if let Err(err) = fs::create_dir_all(f.running())
                            .and_then(|()| fs::write(&tmp, stale.as_bytes()))
                            .and_then(|()| fs::rename(&tmp, &dest))
                        {
                            failures.push(format!("writing a stale file: {err}"));
                        }
                        match f.acquire(&format!("worker-{t}"), &format!("area-{t}")) {
                            Ok(guard) => {
                                if let Err(err) = guard.release() {
                                    failures.push(format!("release: {err}"));
                                }
                            }
                            Err(err) => failures.push(format!("acquire: {err}")),
                        }
                        match f.locks.list_locks() {
                            Ok(listing) if !listing.problems().is_empty() => {
                                failures.push(format!("problems: {:?}", listing.problems()));
                            }
                            Ok(_) => {}
                            Err(err) => failures.push(format!("list_locks: {err}")),
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec!["a thread panicked".into()])
            })
            .collect()
    });
    assert!(failures.is_empty(), "{failures:#?}");
    // Everything stale was reclaimed by the last scans, and every lock was released.
    let listing = f.locks.list_locks()?;
    assert!(listing.locks().is_empty(), "{listing:?}");
    assert!(f.lock_files()?.is_empty(), "{:?}", f.lock_files()?);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// X2: races
// ---------------------------------------------------------------------------------------------

/// Releases `threads` threads together with a barrier; thread `i` acquires `request(i)`.
/// Returns every result, guards still alive.
fn race(
    threads: usize,
    request: impl Fn(usize) -> LockRequest + Sync,
    locks: &LockManager,
) -> Vec<Result<ScopeGuard, AcquireError>> {
    let barrier = Barrier::new(threads);
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (barrier, request, locks) = (&barrier, &request, locks);
                s.spawn(move || {
                    let request = request(i);
                    barrier.wait();
                    locks.try_acquire(&request)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| panic!("a racer panicked")))
            .collect()
    })
}

/// Checks that exactly one racer won and every other one got a conflict naming the winner.
fn exactly_one_winner(
    results: Vec<Result<ScopeGuard, AcquireError>>,
    round: usize,
) -> Result<ScopeGuard, Box<dyn Error>> {
    let mut winners = Vec::new();
    let mut conflicts = Vec::new();
    for result in results {
        match result {
            Ok(guard) => winners.push(guard),
            Err(AcquireError::Conflict(conflict)) => conflicts.push(conflict),
            Err(err @ (AcquireError::Failed(_) | AcquireError::Timeout(_))) => {
                return Err(format!("round {round}: a racer failed: {err}").into());
            }
        }
    }
    assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
    let winner = winners.pop().ok_or("no winner")?;
    for conflict in &conflicts {
        assert_eq!(conflict.holder(), Some(winner.record()), "round {round}");
        assert!(conflict.is_held_by_this_process(), "round {round}");
    }
    Ok(winner)
}

/// How many threads race in each round of the X2 tests.
const RACERS: usize = 8;

/// `rounds` times: races [`RACERS`] threads, thread `i` acquiring `request(i)`, checks that
/// exactly one won, and hands the winner's guard to `then` (which must release or drop it).
fn race_rounds(
    f: &Fixture,
    rounds: usize,
    request: impl Fn(usize) -> LockRequest + Sync,
    mut then: impl FnMut(ScopeGuard, usize) -> TestResult,
) -> TestResult {
    for round in 0..rounds {
        let results = race(RACERS, &request, &f.locks);
        let winner = exactly_one_winner(results, round)?;
        then(winner, round)?;
    }
    Ok(())
}

#[test]
fn x2_threads_racing_for_the_same_scope_exactly_one_wins_every_round() -> TestResult {
    let f = fixture()?;
    race_rounds(
        &f,
        25,
        |i| f.request(&format!("racer-{i}"), "contested"),
        |winner, round| {
            assert_eq!(
                f.lock_files()?,
                [winner.path().to_path_buf()],
                "round {round}"
            );
            winner.release()?;
            assert!(f.lock_files()?.is_empty(), "round {round}");
            Ok(())
        },
    )
}

#[test]
fn x2_threads_racing_with_nested_scopes_exactly_one_wins_every_round() -> TestResult {
    let f = fixture()?;
    race_rounds(
        &f,
        15,
        // Each racer wants a different depth of the same subtree.
        |i| {
            let depth: Vec<String> = (0..i).map(|d| format!("d{d}")).collect();
            f.request(&format!("racer-{i}"), &format!("tree/{}", depth.join("/")))
                .instance_id(format!("runs/racer-{i}"))
        },
        |winner, _| {
            winner.release()?;
            Ok(())
        },
    )?;
    assert!(f.lock_files()?.is_empty());
    Ok(())
}

#[test]
fn x2_threads_racing_for_the_same_name_with_disjoint_scopes_exactly_one_wins() -> TestResult {
    let f = fixture()?;
    race_rounds(
        &f,
        15,
        |i| f.request("same", &format!("own-{i}")),
        |winner, round| {
            assert_eq!(
                LockRecord::from_json(&fs::read(winner.path())?)?,
                winner.record().clone(),
                "round {round}: the file holds someone else's record"
            );
            winner.release()?;
            Ok(())
        },
    )
}

// ---------------------------------------------------------------------------------------------
// P1: overlap
// ---------------------------------------------------------------------------------------------

#[test]
fn p1_paths_overlap_when_equal_or_one_is_a_component_wise_ancestor() {
    assert!(paths_overlap("/repo/src", "/repo/src"));
    assert!(paths_overlap("/repo/src", "/repo/src/lib.rs"));
    assert!(paths_overlap("/repo/src/lib.rs", "/repo/src"));
    assert!(paths_overlap("/", "/repo"));
    assert!(!paths_overlap("/repo/src", "/repo/tests"));
    assert!(!paths_overlap("/a/b", "/a/bc"));
    assert!(!paths_overlap("/a/bc", "/a/b"));
    // No glob semantics: `*.md` is a literal path.
    assert!(!paths_overlap("/repo/*.md", "/repo/README.md"));
    assert!(paths_overlap("/repo/*.md", "/repo/*.md"));
}

#[test]
fn p1_scopes_overlap_when_any_pair_overlaps_and_not_when_all_are_disjoint() {
    let a = strings(&["/repo/docs", "/repo/src"]);
    assert!(scopes_overlap(
        &a,
        &strings(&["/repo/tests", "/repo/src/x"])
    ));
    assert!(scopes_overlap(&strings(&["/repo"]), &a));
    assert!(!scopes_overlap(
        &a,
        &strings(&["/repo/tests", "/repo/srcx"])
    ));
    assert!(!scopes_overlap(&a, &[]));
}

#[test]
fn p1_a_b_and_a_bc_do_not_conflict_when_acquired() -> TestResult {
    let f = fixture()?;
    let b = f.acquire("b", "a/b")?;
    let bc = f.acquire("bc", "a/bc")?;
    b.release()?;
    bc.release()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// M1-M3: several instances of one loop
// ---------------------------------------------------------------------------------------------

#[test]
fn m1_one_loop_with_distinct_instance_ids_gets_distinct_lock_files_and_leaves_none() -> TestResult {
    let f = fixture()?;
    let request = |id: &str| {
        f.request("worker", &format!(".loops/runs/{id}"))
            .instance_id(id)
    };
    assert_ne!(
        f.locks.lock_path(&request("worker-1")),
        f.locks.lock_path(&request("worker-2"))
    );
    let first = f.locks.try_acquire(&request("worker-1"))?;
    assert_eq!(first.path(), f.running().join("worker-1.lock"));
    first.release()?;
    let second = f.locks.try_acquire(&request("worker-2"))?;
    assert_eq!(second.path(), f.running().join("worker-2.lock"));
    second.release()?;
    assert!(f.lock_files()?.is_empty());
    Ok(())
}

#[test]
fn m2_one_loop_with_disjoint_run_directories_runs_twice_but_with_the_project_scope_once()
-> TestResult {
    let f = fixture()?;
    let run = |id: &str, scope: String| {
        f.locks.try_acquire(
            &LockRequest::new("worker")
                .scope([scope])
                .instance_id(format!("worker-{id}")),
        )
    };
    let a = run("a", f.path(".loops/runs/a"))?;
    let b = run("b", f.path(".loops/runs/b"))?;
    assert_eq!(f.lock_files()?.len(), 2);
    a.release()?;
    b.release()?;

    let whole = run("c", f.path("."))?;
    assert_eq!(
        whole.record().scope(),
        [f.root.to_string_lossy().into_owned()]
    );
    let conflict = expect_conflict(run("d", f.path(".")));
    assert_eq!(conflict.holder(), Some(whole.record()));
    Ok(())
}

#[test]
fn m3_instances_sharing_a_path_exclude_each_other_but_their_own_run_dirs_do_not() -> TestResult {
    let f = fixture()?;
    let instance = |id: &str, rel: &[&str]| {
        let scope: Vec<String> = rel.iter().map(|r| f.path(r)).collect();
        f.locks
            .try_acquire(&LockRequest::new("issues").scope(scope).instance_id(id))
    };
    let a = instance("issues-a", &[".issues/", ".loops/runs/a"])?;
    let conflict = expect_conflict(instance("issues-b", &[".issues/", ".loops/runs/b"]));
    assert_overlap(&f, &conflict, ".issues", ".issues");
    let b = instance("issues-b", &[".loops/runs/b"])?;
    assert_eq!(f.lock_files()?.len(), 2);
    a.release()?;
    b.release()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// S1: singletons
// ---------------------------------------------------------------------------------------------

fn singleton_request(f: &Fixture, id: &str, rel: &str, singleton: bool) -> LockRequest {
    f.request("solo", rel).instance_id(id).singleton(singleton)
}

/// S1: the singleton `solo` acquires the project path `held` as `solo-1`, then asks again as
/// `solo-2` for `asked` and is refused. Returns the first guard and the conflict.
fn second_singleton_refused(
    f: &Fixture,
    held: &str,
    asked: &str,
) -> Result<(ScopeGuard, Conflict), Box<dyn Error>> {
    let first = f
        .locks
        .try_acquire(&singleton_request(f, "solo-1", held, true))?;
    let conflict = expect_conflict(
        f.locks
            .try_acquire(&singleton_request(f, "solo-2", asked, true)),
    );
    Ok((first, conflict))
}

#[test]
fn s1_two_singletons_of_one_name_with_disjoint_scopes_exclude_each_other() -> TestResult {
    let f = fixture()?;
    let (_first, conflict) = second_singleton_refused(&f, "a", "b")?;
    assert_eq!(conflict.rule(), &ConflictRule::Singleton);
    Ok(())
}

#[test]
fn s1_non_singletons_of_one_name_with_disjoint_scopes_both_acquire() -> TestResult {
    let f = fixture()?;
    let first = f
        .locks
        .try_acquire(&singleton_request(&f, "solo-1", "a", false))?;
    let second = f
        .locks
        .try_acquire(&singleton_request(&f, "solo-2", "b", false))?;
    // A singleton request meets a non-singleton holder: only the scopes matter.
    let third = f
        .locks
        .try_acquire(&singleton_request(&f, "solo-3", "c", true))?;
    first.release()?;
    second.release()?;
    third.release()?;
    Ok(())
}

#[test]
fn s1_singletons_with_overlapping_paths_exclude_each_other() -> TestResult {
    let f = fixture()?;
    let (_first, conflict) = second_singleton_refused(&f, "shared", "shared/sub")?;
    assert!(
        matches!(
            conflict.rule(),
            ConflictRule::Singleton | ConflictRule::Overlap { .. }
        ),
        "{:?}",
        conflict.rule()
    );
    Ok(())
}

#[test]
fn s1_singletons_of_different_names_with_disjoint_scopes_both_acquire() -> TestResult {
    let f = fixture()?;
    let first = f
        .locks
        .try_acquire(&f.request("one", "a").singleton(true))?;
    let second = f
        .locks
        .try_acquire(&f.request("two", "b").singleton(true))?;
    first.release()?;
    second.release()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// T1: templates
// ---------------------------------------------------------------------------------------------

/// T1: `templates` resolved with the context `ctx` (a JSON object) are `expected`.
#[track_caller]
fn assert_resolves(ctx: Value, templates: &[&str], expected: &[&str]) {
    let ctx = context(ctx);
    assert_eq!(resolve_scope(templates, &ctx), expected);
}

#[test]
fn t1_static_entries_pass_through_and_context_variables_are_replaced() {
    assert_resolves(
        json!({"run_id": "r-17", "dir": "out"}),
        &["src/", "docs/README.md", "${context.run_id}"],
        &["src/", "docs/README.md", "r-17"],
    );
}

#[test]
fn t1_unknown_variables_are_left_literally() {
    assert_resolves(
        json!({"known": "k"}),
        &["${context.unknown}/x", "${context.known}/${context.nope}"],
        &["${context.unknown}/x", "k/${context.nope}"],
    );
}

#[test]
fn t1_mixed_multiple_and_partial_templates_in_one_path() {
    assert_resolves(
        json!({"a": "A", "b": "B"}),
        &[
            "x/${context.a}/y/${context.b}/${context.a}",
            "pre-${context.a}-post",
            "runs/${context.a",
            "${context.}/z",
        ],
        &[
            "x/A/y/B/A",
            "pre-A-post",
            "runs/${context.a",
            "${context.}/z",
        ],
    );
}

#[test]
fn t1_env_and_captured_namespaces_are_untouched() {
    assert_resolves(
        json!({"HOME": "no", "x": "no", "env": "no", "captured": "no"}),
        &["${env.HOME}/a", "${captured.x}", "${env.X}${captured.x}"],
        &["${env.HOME}/a", "${captured.x}", "${env.X}${captured.x}"],
    );
}

#[test]
fn t1_integer_values_are_rendered_in_decimal() {
    assert_resolves(
        json!({"n": 42, "neg": -7, "big": 12_345_678_901_u64, "zero": 0}),
        &[
            "runs/${context.n}",
            "${context.neg}",
            "${context.big}/${context.zero}",
        ],
        &["runs/42", "-7", "12345678901/0"],
    );
}

#[test]
fn t1_an_empty_scope_resolves_to_an_empty_list() {
    let ctx = context(json!({"a": "b"}));
    assert!(resolve_scope::<&str>(&[], &ctx).is_empty());
    assert!(resolve_scope::<String>(&[], &Map::new()).is_empty());
}

#[test]
fn t1_two_run_directories_give_disjoint_scopes_that_both_acquire() -> TestResult {
    let f = fixture()?;
    let scope_of = |run: &str| -> Result<Vec<String>, scope_lock::Error> {
        resolve_scope(
            &[".loops/runs/${context.run_id}"],
            &context(json!({"run_id": run})),
        )
        .iter()
        .map(|p| normalize_path_in(&f.root, p))
        .collect()
    };
    let (a, b) = (scope_of("run-a")?, scope_of("run-b")?);
    assert_eq!(a, [f.path(".loops/runs/run-a")]);
    assert!(!scopes_overlap(&a, &b));
    let ga = f
        .locks
        .try_acquire(&LockRequest::new("w").scope(a.clone()).instance_id("w-a"))?;
    let gb = f
        .locks
        .try_acquire(&LockRequest::new("w").scope(b).instance_id("w-b"))?;
    expect_conflict(
        f.locks
            .try_acquire(&LockRequest::new("w").scope(a).instance_id("w-a2")),
    );
    ga.release()?;
    gb.release()?;
    Ok(())
}
