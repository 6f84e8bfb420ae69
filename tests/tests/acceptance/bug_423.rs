//! BUG-423's acceptance criteria (issues/BUG-423.md), one group of tests per criterion.
//!
//! Tests that take a `which()` run against the implementation `SCOPE_LOCK_IMPL` names: the fix
//! by default, the pre-fix port with `SCOPE_LOCK_IMPL=pre-fix`. `cargo xtask verify` runs them
//! both ways; against the port, the AC-1 to AC-4 tests must fail, and their failure messages
//! name the symptom BUG-423 predicts ("NotFound", "not flocked", "partial", "two holders").

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::support::{Workers, project, worker};
use regression::attempt::AttemptProcess;
use regression::fleet::{FleetParams, FleetReport, run_fleet};
use regression::locker::{Attempt, Held, Impl, Locker};
use regression::pre_fix::{Hooks, PreFixLockManager};
use regression::probe::{Probe, probe};
use regression::{record_evidence, soak};
use scope_lock::testing::TestResult;
use scope_lock::{LockRecord, LockRequest};
use serde_json::json;

fn which() -> Impl {
    Impl::from_env()
}

fn acquire(locker: &Locker, name: &str, scope: &str) -> Held {
    match locker.try_acquire(name, &[scope.to_owned()]) {
        Attempt::Held(held) => held,
        other => panic!("acquire of {name} failed: {other:?}"),
    }
}

