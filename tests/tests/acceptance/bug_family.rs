//! The bugs of BUG-423's family that the original hit later, or never filed (`docs/protocol.md`,
//! the bug family; one record each in `issues/`). Tests that go through [`Locker`] run against
//! the fix, or against the pre-fix port with `SCOPE_LOCK_IMPL=pre-fix`, where they fail with
//! the symptom their record names.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;

use crate::support::{Workers, project};
use regression::locker::{Attempt, Held, Impl, Locker};
use regression::{record_evidence, soak};
use scope_lock::testing::TestResult;
use scope_lock::{LockRecord, LockRequest};
use serde_json::json;

fn which() -> Impl {
    Impl::from_env()
}

/// A live process that is not our ancestor: `cat` on a pipe; reaped on drop.
struct LiveProcess(Child);

impl LiveProcess {
    fn spawn() -> std::io::Result<Self> {
        Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map(Self)
    }
}

impl Drop for LiveProcess {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

fn held(attempt: Attempt, what: &str) -> Held {
    match attempt {
        Attempt::Held(held) => held,
        other => panic!("{what}: expected to acquire, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// BUG-525: check and create not atomic
// ---------------------------------------------------------------------------------------------

#[test]
fn two_acquires_started_together_never_both_win() -> TestResult {
    let (f, scope) = project()?;
    // Each round is over in well under a millisecond, and a round only catches the pre-fix
    // port when both threads are on a core at once: on two busy cores, 200 rounds once went
    // by with no overlap at all. 2,000 take about two seconds.
    let rounds = if soak() { 20_000 } else { 2_000 };
    let mut both_won = 0;
    for _ in 0..rounds {
        let barrier = Arc::new(Barrier::new(2));
        let outcomes: Vec<(bool, Option<Held>)> = thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|i| {
                    let barrier = Arc::clone(&barrier);
                    let loops_dir = f.loops_dir();
                    let scope = scope.clone();
                    s.spawn(move || -> (bool, Option<Held>) {
                        let locker = Locker::new(which(), &loops_dir);
                        barrier.wait();
                        match locker.try_acquire(&format!("racer-{i}"), &[scope]) {
                            Attempt::Held(held) => (true, Some(held)),
                            Attempt::Conflict => (false, None),
                            Attempt::Failed(err) => panic!("racer-{i} failed: {err}"),
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| panic!("a racer panicked")))
                .collect()
        });
        let winners = outcomes.iter().filter(|(won, _)| *won).count();
        assert!(winners >= 1, "nobody acquired a free scope");
        if winners > 1 {
            both_won += 1;
        }
        let locker = f.locker(which());
        for (_, held) in outcomes {
            if let Some(held) = held {
                locker
                    .release(held)
                    .map_err(|err| format!("release failed: {err}"))?;
            }
        }
    }
    record_evidence(
        "two_acquires_started_together_never_both_win",
        &json!({"rounds": rounds, "rounds_both_won": both_won}),
    );
    assert_eq!(
        both_won, 0,
        "both acquired the same scope: check and create not atomic, in {both_won} of {rounds} rounds"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// BUG-526: EPERM read as dead
// ---------------------------------------------------------------------------------------------

/// An original-format lock whose pid is another user's live process: `kill(pid, 0)` answers
/// `EPERM`, which means alive. The acquirer runs as `nobody` (as root, the test drops to it;
/// as an ordinary user, pid 1 is such a process and the test process acquires itself).
#[test]
fn a_lock_whose_pid_answers_eperm_is_kept_and_blocks() -> TestResult {
    let (f, scope) = project()?;
    let is_root = rustix::process::geteuid().is_root();
    // As root, a process of root that is not the acquirer's ancestor: an idle worker.
    let idle = if is_root {
        Some(f.spawn_attempt(Impl::Fixed, "idle", &f.scope_dir("idle")?, &[])?)
    } else {
        None
    };
    let other_user_pid = idle.as_ref().map_or(1, |p| p.pid());
    let record = LockRecord::new("other-user", vec![scope.clone()], other_user_pid, "t");
    let lock_file = f.write_lock_file("other-user", record.to_json().as_bytes())?;
    let said = if is_root {
        for dir in [&f.root, &f.loops_dir(), &f.running().to_path_buf()] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o777))?;
        }
        let mut nobody = f.spawn_attempt(which(), "me", &scope, &["--as-uid", "65534"])?;
        let said = nobody.go()?;
        nobody.release()?;
        said
    } else {
        let locker = f.locker(which());
        match locker.try_acquire("me", std::slice::from_ref(&scope)) {
            Attempt::Held(held) => {
                let _ = locker.release(held);
                "held".to_owned()
            }
            other => format!("{other:?}"),
        }
    };
    drop(idle);
    assert!(
        !said.starts_with("held") && lock_file.exists(),
        "an EPERM holder was taken for dead: its live lock deleted ({said})"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// BUG-1360: release tied to what was acquired
// ---------------------------------------------------------------------------------------------

#[test]
fn release_removes_exactly_the_lock_its_guard_acquired() -> TestResult {
    let (f, scope) = project()?;
    let other = f.scope_dir("other")?;
    // A retry under another instance id, as in the original's bug: two locks of one loop.
    let first = f.locks.try_acquire(
        &LockRequest::new("retry")
            .instance_id("retry-1")
            .scope([scope.as_str()]),
    )?;
    let second = f.locks.try_acquire(
        &LockRequest::new("retry")
            .instance_id("retry-2")
            .scope([other.as_str()]),
    )?;
    let (first_path, second_path) = (first.path().to_owned(), second.path().to_owned());
    let second_bytes = fs::read(&second_path)?;

    second.release()?;
    assert!(!second_path.exists(), "the released lock is still there");
    assert!(
        first_path.exists(),
        "releasing one lock removed another of the same loop"
    );
    drop(first);
    assert!(!first_path.exists());
    assert_ne!(second_bytes, b"", "the record was empty");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Unfiled: nested names invisible to scans
// ---------------------------------------------------------------------------------------------

#[test]
fn nested_names_are_seen_by_every_scan() -> TestResult {
    let (f, scope) = project()?;
    // The directory of nested names exists, as any earlier run leaves it.
    fs::create_dir_all(f.running().join("generated"))?;
    let locker = f.locker(which());
    let first = held(
        locker.try_acquire("generated/run-1", std::slice::from_ref(&scope)),
        "the first nested holder",
    );
    let second = locker.try_acquire("generated/run-2", std::slice::from_ref(&scope));
    let both = matches!(second, Attempt::Held(_));
    if let Attempt::Held(second) = second {
        let _ = locker.release(second);
    }
    let _ = locker.release(first);
    assert!(
        !both,
        "a nested lock was invisible to the scan: two holders of one scope"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Unfiled: instance-id overwrite
// ---------------------------------------------------------------------------------------------

#[test]
fn an_acquire_never_overwrites_a_live_lock_of_the_same_name() -> TestResult {
    let (f, scope) = project()?;
    let elsewhere = f.scope_dir("elsewhere")?;
    let locker = f.locker(which());
    let first = held(
        locker.try_acquire("same", std::slice::from_ref(&scope)),
        "the first holder",
    );
    let before = fs::read(first.path())?;
    let second = locker.try_acquire("same", std::slice::from_ref(&elsewhere));
    let after = fs::read(first.path())?;
    // Whoever comes next for the first holder's scope must still be refused.
    let third = locker.try_acquire("third", std::slice::from_ref(&scope));
    let third_won = matches!(third, Attempt::Held(_));
    for attempt in [second, third] {
        if let Attempt::Held(held) = attempt {
            let _ = locker.release(held);
        }
    }
    let _ = locker.release(first);
    assert!(
        before == after && !third_won,
        "overwrote a live lock of the same name; a third acquirer then got its scope: {third_won}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Unfiled: PID reuse keeping a dead lock alive
// ---------------------------------------------------------------------------------------------

#[test]
fn a_killed_holders_lock_is_not_kept_alive_by_a_reused_pid() -> TestResult {
    let (f, scope) = project()?;
    let mut holder = f.spawn_attempt(which(), "dies", &scope, &[])?;
    let said = holder.go()?;
    assert!(said.starts_with("held"), "{said}");
    let path = f.running().join("dies.lock");
    holder.kill()?;
    // Its pid now belongs to another live process: write the same record with that pid (as a
    // new file, the way a pid reuse looks to a reader).
    let reuser = LiveProcess::spawn()?;
    let record = fs::read(&path)?;
    let parsed = LockRecord::from_json(&record)?;
    let reused = String::from_utf8(record)?.replace(
        &format!("\"pid\": {}", parsed.pid()),
        &format!("\"pid\": {}", reuser.0.id()),
    );
    fs::remove_file(&path)?;
    fs::write(&path, reused)?;

    let locker = f.locker(which());
    let next = locker.try_acquire("next", std::slice::from_ref(&scope));
    let got_in = matches!(next, Attempt::Held(_));
    if let Attempt::Held(held) = next {
        let _ = locker.release(held);
    }
    drop(reuser);
    assert!(
        got_in,
        "a dead holder's lock kept alive by a reused pid: the scope stays taken"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Unfiled: torn reads
// ---------------------------------------------------------------------------------------------

#[test]
fn a_torn_lock_file_is_never_taken_for_no_lock() -> TestResult {
    let (f, scope) = project()?;
    // The original truncates, then writes: a reader can find its live lock empty or cut short.
    for (name, torn) in [
        ("empty", String::new()),
        (
            "cut",
            format!(r#"{{"loop_name": "cut", "scope": ["{scope}"], "pi"#),
        ),
    ] {
        let path = f.write_lock_file(name, torn.as_bytes())?;
        let locker = f.locker(which());
        let attempt = locker.try_acquire("reader", std::slice::from_ref(&scope));
        let got_in = matches!(attempt, Attempt::Held(_));
        if let Attempt::Held(held) = attempt {
            let _ = locker.release(held);
        }
        assert!(
            !got_in,
            "took a torn lock file for no lock ({name}): acquired over a live writer"
        );
        assert_eq!(
            fs::read_to_string(&path)?,
            torn,
            "the torn file was changed"
        );
        fs::remove_file(&path)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Unfiled: one bad file breaking every acquire
// ---------------------------------------------------------------------------------------------

#[test]
fn no_bad_file_makes_an_acquire_fail_with_an_error() -> TestResult {
    let (f, scope) = project()?;
    let holder = LiveProcess::spawn()?;
    // Things the original choked on: a directory named like a lock, a pid that is not an
    // integer (with the holder alive), and garbage.
    fs::create_dir_all(f.running().join("odd.lock"))?;
    f.write_lock_file(
        "string-pid",
        format!(
            r#"{{"loop_name": "s", "scope": ["{}"], "pid": "{}", "started_at": "t"}}"#,
            f.path("string-pid-scope"),
            holder.0.id()
        )
        .as_bytes(),
    )?;
    let outcome = f
        .locks
        .try_acquire(&LockRequest::new("me").scope([scope.as_str()]));
    match outcome {
        // The string pid is alive and its file unparsable: it blocks, by name, never an error.
        Err(err) => {
            let conflict = err
                .conflict()
                .ok_or_else(|| format!("a bad file made the acquire fail: {err}"))?;
            assert!(
                conflict.lock_path().ends_with("string-pid.lock"),
                "{conflict}"
            );
        }
        Ok(guard) => {
            return Err(format!("acquired beside a live unparsable lock: {guard:?}").into());
        }
    }
    drop(holder);
    // Once its pid is dead it is provably stale: moved aside; the directory stays reported.
    let guard = f
        .locks
        .try_acquire(&LockRequest::new("me").scope([scope.as_str()]))?;
    let listing = f.locks.list_locks()?;
    assert!(
        listing
            .problems()
            .iter()
            .any(|p| p.path().ends_with("odd.lock")),
        "{listing:?}"
    );
    guard.release()?;
    assert!(f.running().join("odd.lock").is_dir());
    Ok(())
}
