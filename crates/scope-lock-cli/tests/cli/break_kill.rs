//! `scope-lock break --kill` signals the processes that provably hold the lock, and nothing a
//! lock file merely names: not a forged pid, not a pid of another pid namespace.

#![cfg(target_os = "linux")]

use crate::support;

use std::fs;
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};

use crate::support::{BOUND, Sandbox, TestResult, original_record};

/// A pidfd of `pid`: it tells when that process, and no other, has exited.
fn pidfd(pid: u32) -> Result<OwnedFd, Box<dyn std::error::Error>> {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid)?).ok_or("pid 0")?;
    Ok(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)
}

/// Whether the process behind `pidfd` has exited (without waiting for it).
fn has_exited(pidfd: &OwnedFd) -> Result<bool, Box<dyn std::error::Error>> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    Ok(poll(&mut fds, Some(&now))? > 0)
}

/// A bystander `sleep`, killed and reaped when dropped.
struct Bystander(Child);

impl Bystander {
    fn start() -> std::io::Result<Self> {
        Command::new("sleep")
            .arg("300")
            .stdin(Stdio::null())
            .spawn()
            .map(Self)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Fails the test unless the bystander is still alive after `break` printed `out`.
    fn assert_spared(&mut self, out: &support::Output) {
        assert!(
            matches!(self.0.try_wait(), Ok(None)),
            "break signalled pid {}, which the forged record names:\n{}{}",
            self.pid(),
            out.stdout,
            out.stderr
        );
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes a forged record to `.running/NAME.lock`: the pid of `victim`, a `started_at` long
/// after it started (so a start-time check takes it for the holder); in our format (with the
/// `liveness` marker) if `ours`, else in the original's.
fn forge(sandbox: &Sandbox, name: &str, victim: &Bystander, ours: bool) -> TestResult {
    fs::create_dir_all(sandbox.running())?;
    let mut record = original_record(
        name,
        "/srv/build",
        victim.pid(),
        "2099-01-01T00:00:00.000000+00:00",
    );
    if ours {
        record.pop();
        record.push_str(r#", "liveness": "flock"}"#);
    }
    fs::write(sandbox.running().join(format!("{name}.lock")), record)?;
    Ok(())
}

#[test]
fn break_kill_ends_a_cmd_that_ignores_sigterm_before_it_says_free() -> TestResult {
    let sandbox = Sandbox::new()?;
    let mut holder = sandbox.hold_with("deaf", &["--scope", "docs"], "trap '' TERM")?;
    let cmd = pidfd(holder.cmd_pid.ok_or("CMD did not say its pid")?)?;
    let out = sandbox.run(&["break", "deaf", "--kill", "--grace", "1"])?;
    assert_eq!(out.code(), 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains(&format!("sent SIGTERM to pid {}", holder.pid()))
            && out.stdout.contains("sent SIGKILL")
            && out.stdout.contains(": free"),
        "{}",
        out.stdout
    );
    assert!(
        has_exited(&cmd)?,
        "break said free while CMD, which ignores SIGTERM, runs on:\n{}",
        out.stdout
    );
    let status = holder.wait(BOUND).ok_or("scope-lock did not exit")?;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert_eq!(sandbox.run(&["check", "--scope", "docs"])?.code(), 0);
    Ok(())
}

#[test]
fn break_kill_spares_the_pid_a_forged_record_names_and_stops_the_real_holder() -> TestResult {
    let sandbox = Sandbox::new()?;
    let mut victim = Bystander::start()?;
    forge(&sandbox, "build", &victim, true)?;
    // A third process holds the forged file's flock, as flock(1) holds a file for its command.
    let mut flock = Command::new("flock");
    flock
        .arg("-x")
        .arg(sandbox.running().join("build.lock"))
        .args(["sh", "-c", "echo locked; read x"]);
    let mut flocker = support::spawn(flock)?;
    assert_eq!(flocker.next_line(BOUND).as_deref(), Some("locked"));
    let out = sandbox.run(&["break", "build", "--kill", "--grace", "1"])?;
    victim.assert_spared(&out);
    assert_eq!(out.code(), 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains(&format!("sent SIGTERM to pid {}", flocker.pid()))
            && !out.stdout.contains(&format!("pid {} ", victim.pid()))
            && out.stdout.contains(": free"),
        "{}",
        out.stdout
    );
    assert!(flocker.wait(BOUND).is_some_and(|s| !s.success()));
    Ok(())
}

#[test]
fn break_kill_finds_no_holder_it_may_signal_and_says_what_to_do() -> TestResult {
    let sandbox = Sandbox::new()?;
    let mut victim = Bystander::start()?;
    forge(&sandbox, "build", &victim, false)?;
    // The holder is this test process: `break`'s parent, which it must never signal.
    let file = fs::File::open(sandbox.running().join("build.lock"))?;
    #[allow(clippy::disallowed_methods)] // the test holds the lock as a third party would
    file.lock()?;
    let shown = sandbox.run(&["break", "build"])?;
    let out = sandbox.run(&["break", "build", "--kill", "--grace", "1"])?;
    victim.assert_spared(&out);
    let me = std::process::id();
    // The name `break` shows for a process is its kernel command name.
    let my_name = fs::read_to_string("/proc/self/comm")?;
    let my_name = my_name.trim_end();
    for run in [&shown, &out] {
        assert!(
            run.stdout.contains(&format!("held by pid {me} ({my_name}"))
                && run.stdout.contains("an ancestor of this process")
                && !run.stdout.contains("to stop it:")
                && !run.stdout.contains("sent SIG"),
            "{}",
            run.stdout
        );
    }
    assert_eq!(shown.code(), 0, "{}", shown.stderr);
    assert_eq!(out.code(), 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("no holder of")
            && out.stderr.contains("that may be signalled")
            && out
                .stderr
                .contains("To free it, stop its holder where it runs"),
        "{}",
        out.stderr
    );
    Ok(())
}

#[test]
fn break_neither_offers_nor_sends_a_signal_to_a_holder_in_another_pid_namespace() -> TestResult {
    if !support::hostile::available(
        "break_neither_offers_nor_sends_a_signal_to_a_holder_in_another_pid_namespace",
    ) {
        return Ok(());
    }
    let sandbox = Sandbox::new()?;
    // `sh` is pid 1 of the new namespace and scope-lock pid 2, which its record says; on the
    // host, pid 2 is another process (kthreadd).
    let script = format!(
        "'{}' run --name inner --scope docs -- sh -c 'echo ready; read x'; true",
        env!("CARGO_BIN_EXE_scope-lock")
    );
    let mut command = support::hostile::in_new_pid_namespace("sh", &["-c", &script]);
    command
        .current_dir(sandbox.path())
        .env_remove("SCOPE_LOCK_LOOPS_DIR");
    let mut inner = support::spawn(command)?;
    assert_eq!(inner.next_line(BOUND).as_deref(), Some("ready"));
    let record = fs::read_to_string(sandbox.running().join("inner.lock"))?;
    assert!(record.contains(r#""pid": 2,"#), "{record}");

    let shown = sandbox.run(&["break", "inner"])?;
    assert_eq!(shown.code(), 0, "{}", shown.stderr);
    assert!(
        !shown.stdout.contains("to stop it:") && shown.stdout.contains("another pid namespace"),
        "break offers to signal a pid of another namespace:\n{}",
        shown.stdout
    );
    let out = sandbox.run(&["break", "inner", "--kill", "--grace", "1"])?;
    assert_eq!(out.code(), 1, "{}", out.stdout);
    assert!(!out.stdout.contains("sent SIG"), "{}", out.stdout);
    assert!(
        out.stderr.contains("that may be signalled"),
        "{}",
        out.stderr
    );
    assert!(
        inner.is_running(),
        "the holder in the namespace was stopped"
    );
    assert_eq!(sandbox.run(&["check", "--scope", "docs"])?.code(), 75);
    assert_eq!(inner.finish().and_then(|s| s.code()), Some(0));
    Ok(())
}
