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
    /// (`attempt`, `wait`, `hold-sentinel`), and waits for its `ready`.
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
    /// (`scope_lock::PAUSE_STEPS`): it says `paused <step>` there and waits to be killed.
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
    ) -> io::Result<Self> {
        let mut command = Command::new(worker);
        command
            .arg("attempt")
            .args(["--impl", Impl::Fixed.name(), "--loops-dir"])
            .arg(loops_dir)
            .args(["--name", name, "--scope", scope])
            .env(scope_lock::PAUSE_AT_VAR, step);
        Self::spawn_from(command)
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
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("already released"))?;
        stdin.write_all(b"go\n")?;
        stdin.flush()?;
        self.next_line()
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