/// One probe from a separate process (`regression-worker probe PATH`).
fn probe_from_another_process(path: &Path) -> String {
    let output = Command::new(worker())
        .arg("probe")
        .arg(path)
        .output()
        .expect("spawn probe");
    assert!(output.status.success(), "probe failed: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The fleet of the report's steps to reproduce, scaled up: 8 processes acquiring and
/// releasing the same scope under the same loop name, 2 unlocked readers, one witness log.
/// Run once per test process and shared by the tests that judge it (`fencing`'s too).
pub(crate) fn fleet() -> &'static FleetReport {
    static FLEET: OnceLock<Result<FleetReport, String>> = OnceLock::new();
    let result = FLEET.get_or_init(|| run_fleet(worker(), &FleetParams::standard(which(), soak())));
    match result {
        Ok(report) => report,
        Err(err) => panic!("the fleet did not run: {err}"),
    }
}

/// A fleet that reached fewer holds than asked proves less than it claims.
fn assert_fleet_complete(report: &FleetReport) {
    let params = FleetParams::standard(which(), soak());
    assert_eq!(
        report.cycles,
        u64::from(params.workers) * params.cycles_per_worker,
        "the fleet stopped at its deadline before completing its cycles: {}",
        report.to_json()
    );
}

// ---------------------------------------------------------------------------------------------
// AC-1: release never fails because the file is already gone, and is idempotent.
// ---------------------------------------------------------------------------------------------

#[test]
fn release_tolerates_a_concurrent_delete() -> TestResult {
    let (f, scope) = project()?;
    let locker = f.locker(which());
    for round in 0..20 {
        let held = acquire(&locker, "loop", &scope);
        let path = held.path().to_owned();
        // Another releaser (or a stale-lock cleaner) removes the file in the middle of ours.
        let result = locker.release_with(held, &|| {
            let _ = fs::remove_file(&path);
        });
        if let Err(failure) = result {
            panic!(
                "round {round}: release failed when a concurrent releaser removed the lock file first: {failure}"
            );
        }
    }
    Ok(())
}

#[test]
fn release_after_the_file_is_gone_is_ok() -> TestResult {
    let (f, scope) = project()?;
    let locker = f.locker(which());
    let held = acquire(&locker, "loop", &scope);
    fs::remove_file(held.path())?;
    if let Err(failure) = locker.release(held) {
        panic!("release of an already removed lock file failed: {failure}");
    }
    // And the scope is free again.
    let again = acquire(&locker, "loop", &scope);
    if let Err(failure) = locker.release(again) {
        panic!("second release failed: {failure}");
    }
    Ok(())
}

#[test]
fn release_frees_the_name_for_the_next_holder() -> TestResult {
    // Idempotence is by construction: `release` consumes the guard, so a second release does
    // not compile (the `compile_fail` example on `ScopeGuard::release`), and the drop that
    // follows it finds nothing left to do. What remains to show is that one release really
    // ends the hold and frees the name.
    let (f, scope) = project()?;
    let request = LockRequest::new("loop").scope([scope.as_str()]);
    let first = f.locks.try_acquire(&request)?;
    let path = first.path().to_owned();
    first.release()?;
    assert!(!path.exists());
    let second = f.locks.try_acquire(&request)?;
    assert_eq!(probe(&path)?, Probe::Held);
    drop(second);
    assert!(!path.exists());
    Ok(())
}

#[test]
fn many_processes_release_without_error() {
    let report = fleet();
    record_evidence(
        "many_processes_release_without_error",
        &report.evidence(&[
            "workers",
            "cycles",
            "attempts",
            "not_found_on_release",
            "other_errors",
            "first_error",
        ]),
    );
    assert_fleet_complete(report);
    assert_eq!(
        report.not_found_on_release,
        0,
        "NotFound on release {} times in {} cycles: {}",
        report.not_found_on_release,
        report.cycles,
        report.to_json()
    );
    assert_eq!(
        report.other_errors, 0,
        "errors in the fleet: {:?}",
        report.first_error
    );
}

// ---------------------------------------------------------------------------------------------
// AC-2: from try_acquire's return until release, the lock file is flocked by its holder.
// ---------------------------------------------------------------------------------------------

#[test]
fn lock_file_is_flocked_while_held_probed_from_another_process() -> TestResult {
    let (f, scope) = project()?;
    let locker = f.locker(which());
    for round in 0..10 {
        let held = acquire(&locker, "loop", &scope);
        let path = held.path().to_owned();
        let seen = probe_from_another_process(&path);
        assert_eq!(
            seen,
            "held",
            "round {round}: lock file {} not flocked while held (another process's probe found it {seen})",
            path.display()
        );
        if let Err(failure) = locker.release(held) {
            panic!("round {round}: {failure}");
        }
        assert_eq!(probe_from_another_process(&path), "missing");
    }
    Ok(())
}

#[test]
fn every_hold_in_the_fleet_is_flocked() {
    let report = fleet();
    record_evidence(
        "every_hold_in_the_fleet_is_flocked",
        &report.evidence(&["workers", "holds", "probes", "unheld_probes"]),
    );
    assert_fleet_complete(report);
    assert!(report.probes > 0, "no probes ran");
    assert_eq!(
        report.unheld_probes,
        0,
        "lock file not flocked (or gone) while held in {} of {} probes: {}",
        report.unheld_probes,
        report.probes,
        report.to_json()
    );
}

// ---------------------------------------------------------------------------------------------
// AC-3: no reader ever sees a partial or empty lock file.
// ---------------------------------------------------------------------------------------------

#[test]
fn scanners_never_see_partial_records() {
    let report = fleet();
    record_evidence(
        "scanners_never_see_partial_records",
        &report.evidence(&[
            "workers",
            "holds",
            "scans",
            "reads",
            "partial_reads",
            "first_partial",
        ]),
    );
    assert_fleet_complete(report);
    assert!(
        report.reads > 0,
        "the scanners read no lock file at all, so they proved nothing: {}",
        report.to_json()
    );
    assert_eq!(
        report.partial_reads, 0,
        "partial or empty lock file read {} times in {} reads, e.g. {:?}",
        report.partial_reads, report.reads, report.first_partial
    );
}

// ---------------------------------------------------------------------------------------------
// AC-4: many processes rapidly acquiring and releasing one scope: never two holders at once.
// ---------------------------------------------------------------------------------------------

#[test]
fn eight_processes_never_hold_at_once() {
    let report = fleet();
    record_evidence(
        "eight_processes_never_hold_at_once",
        &report.evidence(&[
            "workers",
            "cycles",
            "witnessed_holds",
            "overlaps_by_order",
            "overlaps_by_time",
            "max_holders",
            "other_errors",
            "elapsed_ms",
        ]),
    );
    assert_fleet_complete(report);
    assert!(report.workers >= 8);
    assert_eq!(
        report.witnessed_holds, report.holds,
        "the witness saw a different number of holds than the workers made"
    );
    assert_eq!(report.unmatched_events, 0);
    assert_eq!(
        report.overlaps,
        0,
        "two holders at once {} times (by log order {}, by clock {}; at most {} holders): {}",
        report.overlaps,
        report.overlaps_by_order,
        report.overlaps_by_time,
        report.max_holders,
        report.to_json()
    );
}

#[test]
fn processes_released_together_never_both_win() -> TestResult {
    let (f, scope) = project()?;
    let mut double_wins = 0;
    let rounds = if soak() { 200 } else { 20 };
    for _ in 0..rounds {
        let mut contenders = (0..4)
            .map(|i| f.spawn_attempt(which(), &format!("contender-{i}"), &scope, &[]))
            .collect::<Result<Vec<_>, _>>()?;
        let outcomes = contenders
            .iter_mut()
            .map(AttemptProcess::go)
            .collect::<Result<Vec<_>, _>>()?;
        let winners = outcomes.iter().filter(|o| o.starts_with("held")).count();
        assert!(
            outcomes
                .iter()
                .all(|o| o.starts_with("held") || o.starts_with("conflict")),
            "{outcomes:?}"
        );
        if winners != 1 {
            double_wins += 1;
        }
        for contender in contenders {
            let last = contender.release()?;
            assert!(!last.starts_with("release-failed"), "{last}");
        }
    }
    record_evidence(
        "processes_released_together_never_both_win",
        &json!({"rounds": rounds, "contenders": 4, "rounds_without_exactly_one_winner": double_wins}),
    );
    assert_eq!(
        double_wins, 0,
        "two holders at once (or none) in {double_wins} of {rounds} rounds"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// AC-5: a release removes only the lock it acquired.
// ---------------------------------------------------------------------------------------------

#[test]
fn release_spares_a_name_reacquired_by_another_holder() -> TestResult {
    let (f, scope) = project()?;
    let locker = f.locker(which());
    let old = acquire(&locker, "loop", &scope);
    let path = old.path().to_owned();
    // The old holder's file is removed behind its back (a pid-based cleaner that misjudged it,
    // or a user's `rm`), and another process acquires the same name.
    fs::remove_file(&path)?;
    let mut new_holder = f.spawn_attempt(which(), "loop", &scope, &[])?;
    let said = new_holder.go()?;
    assert!(
        said.starts_with("held"),
        "the new holder could not acquire: {said}"
    );
    let before = fs::read(&path)?;

    let _ = locker.release(old);

    assert!(
        path.exists(),
        "the old holder's release removed a lock it did not acquire (the new holder's)"
    );
    assert_eq!(fs::read(&path)?, before, "the new holder's record changed");
    if which() == Impl::Fixed {
        assert_eq!(probe(&path)?, Probe::Held);
    }
    assert_eq!(new_holder.release()?, "released");
    Ok(())
}

#[test]
fn forked_child_never_releases_its_parents_lock() -> TestResult {
    let (f, scope) = project()?;
    let output = Command::new(worker())
        .arg("fork-release")
        .args(["--impl", which().name()])
        .arg("--loops-dir")
        .arg(f.loops_dir())
        .args(["--scope", &scope])
        .output()?;
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    assert_eq!(
        report["exists"], true,
        "a forked child's release removed its parent's lock file: {report}"
    );
    if which() == Impl::Fixed {
        assert_eq!(
            report["held"], true,
            "the parent's flock ended when its forked child released: {report}"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// AC-6: a holder killed by SIGKILL at any point is reclaimed by the next acquirer.
// ---------------------------------------------------------------------------------------------

#[test]
fn sigkilled_holder_is_reclaimed_by_the_next_acquirer() -> TestResult {
    let (f, scope) = project()?;
    let request = LockRequest::new("next").scope([scope.as_str()]);
    for round in 0..5 {
        let mut holder = f.spawn_attempt(Impl::Fixed, "victim", &scope, &[])?;
        let said = holder.go()?;
        let path = PathBuf::from(said.strip_prefix("held ").ok_or(said.clone())?);
        assert!(
            f.locks.try_acquire(&request).is_err(),
            "round {round}: not held"
        );
        holder.kill()?;
        // The victim's pid is dead now, but the verdict comes from the free flock.
        let guard = f.locks.try_acquire(&request)?;
        assert!(
            !path.exists(),
            "round {round}: the killed holder's file was not reclaimed"
        );
        guard.release()?;
    }
    Ok(())
}

#[test]
fn holders_killed_at_random_points_never_wedge_the_scope() -> TestResult {
    let (f, scope) = project()?;
    let locks = &f.locks;
    let request = LockRequest::new("survivor").scope([scope.as_str()]);
    let rounds = if soak() { 200 } else { 24 };
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut reclaimed = 0;
    for round in 0..rounds {
        let mut churn = std::process::Command::new(worker())
            .arg("churn")
            .arg("--loops-dir")
            .arg(f.loops_dir())
            .args(["--name", "churn", "--scope", &scope])
            .args(["--cycles", "1000000", "--deadline-ms", "60000"])
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        // Let it run a pseudo-random number of steps, then kill it wherever it is: holding,
        // publishing, scanning, or releasing.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let steps = 1 + seed % 64;
        let stdout = churn.stdout.take().ok_or("no stdout")?;
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        for _ in 0..steps {
            if lines.next().is_none() {
                break;
            }
        }
        churn.kill()?;
        churn.wait()?;
        drop(lines);

        let guard = locks
            .try_acquire(&request)
            .map_err(|err| format!("round {round} (killed after {steps} steps): {err}"))?;
        guard.release()?;
        let listing = locks.list_locks()?;
        assert!(
            listing.locks().is_empty(),
            "round {round}: {:?}",
            listing.locks()
        );
        assert!(
            listing.problems().is_empty(),
            "round {round}: {:?}",
            listing.problems()
        );
        reclaimed += listing.reclaimed().len();
        // Nothing half-published is left behind either (the sentinel and the fencing-token
        // counter stay, as they should).
        let leftovers: Vec<_> = fs::read_dir(f.running())?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name != ".acquire.lock" && name != ".fencing-token")
            .collect();
        assert!(
            leftovers.is_empty(),
            "round {round}: left behind {leftovers:?}"
        );
    }
    record_evidence(
        "holders_killed_at_random_points_never_wedge_the_scope",
        &json!({"kills": rounds, "stale_locks_found_after_scans": reclaimed}),
    );
    Ok(())
}

#[test]
fn reclaim_trusts_the_flock_not_a_live_pid() -> TestResult {
    // A holder that died with its pid recycled: the record names a live process (this one,
    // and pid 1), but nothing holds the flock.
    let (f, scope) = project()?;
    let locks = &f.locks;
    f.init()?;
    for (name, pid) in [("recycled-self", std::process::id()), ("recycled-init", 1)] {
        let record = LockRecord::new(
            name,
            vec![scope.clone()],
            pid,
            "2026-01-01T00:00:00.000000+00:00",
        )
        .with_flock_liveness();
        fs::write(
            locks.running_dir().join(format!("{name}.lock")),
            record.to_json(),
        )?;
    }
    let guard = locks.try_acquire(&LockRequest::new("next").scope([scope.as_str()]))?;
    assert!(!locks.running_dir().join("recycled-self.lock").exists());
    assert!(!locks.running_dir().join("recycled-init.lock").exists());
    guard.release()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// AC-8: the pre-fix port shows the bug (deterministic interleavings). The AC-1..AC-4 tests
// above are also run against it by `cargo xtask verify` and must fail there.
// ---------------------------------------------------------------------------------------------

#[test]
fn pre_fix_port_admits_two_holders() -> TestResult {
    let (f, scope) = project()?;
    let loops_dir = f.loops_dir();
    let scope = [scope];
    let second = PreFixLockManager::new(&loops_dir);
    let second_won = std::cell::Cell::new(false);
    let first = PreFixLockManager::with_hooks(
        &loops_dir,
        Hooks {
            // B runs its whole acquire between A's check and A's write.
            after_scan: Some(Box::new(|| {
                second_won.set(second.acquire("b", &scope).unwrap_or(false));
            })),
            ..Hooks::default()
        },
    );
    let first_won = first.acquire("a", &scope)?;
    assert!(
        first_won && second_won.get(),
        "expected two holders of one scope"
    );
    Ok(())
}

#[test]
fn pre_fix_port_holds_nothing_after_acquire() -> TestResult {
    let (f, scope) = project()?;
    let port = PreFixLockManager::new(&f.loops_dir());
    assert!(port.acquire("a", &[scope])?);
    assert_eq!(probe_from_another_process(&port.lock_path("a")), "free");
    Ok(())
}

#[test]
fn pre_fix_port_release_fails_with_not_found_when_raced() -> TestResult {
    let (f, scope) = project()?;
    let port = PreFixLockManager::new(&f.loops_dir());
    assert!(port.acquire("a", &[scope])?);
    let path = port.lock_path("a");
    let err = port
        .release_with("a", &|| {
            let _ = fs::remove_file(&path);
        })
        .map(|()| "released")
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    Ok(())
}

#[test]
fn pre_fix_port_readers_see_an_empty_lock_file() -> TestResult {
    let (f, scope) = project()?;
    let loops_dir = f.loops_dir();
    let path = f.running().join("a.lock");
    let seen = std::cell::RefCell::new(None);
    let port = PreFixLockManager::with_hooks(
        &loops_dir,
        Hooks {
            after_truncate: Some(Box::new(|| {
                *seen.borrow_mut() = Some(fs::read(&path));
            })),
            ..Hooks::default()
        },
    );
    assert!(port.acquire("a", &[scope])?);
    let seen = seen.take().ok_or("the hook did not run")??;
    assert!(seen.is_empty(), "a reader saw {seen:?}");
    assert!(regression::original_reader::parse(&seen).is_err());
    Ok(())
}
