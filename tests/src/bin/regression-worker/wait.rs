//! `wait`: one waiting acquire on `go`, by the fix's watch or like a pre-fix port.

use std::io::{self, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use regression::args::Args;
use regression::locker::Impl;
use regression::pre_fix_wait;
use regression::turns::SayWhenWaiting;
use regression::witness::Witness;
use scope_lock::{AcquireError, LockManager, LockRequest, ScopeGuard};

use crate::{ready_then_go, say, which};

/// One waiting acquire on `go`; see the header of `main.rs`.
pub(crate) fn wait(args: &Args) -> Result<(), String> {
    let which = which(args)?;
    let locks = LockManager::new(args.path("loops-dir")?);
    let request = LockRequest::new(args.get("name")?).scope([args.get("scope")?]);
    let timeout = Duration::from_millis(args.number("timeout-ms")?);
    let mut witness = match args.get("witness") {
        Ok(path) => {
            let worker = u32::try_from(args.number("worker")?).map_err(|err| err.to_string())?;
            Some(Witness::open(Path::new(path), worker).map_err(|err| format!("witness: {err}"))?)
        }
        Err(_) => None,
    };
    let mut stdin = io::stdin().lock();
    let mut line = String::new();
    ready_then_go(&mut stdin, &mut line)?;

    let deadline = Instant::now() + timeout;
    let outcome = match which {
        Impl::Fixed => {
            let mut observer = SayWhenWaiting(Ok(()));
            let result = locks.acquire_with(&request, deadline, &mut observer);
            observer.0?;
            result.map_err(|err| match err {
                AcquireError::Timeout(_) => format!("timeout {err}"),
                _ => format!("failed {err}"),
            })
        }
        Impl::PreFix => wait_like_the_port(args, &locks, &request, deadline)?,
    };
    let guard = match outcome {
        Ok(guard) => guard,
        Err(line) => return say(&line),
    };
    say(&format!("held {}", guard.path().display()))?;
    if let Some(witness) = &mut witness {
        witness
            .enter(0, Some(guard.token()))
            .map_err(|err| err.to_string())?;
        witness.exit(0).map_err(|err| err.to_string())?;
    }
    if !args.flag("release-at-once") {
        let mut sink = Vec::new();
        stdin
            .read_to_end(&mut sink)
            .map_err(|err| format!("stdin: {err}"))?;
    }
    guard.release().map_err(|err| err.to_string())?;
    say("released")
}

/// The pre-fix ports' waiting: `Ok(Err(line))` is an outcome to say, not a failure.
fn wait_like_the_port(
    args: &Args,
    locks: &LockManager,
    request: &LockRequest,
    deadline: Instant,
) -> Result<Result<ScopeGuard, String>, String> {
    let mut told = Ok(());
    let mut on_wait = || told = say("waiting port");
    let outcome = match args.get("port")? {
        "poll" => {
            if !pre_fix_wait::wait_for_scope(locks, request, deadline, &mut on_wait)? {
                Err("timeout the scope never came free".to_owned())
            } else {
                // Every waiter woke in the same poll tick: let them all see "free" first.
                let barrier = args.path("barrier-dir")?;
                let count = usize::try_from(args.number("barrier-count")?)
                    .map_err(|err| err.to_string())?;
                let me = args.number("worker")?;
                let patience = Duration::from_secs(60);
                pre_fix_wait::file_barrier(&barrier, "free", me, count, patience)?;
                let result = locks.try_acquire(request);
                pre_fix_wait::file_barrier(&barrier, "tried", me, count, patience)?;
                result.map_err(|err| format!("gave-up {err}"))
            }
        }
        "queue" => {
            let queue = pre_fix_wait::PortQueue::new(locks.running_dir());
            match pre_fix_wait::queue_then_acquire(locks, request, &queue, deadline, &mut on_wait)?
            {
                Some(guard) => Ok(guard),
                None => Err("timeout still queued behind an earlier entry".to_owned()),
            }
        }
        other => return Err(format!("--port {other:?}: poll or queue")),
    };
    told?;
    Ok(outcome)
}
