//! SL-1's acceptance criteria (issues/SL-1.md): a process that holds the directory sentinel and
//! is stopped delays `try_acquire` and a guard's drop by their bound, no more; the error names
//! the stopped process; once it goes on, the scope is free.
//!
//! Against the pre-fix code (`SCOPE_LOCK_IMPL=pre-fix`: the sentinel taken with a blocking
//! `flock`, ported in `regression::pre_fix_wait::blocking_sentinel`), the acquire is still
//! waiting long after the bound.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{project, worker};
use regression::attempt::AttemptProcess;
use regression::locker::Impl;
use regression::{pre_fix_wait, record_evidence};
use rustix::process::{Pid, Signal, kill_process};
use scope_lock::ErrorKind;
use scope_lock::testing::TestResult;
use serde_json::json;

/// The sentinel bound of the manager under test.
const BOUND: Duration = Duration::from_millis(500);

/// How long past its bound a call may take before the test calls it hung. Generous: this test
/// is about returning at all, not about how fast.
const SLACK: Duration = Duration::from_secs(5);

/// Sends SIGCONT when dropped, so that a failing test never leaves a stopped process behind.
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        if let Some(pid) = i32::try_from(self.0).ok().and_then(Pid::from_raw) {
            let _ = kill_process(pid, Signal::CONT);
        }
    }
}

#[test]
fn a_stopped_sentinel_holder_delays_others_by_their_bound_and_is_named() -> TestResult {
    let which = Impl::from_env();
    let (f, _scope) = project()?;
    let locks = f.locks.clone().with_sentinel_bound(BOUND);
    let guard = locks.try_acquire(&f.request("held-before", "src"))?;
    let lock_file = guard.path().to_path_buf();

    let running = f.running().to_string_lossy().into_owned();
    let mut stuck =
        AttemptProcess::spawn_command(worker(), "hold-sentinel", ["--running-dir", &running])?;
    assert_eq!(stuck.next_line()?, "holding");
    let pid = stuck.pid();
    kill_process(
        Pid::from_raw(i32::try_from(pid)?).ok_or("pid")?,
        Signal::STOP,
    )?;
    let resume = Resume(pid);

    // try_acquire, on another thread so that a hang fails the test instead of hanging it.
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    let request = f.request("other", "elsewhere");
    let (attempt_locks, running_dir) = (locks.clone(), f.running().to_path_buf());
    thread::spawn(move || {
        let outcome = match which {
            Impl::Fixed => match attempt_locks.try_acquire(&request) {
                Ok(_) => Err("acquired while the sentinel was held".to_owned()),
                Err(err) => Ok((err.error().map(scope_lock::Error::kind), err.to_string())),
            },
            Impl::PreFix => pre_fix_wait::blocking_sentinel(&running_dir)
                .map(|_| (None, "took the sentinel".to_owned()))
                .map_err(|err| err.to_string()),
        };
        let _ = tx.send(outcome);
    });
    let Ok(outcome) = rx.recv_timeout(BOUND + SLACK) else {
        panic!(
            "try_acquire still waits for the sentinel {SLACK:?} past its {BOUND:?} bound: a \
             stopped holder hangs every acquirer"
        );
    };
    let busy_after = started.elapsed();
    let (kind, message) = outcome?;
    println!("try_acquire after {busy_after:?}: {message}");
    assert_eq!(kind, Some(ErrorKind::Busy), "{message}");
    assert!(
        message.contains(&format!("pid {pid}")),
        "the holder is not named: {message}"
    );
    assert!(
        message.contains(".acquire.lock"),
        "the sentinel is not named: {message}"
    );

    // Dropping a guard needs the sentinel too; it gives up after the bound and ends the lock.
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        drop(guard);
        let _ = tx.send(());
    });
    if rx.recv_timeout(BOUND + SLACK).is_err() {
        panic!("dropping a guard still waits {SLACK:?} past its {BOUND:?} bound");
    }
    let drop_after = started.elapsed();
    println!("drop after {drop_after:?}");
    assert!(lock_file.exists(), "removed without the sentinel");

    // The stopped process goes on and finishes: the scope is free, the stale file reclaimed.
    drop(resume);
    stuck.release()?;
    let again = locks.try_acquire(&f.request("held-before", "src"))?;
    assert_eq!(again.path(), lock_file);
    again.release()?;
    record_evidence(
        "a_stopped_sentinel_holder_delays_others_by_their_bound_and_is_named",
        &json!({
            "bound_ms": BOUND.as_millis(),
            "busy_after_ms": busy_after.as_millis(),
            "drop_after_ms": drop_after.as_millis(),
            "message": message,
        }),
    );
    Ok(())
}
