//! `scope-lock run`: acquire, run CMD while holding the lock, release once CMD has ended.
//!
//! CMD inherits a duplicate of the lock's descriptor, as `flock(1)`'s command does, so the lock
//! lives as long as CMD: if this process is killed, CMD (and whatever it starts that keeps the
//! descriptor) still holds it, and nobody else gets the scope while CMD runs on. On a normal
//! end this process releases the lock once CMD has ended, as always: it removes the lock file
//! first, so a background process CMD left holding the descriptor blocks nobody.
//! CMD finds the lock's fencing token in `SCOPE_LOCK_TOKEN`.
//! SIGINT and SIGTERM are caught once the lock is held and passed on to CMD, so that CMD can
//! clean up and exit, and the lock is released only after CMD has ended. Before that (while
//! acquiring, or waiting with `--wait`) they keep their default action: dying then leaves
//! nothing behind that blocks anyone.
//!
//! CMD gets each signal once. Ctrl-C in a terminal makes the kernel signal the terminal's
//! foreground process group, which holds CMD as well as this process unless CMD left the
//! group: a signal the kernel sent is therefore passed on only when CMD is in another process
//! group. A signal a process sent (`kill`, `sigqueue`) is passed on. What siginfo cannot tell
//! apart is a process signalling the whole group (`kill -INT -PGID`, or a service manager
//! signalling every process it started): CMD gets that one directly and once more from here.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use scope_lock::{AcquireError, LockRequest, WaitObserver, Waiting};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::Cause;

use crate::backend::Backend;
use crate::cli::RunArgs;
use crate::exit::{self, Failure};
use crate::held::HeldLock;
use crate::output::{self, RunJson};
use crate::process;

pub(crate) fn run(backend: &Backend, args: RunArgs) -> Result<u8, Failure> {
    let outcome = match backend {
        Backend::Local { manager, .. } => acquire_and_run(
            &args,
            |request| manager.try_acquire(request),
            |request, deadline, observer| manager.acquire_with(request, deadline, observer),
        ),
        Backend::Etcd(manager) => acquire_and_run(
            &args,
            |request| manager.try_acquire(request),
            |request, deadline, observer| manager.acquire_with(request, deadline, observer),
        ),
    };
    if !args.json {
        return outcome.map(|outcome| outcome.status);
    }
    // stdout is CMD's: the report goes to stderr, one line, once the outcome is known.
    let (json, status) = match &outcome {
        Ok(outcome) => (RunJson::new(outcome), outcome.status),
        Err(failure) => (RunJson::failed(failure), failure.status),
    };
    output::print_json_line_to_stderr(&json);
    Ok(status)
}

/// Acquires the scope with `try_acquire`, or when waiting with `acquire_with`, and runs CMD
/// holding it; what happened.
fn acquire_and_run<L: HeldLock>(
    args: &RunArgs,
    try_acquire: impl FnOnce(&LockRequest) -> Result<L, AcquireError>,
    acquire_with: impl FnOnce(&LockRequest, Instant, &mut dyn WaitObserver) -> Result<L, AcquireError>,
) -> Result<RunOutcome, Failure> {
    let request = args.lock.request();
    let contention = args.conflict_exit_code.unwrap_or(exit::CONTENTION);
    let acquired = if args.waits() {
        // Printed once, when the wait starts (as cargo does); quiet after that, and with
        // --json, whose report says it all at the end.
        let mut report = |wait: &Waiting<'_>| {
            if wait.is_first() && !args.json {
                eprintln!(
                    "Blocking: waiting for scope {}: {}",
                    scope_display(&request),
                    wait.conflict()
                );
            }
        };
        acquire_with(&request, deadline(args.timeout), &mut report)
    } else {
        try_acquire(&request)
    };
    let lock = match acquired {
        Ok(lock) => lock,
        Err(err @ (AcquireError::Conflict(_) | AcquireError::Timeout(_))) => {
            if let (Some(conflict), false) = (err.conflict(), args.json) {
                let what = if err.is_timeout() {
                    "timed out waiting"
                } else {
                    "busy"
                };
                eprintln!("scope-lock: {what}: {conflict}");
            }
            return Ok(RunOutcome {
                status: contention,
                ran: None,
                refused: Some(err),
            });
        }
        Err(AcquireError::Failed(err)) => {
            let mut failure = Failure::from(err);
            // A directory sentinel that stayed busy is contention too: -E applies to it.
            if failure.status == exit::CONTENTION {
                failure.status = contention;
            }
            return Err(failure);
        }
    };
    hold_and_run(lock, args)
}

