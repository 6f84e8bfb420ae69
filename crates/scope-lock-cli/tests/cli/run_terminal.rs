//! `scope-lock run` in a terminal: each SIGINT reaches CMD once.
//!
//! `setsid --ctty` (util-linux) starts `scope-lock` as the leader of a new session whose
//! controlling terminal is a pseudo-terminal the test opened; `scope-lock` and CMD are then
//! that terminal's foreground process group, as in an interactive shell. The test types Ctrl-C
//! by writing 0x03 to the terminal's master side, and the terminal driver signals the group.
//!
//! CMD is a shell that prints `int` for every SIGINT it handles and, on SIGTERM, prints `term`
//! and exits. A shell merges two SIGINTs that arrive before it runs the trap (so does the
//! kernel while one is pending), so a SIGINT passed on twice shows only when the second comes
//! after CMD handled the first, as when `scope-lock` is slow to run. The Ctrl-C test makes that
//! schedule certain: `scope-lock` is stopped (SIGSTOP) while Ctrl-C is typed, so its SIGINT
//! stays pending until CMD has printed `int`, and is continued (SIGCONT) after.
//!
//! SIGTERM sent to `scope-lock` (which passes it on) is the fence that ends each test:
//! `scope-lock` passes signals on from one thread, a pending SIGINT before a pending SIGTERM,
//! and the kernel delivers the lower-numbered of two pending signals first, so a SIGINT passed
//! on reaches CMD before the fence. Every line CMD printed after `ready` is read up to the end
//! of its output and compared whole.

#![cfg(target_os = "linux")]

use crate::support;

use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

use crate::support::{BOUND, Holder, Sandbox, TestResult};
use rustix::fs::{Mode, OFlags};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use rustix::pty::OpenptFlags;

/// CMD: prints a line per SIGINT, exits 0 on SIGTERM. It waits by reading the terminal; a
/// signal ends one `read`, and the bound on the reads ends CMD if the terminal goes away.
const COUNTING_CMD: &str = "trap 'echo int' INT\n\
    trap 'echo term; exit 0' TERM\n\
    echo ready $$\n\
    n=0\n\
    while [ $n -lt 100 ]; do read x; n=$((n + 1)); done\n\
    exit 3\n";

/// A pseudo-terminal's master side (the keyboard) and its slave side (what `scope-lock` gets
/// as stdin and controlling terminal).
fn open_terminal() -> Result<(OwnedFd, OwnedFd), Box<dyn std::error::Error>> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let name = rustix::pty::ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok((master, slave))
}

/// `scope-lock run --name tty --scope docs -- CMD...` as the leader of a session on a new
/// terminal; returns once CMD said it is ready (its traps are set), with the master side.
fn run_in_terminal(
    sandbox: &Sandbox,
    cmd: &[&str],
) -> Result<(Holder, OwnedFd), Box<dyn std::error::Error>> {
    let (master, slave) = open_terminal()?;
    let mut command = Command::new("setsid");
    command
        .arg("--ctty")
        .arg(env!("CARGO_BIN_EXE_scope-lock"))
        .args(["run", "--name", "tty", "--scope", "docs", "--"])
        .args(cmd)
        .current_dir(sandbox.path())
        .env_remove("SCOPE_LOCK_LOOPS_DIR");
    let mut holder = support::spawn_with_stdin(command, Stdio::from(slave))?;
    match holder.next_line(BOUND) {
        Some(line) if line.starts_with("ready ") => {}
        other => {
            let status = holder.wait(BOUND);
            return Err(format!(
                "CMD did not start: {other:?}, {status:?}, {}",
                holder.stderr()
            )
            .into());
        }
    }
    // `setsid` ran `scope-lock` itself (no fork): the pid the test signals leads the session.
    let pid = Pid::from_raw(holder.pid() as i32).ok_or("no pid")?;
    assert_eq!(
        rustix::process::getsid(Some(pid))?,
        pid,
        "scope-lock does not lead its session"
    );
    Ok((holder, master))
}

