//! `scope-lock run`: acquire, run CMD while holding the lock, release once CMD has ended.
//!
//! The lock's descriptor is close-on-exec (the library opens every file with `O_CLOEXEC`), so
//! CMD never holds the lock: if this process dies, however it dies, the lock ends with it.
//! SIGINT and SIGTERM are caught once the lock is held and passed on to CMD, so that CMD can
//! clean up and exit, and the lock is released only after CMD has ended. Before that (while
//! acquiring, or waiting with `--wait`) they keep their default action: dying then leaves
//! nothing behind that blocks anyone.

use std::io;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use scope_lock::{AcquireError, LockManager, LockRequest, ScopeGuard, Waiting};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cli::RunArgs;
use crate::exit::{self, Failure};
use crate::output;
use crate::process;

pub(crate) fn run(manager: &LockManager, args: RunArgs) -> Result<u8, Failure> {
    let request = args.lock.request();
    let running_dir = manager.running_dir();
    let acquired = if args.wait {
        // Printed once, when the wait starts (as cargo does); quiet after that.
        let mut report = |wait: &Waiting<'_>| {
            if wait.is_first() {
                eprintln!(
                    "Blocking: waiting for scope {}: {}",
                    scope_display(&request),
                    output::describe_conflict(running_dir, wait.conflict())
                );
            }
        };
        manager.acquire_with(&request, deadline(args.timeout), &mut report)
    } else {
        manager.try_acquire(&request)
    };
    let guard = match acquired {
        Ok(guard) => guard,
        Err(err @ (AcquireError::Conflict(_) | AcquireError::Timeout(_))) => {
            if let Some(conflict) = err.conflict() {
                let what = if err.is_timeout() {
                    "timed out waiting"
                } else {
                    "busy"
                };
                eprintln!(
                    "scope-lock: {what}: {}",
                    output::describe_conflict(running_dir, conflict)
                );
            }
            return Ok(exit::CONTENTION);
        }
        Err(AcquireError::Failed(err)) => return Err(err.into()),
    };
    let status = run_holding(&guard, &args);
    release(guard);
    status
}

/// The scope as given on the command line; `.` (the whole project) when none was.
fn scope_display(request: &LockRequest) -> String {
    match request.scope_entries() {
        [] => ".".to_owned(),
        entries => entries.join(" "),
    }
}

/// `now + timeout`; without a timeout, a deadline no wait will reach (about a century).
fn deadline(timeout: Option<Duration>) -> Instant {
    const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    let now = Instant::now();
    now.checked_add(timeout.unwrap_or(FOREVER))
        .or_else(|| now.checked_add(Duration::from_secs(24 * 60 * 60)))
        .unwrap_or(now)
}

/// Runs CMD to its end while `_guard` holds the lock; CMD's exit status as a shell reports it.
fn run_holding(_guard: &ScopeGuard, args: &RunArgs) -> Result<u8, Failure> {
    let signals = Signals::new([SIGINT, SIGTERM]).map_err(|err| {
        Failure::new(
            exit::FAILURE,
            format!("cannot install signal handlers: {err}"),
        )
    })?;
    let (program, program_args) = args
        .command
        .split_first()
        .ok_or_else(|| Failure::new(exit::USAGE, "no command given after `--`"))?;
    let child = Command::new(program)
        .args(program_args)
        .spawn()
        .map_err(|err| {
            let status = match err.kind() {
                io::ErrorKind::NotFound => exit::NOT_FOUND,
                _ => exit::CANNOT_EXECUTE,
            };
            Failure::new(
                status,
                format!("cannot run {}: {err}", program.to_string_lossy()),
            )
        })?;
    wait_forwarding(child, signals)
}

/// Waits for `child`, passing on every signal `signals` catches meanwhile.
fn wait_forwarding(mut child: Child, mut signals: Signals) -> Result<u8, Failure> {
    // The pid to forward to, cleared (under the mutex) once the child has exited and before it
    // is reaped: a reaped pid may be reused, an unreaped one may not.
    let target = Arc::new(Mutex::new(Some(child.id())));
    let handle = signals.handle();
    let forwarder = {
        let target = Arc::clone(&target);
        thread::spawn(move || {
            for signal in signals.forever() {
                let target = target.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(pid) = *target {
                    // The child may be exiting on its own already; nothing to report.
                    let _ = process::send_signal(pid, signal);
                }
            }
        })
    };
    let exited = process::wait_exited_without_reaping(child.id());
    *target.lock().unwrap_or_else(PoisonError::into_inner) = None;
    handle.close();
    let _ = forwarder.join();
    exited.map_err(|err| Failure::new(exit::FAILURE, format!("cannot wait for CMD: {err}")))?;
    let status = child
        .wait()
        .map_err(|err| Failure::new(exit::FAILURE, format!("cannot wait for CMD: {err}")))?;
    Ok(process::shell_status(status))
}

/// Releases the lock; a failure is reported but does not change CMD's status (the flock ends
/// with the descriptor all the same, so the file left behind is stale and will be reclaimed).
fn release(guard: ScopeGuard) {
    if let Err(err) = guard.release() {
        eprintln!("scope-lock: warning: {err}");
    }
}