/// Runs CMD while `lock` is held, then releases it. `run` exits with CMD's status, or with
/// [`exit::LOST`] when the lock was lost meanwhile.
pub(crate) fn hold_and_run(lock: impl HeldLock, args: &RunArgs) -> Result<RunOutcome, Failure> {
    let location = lock.location();
    let token = lock.token();
    let ended = run_holding(&lock, args);
    let lost = lock.is_lost();
    release(lock);
    let ended = ended?;
    let lost = ended.lost || lost;
    let cmd_status = process::shell_status(ended.status);
    if lost && !args.json {
        eprintln!(
            "scope-lock: the lock was lost while CMD ran (CMD exited with status {cmd_status}); \
             exiting {}",
            exit::LOST
        );
    }
    Ok(RunOutcome {
        status: if lost { exit::LOST } else { cmd_status },
        ran: Some(Ran {
            location,
            token,
            status: ended.status,
            lost,
        }),
        refused: None,
    })
}

/// What `run` did: CMD ran holding the lock, or the scope was refused; and the status `run`
/// exits with.
pub(crate) struct RunOutcome {
    pub(crate) status: u8,
    pub(crate) ran: Option<Ran>,
    pub(crate) refused: Option<AcquireError>,
}

/// CMD ran holding the lock.
pub(crate) struct Ran {
    /// The lock file, or the lock's key.
    pub(crate) location: PathBuf,
    /// The lock's fencing token.
    pub(crate) token: u64,
    /// CMD's exit status.
    pub(crate) status: ExitStatus,
    /// Whether the lock was lost while CMD ran.
    pub(crate) lost: bool,
}

/// The scope as given on the command line; `.` (the whole project) when none was.
fn scope_display(request: &LockRequest) -> String {
    match request.scope_entries() {
        [] => ".".to_owned(),
        entries => output::paths_text(entries),
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

/// The environment variable that gives CMD its lock's fencing token (docs/protocol.md,
/// "Fencing tokens"), for CMD to hand to a resource that refuses stale holders.
pub(crate) const TOKEN_VARIABLE: &str = "SCOPE_LOCK_TOKEN";

/// How CMD's run ended.
struct Ended {
    /// CMD's exit status.
    status: ExitStatus,
    /// Whether the lock was lost while CMD ran (and CMD was told).
    lost: bool,
}

/// Runs CMD to its end while `lock` is held, CMD holding it too where it can.
fn run_holding(lock: &impl HeldLock, args: &RunArgs) -> Result<Ended, Failure> {
    let signals = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM]).map_err(|err| {
        Failure::new(
            exit::FAILURE,
            format!("cannot install signal handlers: {}", exit::os_reason(&err)),
        )
    })?;
    let command = args.program();
    let (program, program_args) = command
        .split_first()
        .ok_or_else(|| Failure::new(exit::USAGE, "no command given"))?;
    let inherited = lock
        .descriptor()
        .map(|fd| inheritable_duplicate(fd, lock))
        .transpose()?;
    let spawned = Command::new(program)
        .args(program_args)
        .env(TOKEN_VARIABLE, lock.token().to_string())
        .spawn();
    // CMD has its copy now; ours must not reach anything else this process might start.
    drop(inherited);
    let child = spawned.map_err(|err| {
        let status = match err.kind() {
            io::ErrorKind::NotFound => exit::NOT_FOUND,
            _ => exit::CANNOT_EXECUTE,
        };
        Failure::new(
            status,
            format!(
                "cannot run {}: {}",
                program.to_string_lossy(),
                exit::os_reason(&err)
            ),
        )
    })?;
    wait_forwarding(child, signals, lock, args.lost_grace, args.json)
}

