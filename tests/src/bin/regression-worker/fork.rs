//! `fork-release`: what a forked child does to the lock its parent holds.

use std::io;

use regression::args::Args;
use regression::locker::{Attempt, Locker};
use regression::probe::{Probe, probe};
use serde_json::json;

use crate::{say, which};

/// Acquire, fork, let the child release (or drop) what it inherited and exit, then report
/// whether the parent's lock survived: `{"exists": bool, "held": bool}`.
pub(crate) fn fork_release(args: &Args) -> Result<(), String> {
    let which = which(args)?;
    let loops_dir = args.path("loops-dir")?;
    let locker = Locker::new(which, &loops_dir);
    let scope = vec![args.get("scope")?.to_owned()];
    let Attempt::Held(held) = locker.try_acquire("forked", &scope) else {
        return Err("could not acquire before forking".into());
    };
    let path = held.path().to_owned();
    let child = fork()?;
    if child == 0 {
        // The child: release what it inherited, as a careless program would, and leave
        // without running the parent's destructors or flushing its buffers.
        let code = i32::from(locker.release(held).is_err());
        exit_now(code);
    }
    wait_for(child)?;
    let probed = probe(&path).map_err(|err| err.to_string())?;
    let report = json!({
        "exists": probed != Probe::Missing,
        "held": probed == Probe::Held,
        "probe": probed.name(),
    });
    // The parent's own release: whatever the child did, this must not fail either.
    let _ = locker.release(held);
    say(&report.to_string())
}

#[allow(unsafe_code)]
fn fork() -> Result<libc::pid_t, String> {
    // SAFETY: this process is single-threaded here (the worker never starts threads before
    // this point), so the child may go on running ordinary Rust code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        Err(format!("fork: {}", io::Error::last_os_error()))
    } else {
        Ok(pid)
    }
}

#[allow(unsafe_code)]
fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` ends the process immediately; nothing is unwound or flushed.
    unsafe { libc::_exit(code) }
}

#[allow(unsafe_code)]
fn wait_for(pid: libc::pid_t) -> Result<(), String> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer; `pid` is our child.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        if waited == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(format!("waitpid: {err}"));
        }
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        Err(format!("the forked child failed (status {status})"))
    }
}
