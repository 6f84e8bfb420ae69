//! Processes: waiting for CMD, its status as a shell reports it, signalling a holder, and
//! telling whether a pid still belongs to the process that took a lock.

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

/// Sends signal number `signal` (SIGINT, SIGTERM or SIGKILL) to `pid`.
pub(crate) fn send_signal(pid_raw: u32, signal: i32) -> io::Result<()> {
    let signal = match signal {
        libc_like::SIGINT => Signal::INT,
        libc_like::SIGTERM => Signal::TERM,
        libc_like::SIGKILL => Signal::KILL,
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
    pub(crate) use signal_hook::consts::{SIGINT, SIGKILL, SIGTERM};
}

/// Whether a lock's pid still names the process that took the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    /// The process started before the lock was taken: it is the holder.
    Holder,
    /// The process started after the lock was taken: the pid was reused by someone else.
    Recycled { process_start: jiff::Timestamp },
    /// No process has this pid.
    Gone,
}

/// Compares the start time of process `pid` with the lock's `started_at`.
///
/// A process that took a lock existed before the lock's `started_at`; a process that got the
/// pid after the holder died started after it. Start times come from `/proc/<pid>/stat`
/// (clock ticks since boot), turned into wall-clock time with the current offset between the
/// boot and real-time clocks; they are truncated to a tick, so never later than the truth.
///
/// # Errors
///
/// A message saying why the check is impossible: an unreadable `started_at` or `/proc` entry,
/// or a platform without `/proc` (where the caller must refuse to signal).
#[cfg(target_os = "linux")]
pub(crate) fn identity(pid: u32, started_at: &str) -> Result<Identity, String> {
    let lock_start: jiff::Timestamp = started_at
        .parse()
        .map_err(|err| format!("cannot read the lock's started_at {started_at:?}: {err}"))?;
    let stat_path = format!("/proc/{pid}/stat");
    let stat = match std::fs::read_to_string(&stat_path) {
        Ok(stat) => stat,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Identity::Gone),
        Err(err) => return Err(format!("cannot read {stat_path}: {err}")),
    };
    let ticks = parse_proc_stat_starttime(&stat)
        .ok_or_else(|| format!("cannot find the start time in {stat_path}"))?;
    let per_second = i128::from(rustix::param::clock_ticks_per_second().max(1));
    let since_boot_ns = i128::from(ticks) * 1_000_000_000 / per_second;
    let boot_now = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    let real_now = jiff::Timestamp::now().as_nanosecond();
    let boot_now_ns = i128::from(boot_now.tv_sec) * 1_000_000_000 + i128::from(boot_now.tv_nsec);
    let process_start = jiff::Timestamp::from_nanosecond(real_now - boot_now_ns + since_boot_ns)
        .map_err(|err| format!("the start time of pid {pid} is out of range: {err}"))?;
    if process_start <= lock_start {
        Ok(Identity::Holder)
    } else {
        Ok(Identity::Recycled { process_start })
    }
}

/// Without `/proc` there is no start time to compare: never signal a pid that may be reused.
#[cfg(not(target_os = "linux"))]
pub(crate) fn identity(_pid: u32, _started_at: &str) -> Result<Identity, String> {
    Err(
        "cannot check on this platform whether the pid still belongs to the lock's holder \
         (no /proc/<pid>/stat)"
            .to_owned(),
    )
}

/// Field 22 of `/proc/<pid>/stat` (`starttime`, clock ticks after boot), counted from the last
/// `)` because the command name may contain spaces and parentheses.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_proc_stat_starttime(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards; starttime is field 22.
    after_comm
        .split_ascii_whitespace()
        .nth(22 - 3)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_even_with_a_hostile_name() {
        let fields: Vec<String> = (3..=30).map(|n| n.to_string()).collect();
        let stat = format!("42 (a) b (c) {}", fields.join(" "));
        assert_eq!(parse_proc_stat_starttime(&stat), Some(22));
        assert_eq!(parse_proc_stat_starttime("42 (x) S 1 2"), None);
        assert_eq!(parse_proc_stat_starttime("garbage"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_started_before_now_and_after_the_epoch() -> Result<(), String> {
        let me = std::process::id();
        let now = jiff::Timestamp::now().to_string();
        assert_eq!(identity(me, &now)?, Identity::Holder);
        let before_we_started = "2000-01-01T00:00:00.000000+00:00";
        assert!(matches!(
            identity(me, before_we_started)?,
            Identity::Recycled { .. }
        ));
        // Above the kernel's pid_max: no such process.
        assert_eq!(identity(99_999_999, &now)?, Identity::Gone);
        assert!(identity(me, "not a time").is_err());
        Ok(())
    }

    #[test]
    fn shell_statuses_follow_the_shell_convention() {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(shell_status(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(shell_status(ExitStatus::from_raw(9)), 137);
        assert_eq!(shell_status(ExitStatus::from_raw(15)), 143);
    }
}