/// A duplicate of the lock's descriptor without close-on-exec, for CMD to inherit.
///
/// `dup` clears close-on-exec on the copy, so the child `spawn` makes keeps it across `exec`
/// at the same number, and no `pre_exec` hook (unsafe code, denied here) is needed. The copy
/// exists only around the one `spawn` of this process: nothing else is started meanwhile (the
/// signal forwarder starts after it and starts nothing), so it reaches CMD alone.
fn inheritable_duplicate(fd: BorrowedFd<'_>, lock: &impl HeldLock) -> Result<OwnedFd, Failure> {
    rustix::io::dup(fd).map_err(|err| {
        Failure::new(
            exit::FAILURE,
            format!(
                "cannot pass the lock on to CMD: dup of the descriptor of {}: {}",
                lock.describe(),
                exit::os_reason(&err.into())
            ),
        )
    })
}

/// What the thread that watches for a lost lock hears.
enum Watched {
    /// The lock is lost.
    Lost,
    /// CMD has exited.
    CmdEnded,
}

/// Waits for `child`, passing on the signals `signals` catches meanwhile that did not reach it
/// already (see [`passes_on`]), and telling it when `lock` is lost: SIGTERM once `grace` has
/// passed since the loss (unless it ended by then).
fn wait_forwarding(
    mut child: Child,
    mut signals: SignalsInfo<WithOrigin>,
    lock: &impl HeldLock,
    grace: Duration,
    quiet: bool,
) -> Result<Ended, Failure> {
    // The pid to forward to, cleared (under the mutex) once the child has exited and before it
    // is reaped: a reaped pid may be reused, an unreaped one may not.
    let target = Arc::new(Mutex::new(Some(child.id())));
    let handle = signals.handle();
    let forwarder = {
        let target = Arc::clone(&target);
        thread::spawn(move || {
            for origin in signals.forever() {
                let target = target.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(pid) = *target {
                    // If the group cannot be read, pass the signal on: a second SIGINT is
                    // better than a Ctrl-C that does not reach CMD at all.
                    let shares_group = || process::in_our_process_group(pid).unwrap_or(false);
                    if passes_on(origin.cause, shares_group) {
                        // The child may be exiting on its own already; nothing to report.
                        let _ = process::send_signal(pid, origin.signal);
                    }
                }
            }
        })
    };
    let (watched, heard) = mpsc::channel();
    let lost_tx = watched.clone();
    lock.on_lost(Box::new(move || {
        let _ = lost_tx.send(Watched::Lost);
    }));
    let loss_watcher = {
        let target = Arc::clone(&target);
        // With --json the report says it all at the end.
        let what = (!quiet).then(|| lock.describe());
        thread::spawn(move || tell_cmd_when_lost(&heard, &target, what.as_deref(), grace))
    };
    let exited = process::wait_exited_without_reaping(child.id());
    *target.lock().unwrap_or_else(PoisonError::into_inner) = None;
    handle.close();
    let _ = forwarder.join();
    let _ = watched.send(Watched::CmdEnded);
    let lost = loss_watcher.join().unwrap_or(true);
    let cannot_wait = |err: io::Error| {
        Failure::new(
            exit::FAILURE,
            format!("cannot wait for CMD: {}", exit::os_reason(&err)),
        )
    };
    exited.map_err(cannot_wait)?;
    let status = child.wait().map_err(cannot_wait)?;
    Ok(Ended { status, lost })
}

/// Waits for the lock to be lost or CMD to end, whichever comes first. On a loss: says so
/// (unless `what`, the lock's description, is `None`), and
/// once `grace` has passed without CMD ending, sends it SIGTERM (through `target`, which holds
/// CMD's pid while it is unreaped). Returns whether the lock was lost while CMD ran.
fn tell_cmd_when_lost(
    heard: &Receiver<Watched>,
    target: &Mutex<Option<u32>>,
    what: Option<&str>,
    grace: Duration,
) -> bool {
    match heard.recv() {
        Ok(Watched::Lost) => {}
        Ok(Watched::CmdEnded) | Err(_) => return false,
    }
    if let Some(what) = what {
        eprintln!(
            "scope-lock: lost the lock ({what}): someone else may hold the scope now; CMD gets \
             SIGTERM{}",
            if grace.is_zero() {
                String::new()
            } else {
                format!(" in {}s unless it ends first", grace.as_secs_f64())
            }
        );
    }
    if let Err(RecvTimeoutError::Timeout) = heard.recv_timeout(grace)
        && let Some(pid) = *target.lock().unwrap_or_else(PoisonError::into_inner)
    {
        let _ = process::send_signal(pid, SIGTERM);
    }
    true
}

