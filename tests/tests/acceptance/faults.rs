//! Holders and acquirers killed with SIGKILL at every step of acquire and release. A
//! worker stops at one of the library's pause points (compiled in only with the
//! `test-support` feature; the worker says `paused <step>` there), is killed, and then:
//!
//! - the next acquire of the same scope gets in (no lock is live without a live holder, and
//!   the sentinel is not wedged: the acquire returns, within the manager's bound);
//! - while that holder lives, a second acquirer is refused (never two holders);
//! - after it releases, `.running/` holds no lock file and no half-published file (leftovers
//!   are gone after the next acquire).
//!
//! `verify` runs 15 kills per step (150 in all, 10 steps), `verify --soak` 150 (1,500). The
//! step `scan:reclaim-checked` is reached only when there is a stale lock to reclaim, and
//! `acquire:directory-missing` only for a nested name whose directory is missing: each round
//! there starts so. The `wait:` steps, reached only by a blocked waiter, are left out here.

use std::fs;

use crate::support::{project, worker};
use regression::attempt::AttemptProcess;
use regression::{record_evidence, soak};
use scope_lock::testing::TestResult;
use scope_lock::{LockRequest, PAUSE_STEPS};
use serde_json::{Map, Value};

#[test]
fn a_process_killed_at_any_step_of_acquire_or_release_leaves_nothing_that_blocks() -> TestResult {
    let (f, scope) = project()?;
    let per_step = if soak() { 150 } else { 15 };
    let mut evidence = Map::new();
    for step in PAUSE_STEPS {
        if step.starts_with("wait:") {
            // Reached only by a blocked waiter; one killed there is bug_1361's test
            // (a_sigkilled_waiter_does_not_block_the_waiters_behind_it).
            continue;
        }
        for round in 0..per_step {
            if *step == "scan:reclaim-checked" {
                // Reached only while a stale lock waits to be reclaimed.
                f.write_dead_lock("stale", &f.path("elsewhere"))?;
            }
            // Reached only for a nested name whose directory is missing: a new one each round.
            let instance = format!("round-{round}/victim");
            let extra: &[&str] = if *step == "acquire:directory-missing" {
                &["--instance", &instance]
            } else {
                &[]
            };
            let mut victim = AttemptProcess::spawn_paused(
                worker(),
                &f.loops_dir(),
                "victim",
                &scope,
                step,
                extra,
            )?;
            let said = victim.go()?;
            let said = if step.starts_with("release:") {
                assert!(said.starts_with("held"), "{step}: {said}");
                victim.start_release()?
            } else {
                said
            };
            assert_eq!(said, format!("paused {step}"), "round {round}");
            victim.kill()?;

            // The next acquirer gets in, and is the only holder.
            let next = f
                .locks
                .try_acquire(&LockRequest::new("next").scope([scope.as_str()]))
                .map_err(|err| format!("{step}, round {round}: after the kill: {err}"))?;
            let second = f
                .locks
                .try_acquire(&LockRequest::new("second").scope([scope.as_str()]));
            assert!(
                second.as_ref().is_err_and(|err| err.conflict().is_some()),
                "{step}, round {round}: two holders at once: {second:?}"
            );
            drop(second);
            next.release()?;

            let left: Vec<String> = fs::read_dir(f.running())?
                .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<Result<_, _>>()?;
            let leftovers: Vec<&String> = left
                .iter()
                .filter(|name| name.ends_with(".lock") && name.as_str() != ".acquire.lock")
                .chain(
                    left.iter()
                        .filter(|name| name.starts_with(".scope-lock-publish-")),
                )
                .collect();
            assert!(
                leftovers.is_empty(),
                "{step}, round {round}: left behind after the next acquire: {leftovers:?}"
            );
        }
        evidence.insert((*step).to_owned(), Value::from(per_step));
    }
    evidence.insert("kills".to_owned(), Value::from(per_step * evidence.len()));
    record_evidence(
        "a_process_killed_at_any_step_of_acquire_or_release_leaves_nothing_that_blocks",
        &Value::Object(evidence),
    );
    Ok(())
}
