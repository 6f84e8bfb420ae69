//! `attempt`: one try on `go`, held until told to release; as another user with `--as-uid`.

use std::io::{self, BufRead};

use regression::args::Args;
use regression::locker::{Attempt, Impl, Locker};
use scope_lock::{LockManager, LockRequest};

use crate::{ready_then_go, say, which};

/// One acquire on `go`, held until the line `release` or until stdin closes.
pub(crate) fn attempt(args: &Args) -> Result<(), String> {
    if let Ok(uid) = args.get("as-uid") {
        become_user(uid)?;
    }
    let which = which(args)?;
    let loops_dir = args.path("loops-dir")?;
    let name = args.get("name")?;
    let scope = vec![args.get("scope")?.to_owned()];
    let mut stdin = io::stdin().lock();
    let mut line = String::new();
    ready_then_go(&mut stdin, &mut line)?;

    // The fix's full request (instance ids, singletons) goes straight to the library; the port
    // only knows names and scopes.
    let outcome = if which == Impl::Fixed {
        let mut request = LockRequest::new(name)
            .scope(scope)
            .singleton(args.flag("singleton"));
        if let Ok(instance) = args.get("instance") {
            request = request.instance_id(instance);
        }
        match LockManager::new(&loops_dir).try_acquire(&request) {
            Ok(guard) => Attempt::Held(regression::locker::Held::Fixed(guard)),
            Err(scope_lock::AcquireError::Conflict(conflict)) => {
                say(&format!("conflict {conflict}"))?;
                Attempt::Conflict
            }
            Err(err) => Attempt::Failed(err.to_string()),
        }
    } else {
        match Locker::new(which, &loops_dir).try_acquire(name, &scope) {
            Attempt::Conflict => {
                say("conflict")?;
                Attempt::Conflict
            }
            other => other,
        }
    };
    let held = match outcome {
        Attempt::Held(held) => {
            say(&format!("held {}", held.path().display()))?;
            Some(held)
        }
        Attempt::Conflict => None,
        Attempt::Failed(message) => {
            say(&format!("failed {message}"))?;
            None
        }
    };
    // Until `release` or the end of the input. A line, not the end, leaves the input open for
    // a pause point in the release to be resumed (`scope_lock::PAUSE_AT_VAR`).
    loop {
        line.clear();
        let read = stdin
            .read_line(&mut line)
            .map_err(|err| format!("stdin: {err}"))?;
        if read == 0 || line.trim_end() == "release" {
            break;
        }
    }
    if let Some(held) = held {
        match Locker::new(which, &loops_dir).release(held) {
            Ok(()) => say("released")?,
            Err(failure) => say(&format!("release-failed {failure}"))?,
        }
    }
    Ok(())
}

#[allow(unsafe_code)]
fn become_user(uid: &str) -> Result<(), String> {
    let uid: libc::uid_t = uid.parse().map_err(|err| format!("--as-uid: {err}"))?;
    // SAFETY: plain system calls on this single-threaded process; group first, then user.
    let failed = unsafe { libc::setgid(uid) != 0 || libc::setuid(uid) != 0 };
    if failed {
        return Err(format!("setuid({uid}): {}", io::Error::last_os_error()));
    }
    Ok(())
}