/// Whether a caught signal must be passed on to CMD, given why it was sent (`cause`) and
/// whether CMD is in this process's process group (`cmd_shares_group`, asked only when needed).
///
/// The kernel signals a whole process group when Ctrl-C is typed in its terminal: CMD got such
/// a signal already if it shares our group. Signals sent by a process, and those whose cause
/// the platform does not report (everywhere but Linux), are passed on.
fn passes_on(cause: Cause, cmd_shares_group: impl FnOnce() -> bool) -> bool {
    !(cause == Cause::Kernel && cmd_shares_group())
}

/// Releases the lock; a failure is reported but does not change CMD's status (the flock ends
/// with the descriptor all the same, so the file left behind is stale and will be reclaimed).
fn release(lock: impl HeldLock) {
    if let Err(err) = lock.release() {
        eprintln!("scope-lock: warning: {}", exit::with_causes(&err));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signal_hook::low_level::siginfo::Sent;

    /// A CMD that sleeps until it is signalled, and the pid slot the watcher signals it by.
    type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

    fn sleeper() -> TestResult<(Child, Mutex<Option<u32>>)> {
        let child = Command::new("sleep").arg("600").spawn()?;
        let target = Mutex::new(Some(child.id()));
        Ok((child, target))
    }

    /// A loss before CMD's end, with no grace: CMD gets SIGTERM, and the loss is reported.
    #[test]
    fn a_lost_lock_sends_cmd_sigterm_and_is_reported() -> TestResult {
        use std::os::unix::process::ExitStatusExt as _;
        let (mut child, target) = sleeper()?;
        let (tell, heard) = mpsc::channel();
        tell.send(Watched::Lost)?;
        assert!(tell_cmd_when_lost(
            &heard,
            &target,
            Some("k"),
            Duration::ZERO
        ));
        let status = child.wait()?;
        assert_eq!(status.signal(), Some(SIGTERM), "{status:?}");
        Ok(())
    }

    /// CMD that ends within the grace after a loss is not signalled, but the loss still counts;
    /// CMD that ends before any loss is neither.
    #[test]
    fn cmd_that_ends_first_is_not_signalled() -> TestResult {
        let (mut child, target) = sleeper()?;
        let (tell, heard) = mpsc::channel();
        tell.send(Watched::Lost)?;
        tell.send(Watched::CmdEnded)?;
        assert!(tell_cmd_when_lost(
            &heard,
            &target,
            Some("k"),
            Duration::from_secs(600)
        ));
        let (tell, heard) = mpsc::channel();
        tell.send(Watched::CmdEnded)?;
        tell.send(Watched::Lost)?;
        assert!(!tell_cmd_when_lost(
            &heard,
            &target,
            Some("k"),
            Duration::ZERO
        ));
        // Neither call signalled it: it is still running.
        assert!(child.try_wait()?.is_none());
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    #[test]
    fn a_signal_from_the_terminal_is_passed_on_only_to_a_cmd_outside_our_group() {
        assert!(!passes_on(Cause::Kernel, || true));
        assert!(passes_on(Cause::Kernel, || false));
    }

    #[test]
    fn a_signal_from_a_process_is_passed_on_without_asking_for_the_group() {
        for cause in [
            Cause::Sent(Sent::User),
            Cause::Sent(Sent::Queue),
            Cause::Unknown,
        ] {
            assert!(
                passes_on(cause, || panic!("asked for the group of {cause:?}")),
                "{cause:?}"
            );
        }
    }
}