/// Waits for CMD to print `int` (it handled a SIGINT), sends the fence (SIGTERM to
/// `scope-lock`) and returns every line CMD printed after `ready`, with `scope-lock`'s exit
/// code. `before_fence` runs between the two.
fn lines_through_the_fence(
    holder: &mut Holder,
    before_fence: impl FnOnce(&Holder) -> TestResult,
) -> Result<(Vec<String>, Option<i32>), Box<dyn std::error::Error>> {
    let mut lines: Vec<String> = holder.next_line(BOUND).into_iter().collect();
    before_fence(holder)?;
    holder.signal(Signal::TERM)?;
    while let Some(line) = holder.next_line(BOUND) {
        lines.push(line);
    }
    let status = holder.wait(BOUND).ok_or("scope-lock did not exit")?;
    Ok((lines, status.code()))
}

/// What CMD prints when a SIGINT reached it once: its line, then the fence's.
fn one_sigint() -> Vec<String> {
    vec!["int".to_owned(), "term".to_owned()]
}

/// Types Ctrl-C on the terminal whose master side is `master`.
fn type_ctrl_c(master: &OwnedFd) -> TestResult {
    assert_eq!(rustix::io::write(master, &[0x03])?, 1);
    Ok(())
}

/// Stops `scope-lock` and returns once it is stopped (or has exited).
fn stop(holder: &Holder) -> TestResult {
    holder.signal(Signal::STOP)?;
    let pid = Pid::from_raw(holder.pid() as i32).ok_or("no pid")?;
    let options = WaitIdOptions::STOPPED | WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
    // Bounded: SIGSTOP cannot be caught or ignored, so the process stops or is already gone.
    let status = loop {
        match rustix::process::waitid(WaitId::Pid(pid), options) {
            Err(rustix::io::Errno::INTR) => {}
            other => break other?.ok_or("waitid reported nothing")?,
        }
    };
    assert!(status.stopped(), "scope-lock exited instead of stopping");
    Ok(())
}

#[test]
fn ctrl_c_in_a_terminal_reaches_cmd_once() -> TestResult {
    let sandbox = Sandbox::new()?;
    let (mut holder, master) = run_in_terminal(&sandbox, &["sh", "-c", COUNTING_CMD])?;
    stop(&holder)?;
    type_ctrl_c(&master)?;
    // Once CMD has handled the terminal's SIGINT, scope-lock gets to handle its own.
    let resume = |holder: &Holder| holder.signal(Signal::CONT).map_err(Into::into);
    let (lines, code) = lines_through_the_fence(&mut holder, resume)?;
    assert_eq!(lines, one_sigint(), "{}", holder.stderr());
    assert_eq!(code, Some(0));
    assert!(!sandbox.running().join("tty.lock").exists());
    drop(master);
    Ok(())
}

#[test]
fn sigint_sent_to_scope_lock_in_a_terminal_reaches_cmd_once() -> TestResult {
    let sandbox = Sandbox::new()?;
    let (mut holder, master) = run_in_terminal(&sandbox, &["sh", "-c", COUNTING_CMD])?;
    holder.signal(Signal::INT)?;
    let (lines, code) = lines_through_the_fence(&mut holder, |_| Ok(()))?;
    assert_eq!(lines, one_sigint(), "{}", holder.stderr());
    assert_eq!(code, Some(0));
    drop(master);
    Ok(())
}

#[test]
fn ctrl_c_reaches_a_cmd_that_left_the_process_group_through_scope_lock() -> TestResult {
    let sandbox = Sandbox::new()?;
    // CMD starts a session of its own: the terminal's Ctrl-C reaches only scope-lock.
    let (mut holder, master) = run_in_terminal(&sandbox, &["setsid", "sh", "-c", COUNTING_CMD])?;
    type_ctrl_c(&master)?;
    let (lines, code) = lines_through_the_fence(&mut holder, |_| Ok(()))?;
    assert_eq!(lines, one_sigint(), "{}", holder.stderr());
    assert_eq!(code, Some(0));
    drop(master);
    Ok(())
}
