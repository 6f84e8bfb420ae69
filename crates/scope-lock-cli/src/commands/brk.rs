//! `scope-lock break`: the supported way out when a holder is stuck.
//!
//! Without `--kill` it only shows the holder. With `--kill` it makes sure the pid in the lock
//! still belongs to the process that took the lock (see [`process::identity`]), sends SIGTERM,
//! then SIGKILL if the lock is still held after the grace period (checking the pid again
//! first), and waits, for at most the grace period again, until the lock is free. Freeing the
//! lock is left to the holder's death: the flock ends with it, and the next scan reclaims the
//! file. Nothing here removes a lock file itself.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use scope_lock::{LiveLock, LockManager};

use crate::cli::BreakArgs;
use crate::exit::{self, Failure};
use crate::output;
use crate::process::{self, Identity};

/// How often to look again whether the lock is free.
const POLL: Duration = Duration::from_millis(100);

pub(crate) fn brk(manager: &LockManager, args: &BreakArgs) -> Result<u8, Failure> {
    let running_dir = manager.running_dir();
    let path = manager.lock_path(&scope_lock::LockRequest::new(&args.name));
    let listing = manager.list_locks()?;
    if listing.reclaimed().iter().any(|p| p == &path) {
        println!("{}: its holder was gone; reclaimed", path.display());
        return Ok(exit::SUCCESS);
    }
    let Some(lock) = listing.locks().iter().find(|l| l.path() == path) else {
        if let Some(problem) = listing.problems().iter().find(|p| p.path() == path) {
            return Err(Failure::new(
                exit::FAILURE,
                format!("{problem}; no holder to stop"),
            ));
        }
        return Err(Failure::new(
            exit::FAILURE,
            format!(
                "no live lock named `{}` in {}",
                args.name,
                running_dir.display()
            ),
        ));
    };
    let record = lock.record();
    println!(
        "{}: {}, liveness {}, scope {}",
        path.display(),
        output::describe_holder(lock.stem(), record),
        output::liveness_name(lock.liveness()),
        record.scope().join(" "),
    );
    if !args.kill {
        println!(
            "to stop it: scope-lock break {} --kill (SIGTERM to pid {}, SIGKILL after {}s)",
            args.name,
            record.pid(),
            args.grace
        );
        return Ok(exit::SUCCESS);
    }
    let grace = Duration::from_secs(args.grace);
    for signal in [process::libc_like::SIGTERM, process::libc_like::SIGKILL] {
        ensure_holder(lock)?;
        process::send_signal(record.pid(), signal).map_err(|err| {
            Failure::new(
                exit::FAILURE,
                format!("cannot signal pid {}: {err}", record.pid()),
            )
        })?;
        let name = if signal == process::libc_like::SIGTERM {
            "SIGTERM"
        } else {
            "SIGKILL"
        };
        println!("sent {name} to pid {}", record.pid());
        if wait_until_free(manager, lock, grace)? {
            println!("{}: free", path.display());
            return Ok(exit::SUCCESS);
        }
    }
    Err(Failure::new(
        exit::FAILURE,
        format!(
            "{} is still held {}s after SIGKILL to pid {}",
            path.display(),
            args.grace,
            record.pid()
        ),
    ))
}

/// Refuses unless the lock's pid is still the process that took it.
fn ensure_holder(lock: &LiveLock) -> Result<(), Failure> {
    let record = lock.record();
    let pid = record.pid();
    let refuse = |why: String| {
        Failure::new(
            exit::FAILURE,
            format!("refusing to signal pid {pid}: {why}"),
        )
    };
    match process::identity(pid, record.started_at()).map_err(refuse)? {
        Identity::Holder => Ok(()),
        Identity::Recycled { process_start } => Err(refuse(format!(
            "it started at {process_start}, after the lock was taken ({}), so it is not the \
             holder (the pid was reused)",
            record.started_at()
        ))),
        Identity::Gone => Err(refuse(format!(
            "no such process, yet {} is still held (by a process that inherited the lock from \
             it?)",
            lock.path().display()
        ))),
    }
}

/// Polls until no live lock at `lock`'s path has `lock`'s record, for at most `limit`.
fn wait_until_free(
    manager: &LockManager,
    lock: &LiveLock,
    limit: Duration,
) -> Result<bool, Failure> {
    let deadline = Instant::now() + limit;
    loop {
        if !still_held(manager, lock.path(), lock)? {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        thread::sleep(POLL.min(deadline - now));
    }
}

fn still_held(manager: &LockManager, path: &Path, lock: &LiveLock) -> Result<bool, Failure> {
    let listing = manager.list_locks()?;
    Ok(listing
        .locks()
        .iter()
        .any(|l| l.path() == path && l.record() == lock.record()))
}
