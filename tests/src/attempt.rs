//! A single lock holder in another process (`regression-worker attempt`), driven line by line
//! from a test: spawn (it says `ready`), `go` (it tries once and says what happened), then
//! `release` (it releases and exits) or `kill` (SIGKILL). Every read is bounded in time, and a
//! process still running when its handle is dropped is killed and reaped.

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use crate::locker::Impl;

/// How long any one line may take to arrive before the test fails.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `attempt` worker.
pub struct AttemptProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    reaped: bool,
}

impl AttemptProcess {
    /// Spawns `worker attempt --impl which --loops-dir .. --name .. --scope .. <extra>` and
    /// waits for its `ready`.
    ///
    /// # Errors
    ///
    /// A spawn failure, or no `ready` within [`LINE_TIMEOUT`].
    pub fn spawn<I, S>(
        worker: &Path,
        which: Impl,
        loops_dir: &Path,
        name: &str,
        scope: &str,
        extra: I,
    ) -> io::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut args: Vec<OsString> = vec!["--impl".into(), which.name().into()];
        args.extend(["--loops-dir".into(), loops_dir.as_os_str().to_owned()]);
        args.extend(["--name", name, "--scope", scope].map(OsString::from));
        args.extend(extra.into_iter().map(|arg| arg.as_ref().to_owned()));
        Self::spawn_command(worker, "attempt", args)
    }

    /// Spawns `worker <command> <args>`, a command that speaks this module's line protocol
    /// (`attempt`, `wait`, `list`, `hold-sentinel`), and waits for its `ready`.
    ///
    /// # Errors
    ///
    /// A spawn failure, or no `ready` within [`LINE_TIMEOUT`].
    pub fn spawn_command<I, S>(worker: &Path, command: &str, args: I) -> io::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command_line = Command::new(worker);
        command_line.arg(command).args(args);
        Self::spawn_from(command_line)
    }

    /// Spawns `worker attempt` for the fix that stops at the library's pause point `step`
    /// (`scope_lock::PAUSE_STEPS`): it says `paused <step>` there and waits, to be killed
    /// ([`kill`](Self::kill)) or resumed ([`resume`](Self::resume)). A release started with
    /// [`start_release`](Self::start_release) closed the input, so only a kill ends its pause;
    /// one started with [`release_on_line`](Self::release_on_line) can be resumed. `extra`
    /// are further worker arguments (`--instance ID`).
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn).
    pub fn spawn_paused(
        worker: &Path,
        loops_dir: &Path,
        name: &str,
        scope: &str,
        step: &str,
        extra: &[&str],
    ) -> io::Result<Self> {
        let mut command = Command::new(worker);
        command
            .arg("attempt")
            .args(["--impl", Impl::Fixed.name(), "--loops-dir"])
            .arg(loops_dir)
            .args(["--name", name, "--scope", scope])
            .args(extra)
            .env(scope_lock::PAUSE_AT_VAR, step);
        Self::spawn_from(command)
    }

    /// Spawns `worker <command> <args>` as [`spawn_command`](Self::spawn_command) does, to stop
    /// at the library's pause point `step` as [`spawn_paused`](Self::spawn_paused) does.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn).
    pub fn spawn_command_paused<I, S>(
        worker: &Path,
        command: &str,
        args: I,
        step: &str,
    ) -> io::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command_line = Command::new(worker);
        command_line
            .arg(command)
            .args(args)
            .env(scope_lock::PAUSE_AT_VAR, step);
        Self::spawn_from(command_line)
    }

    fn spawn_from(mut command: Command) -> io::Result<Self> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut process = Self {
            child,
            stdin,
            lines,
            reaped: false,
        };
        let first = process.next_line()?;
        if first != "ready" {
            return Err(io::Error::other(format!("expected ready, got {first:?}")));
        }
        Ok(process)
    }

    /// The worker's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Tells it to try; returns what it said (`held <path>`, `conflict ...`, `failed ...`).
    ///
    /// # Errors
    ///
    /// A closed pipe, or no answer within [`LINE_TIMEOUT`].
    pub fn go(&mut self) -> io::Result<String> {
        self.say("go")
    }

    /// Tells it to release (closes its input) and returns the next thing it says, keeping the
    /// process: for a worker that pauses during its release.
    ///
    /// # Errors
    ///
    /// No answer within [`LINE_TIMEOUT`].
    pub fn start_release(&mut self) -> io::Result<String> {
        drop(self.stdin.take());
        self.next_line()
    }

    /// Tells it to release with the line `release`, keeping its input open, and returns the
    /// next thing it says: for a worker paused during its release that the test resumes.
    ///
    /// # Errors
    ///
    /// A closed pipe, or no answer within [`LINE_TIMEOUT`].
    pub fn release_on_line(&mut self) -> io::Result<String> {
        self.say("release")
    }

    /// Resumes a worker that said `paused <step>` and returns the next thing it says. Write
    /// nothing else to it between reading `paused` and this: the pause reads the input itself.
    ///
    /// # Errors
    ///
    /// A closed pipe, or no answer within [`LINE_TIMEOUT`].
    pub fn resume(&mut self) -> io::Result<String> {
        self.say("resume")
    }

    fn say(&mut self, line: &str) -> io::Result<String> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("its input is closed"))?;
        stdin.write_all(format!("{line}\n").as_bytes())?;
        stdin.flush()?;
        self.next_line()
    }

    /// Tells it to release and exit; returns its last line (`released`,
    /// `release-failed ...`, or empty when it held nothing).
    ///
    /// # Errors
    ///
    /// A failure to wait for it, or an unsuccessful exit.
    pub fn release(mut self) -> io::Result<String> {
        drop(self.stdin.take());
        let mut last = String::new();
        while let Ok(line) = self.lines.recv_timeout(LINE_TIMEOUT) {
            last = line;
        }
        let status = self.child.wait()?;
        self.reaped = true;
        if status.success() {
            Ok(last)
        } else {
            Err(io::Error::other(format!(
                "attempt worker exited with {status}"
            )))
        }
    }

    /// SIGKILLs it and reaps it.
    ///
    /// # Errors
    ///
    /// A failure to kill or wait.
    pub fn kill(mut self) -> io::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        self.reaped = true;
        Ok(())
    }

    /// The next line it says.
    ///
    /// # Errors
    ///
    /// No line within [`LINE_TIMEOUT`] (or it exited).
    pub fn next_line(&mut self) -> io::Result<String> {
        self.lines
            .recv_timeout(LINE_TIMEOUT)
            .map_err(|_| io::Error::other("the worker said nothing in time (or exited)"))
    }
}

impl Drop for AttemptProcess {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
