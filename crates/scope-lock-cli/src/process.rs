//! Processes: waiting for CMD, its status as a shell reports it, and passing signals on to it.

use std::io;
use std::process::ExitStatus;

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};

/// `status` as a shell reports it: the exit code, or 128+N when killed by signal N.
pub(crate) fn shell_status(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + (signal & 0x7f)).unwrap_or(255),
        (None, None) => 1,
    }
}

fn pid(raw: u32) -> io::Result<Pid> {
    i32::try_from(raw)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("invalid pid {raw}")))
}

/// Blocks until child `child` has exited, leaving it a zombie so that its pid cannot be reused
/// until `Child::wait` reaps it.
pub(crate) fn wait_exited_without_reaping(child: u32) -> io::Result<()> {
    let pid = pid(child)?;
    loop {
        match rustix::process::waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
            Ok(_) => return Ok(()),
        }
    }
}

/// Sends signal number `signal` (SIGINT or SIGTERM) to `pid`.
pub(crate) fn send_signal(pid_raw: u32, signal: i32) -> io::Result<()> {
    let signal = match signal {
        libc_like::SIGINT => Signal::INT,
        libc_like::SIGTERM => Signal::TERM,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("signal {other} is not one scope-lock sends"),
            ));
        }
    };
    rustix::process::kill_process(pid(pid_raw)?, signal).map_err(io::Error::from)
}

/// Whether process `pid` is in this process's process group (the group a terminal signals
/// when Ctrl-C is typed, if it is the terminal's foreground group).
pub(crate) fn in_our_process_group(pid_raw: u32) -> io::Result<bool> {
    let theirs = rustix::process::getpgid(Some(pid(pid_raw)?))?;
    Ok(theirs == rustix::process::getpgrp())
}

/// Signal numbers, as signal-hook names them.
pub(crate) mod libc_like {
    pub(crate) use signal_hook::consts::{SIGINT, SIGTERM};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_statuses_follow_the_shell_convention() {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(shell_status(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(shell_status(ExitStatus::from_raw(9)), 137);
        assert_eq!(shell_status(ExitStatus::from_raw(15)), 143);
    }
}
