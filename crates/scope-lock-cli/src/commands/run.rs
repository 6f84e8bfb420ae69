//! `scope-lock run`: acquire, run CMD while holding the lock, release once CMD has ended.
//!
//! The lock's descriptor is close-on-exec (the library opens every file with `O_CLOEXEC`), so
//! CMD never holds the lock: if this process dies, however it dies, the lock ends with it.
//! SIGINT and SIGTERM are caught once the lock is held and passed on to CMD, so that CMD can
//! clean up and exit, and the lock is released only after CMD has ended. Before that (while
//! acquiring) they keep their default action: dying then leaves nothing behind.

use std::io;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use scope_lock::{AcquireError, LockManager, ScopeGuard};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cli::RunArgs;
use crate::exit::{self, Failure};
use crate::output;
use crate::process;

pub(crate) fn run(manager: &LockManager, args: RunArgs) -> Result<u8, Failure> {
    let request = args.lock.request();
    let guard = match manager.try_acquire(&request) {
        Ok(guard) => guard,
        Err(AcquireError::Conflict(conflict)) => {
            eprintln!(
                "scope-lock: busy: {}",
                output::describe_conflict(manager.running_dir(), &conflict)
            );
            return Ok(exit::CONTENTION);
        }
        Err(AcquireError::Failed(err)) => return Err(err.into()),
    };
    let status = run_holding(&guard, &args);
    release(guard);
    status
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
