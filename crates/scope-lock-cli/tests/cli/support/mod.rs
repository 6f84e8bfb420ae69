//! Driving the real `scope-lock` binary: a sandbox directory per test, commands run to their
//! end, and holders that run in the background until the test lets them go.
//!
//! Every wait is bounded. Ordering comes from pipes: a holder's CMD prints a line once it runs
//! (the test reads it) and then reads its stdin (the test closes it to let CMD end).

pub(crate) mod hostile;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

pub(crate) type TestResult = Result<(), Box<dyn std::error::Error>>;

/// How long any single step may take before the test fails instead of hanging.
pub(crate) const BOUND: Duration = Duration::from_secs(60);

/// A temporary project directory; `scope-lock` runs there with the default `.loops`.
pub(crate) struct Sandbox {
    dir: tempfile::TempDir,
}

/// What a finished `scope-lock` printed and how it exited.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Output {
    /// The exit code; panics (failing the test) if the process was killed by a signal.
    pub(crate) fn code(&self) -> i32 {
        match self.status.code() {
            Some(code) => code,
            None => panic!("scope-lock was killed: {:?}\n{}", self.status, self.stderr),
        }
    }
}

impl Sandbox {
    pub(crate) fn new() -> std::io::Result<Self> {
        Ok(Self {
            dir: tempfile::tempdir()?,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The `.running/` directory of the default loops directory.
    pub(crate) fn running(&self) -> PathBuf {
        self.path().join(".loops/.running")
    }

    /// `scope-lock ARGS` in the sandbox, with no loops directory or etcd from the environment.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_scope-lock"));
        command
            .args(args)
            .current_dir(self.path())
            .env_remove("SCOPE_LOCK_LOOPS_DIR")
            .env_remove("SCOPE_LOCK_ETCD")
            .env_remove("SCOPE_LOCK_PROJECT")
            .env_remove("SCOPE_LOCK_ROOT")
            .stdin(Stdio::null());
        command
    }

    /// Runs `scope-lock ARGS` to its end (bounded).
    pub(crate) fn run(&self, args: &[&str]) -> Result<Output, Box<dyn std::error::Error>> {
        run_to_end(self.command(args))
    }

    /// Asserts that `run --name NAME --scope SCOPE -- echo ran` runs CMD and exits 0.
    pub(crate) fn assert_runs(&self, name: &str, scope: &str) -> TestResult {
        let out = self.run(&["run", "--name", name, "--scope", scope, "--", "echo", "ran"])?;
        assert_eq!(
            (out.code(), out.stdout.as_str()),
            (0, "ran\n"),
            "{}",
            out.stderr
        );
        Ok(())
    }

    /// Starts `scope-lock run --name NAME [ARGS] -- sh -c 'echo ready $$; read x; SCRIPT'`
    /// and waits until CMD runs (it printed its line) or `scope-lock` exited without running it.
    pub(crate) fn hold(
        &self,
        name: &str,
        args: &[&str],
    ) -> Result<Holder, Box<dyn std::error::Error>> {
        self.hold_with(name, args, "")
    }

    /// As [`hold`](Self::hold), with `setup` run by CMD's shell before it says it is ready
    /// (traps, for example).
    pub(crate) fn hold_with(
        &self,
        name: &str,
        args: &[&str],
        setup: &str,
    ) -> Result<Holder, Box<dyn std::error::Error>> {
        let mut holder = self.spawn_holder(name, args, setup)?;
        match holder.next_line(BOUND) {
            Some(line) if line.starts_with("ready ") => {
                holder.cmd_pid = line["ready ".len()..].trim().parse().ok();
                Ok(holder)
            }
            other => {
                let status = holder.wait(BOUND);
                Err(format!("holder {name} did not start CMD: {other:?}, {status:?}").into())
            }
        }
    }

    /// Starts a holder `run --name NAME ARGS --wait` over a held scope, and returns once it
    /// says it waits (by then its ticket is in the queue), with that line.
    pub(crate) fn waiter(
        &self,
        name: &str,
        args: &[&str],
    ) -> Result<(Holder, String), Box<dyn std::error::Error>> {
        let mut all = args.to_vec();
        all.push("--wait");
        spawn_waiting(self.holder_command(name, &all, ""))
    }

    /// Runs `run ARGS -- sh -c 'echo ran > ran.txt'`, which must exit 75 (the scope is held)
    /// without running CMD; returns what it printed.
    pub(crate) fn run_refused(&self, args: &[&str]) -> Result<Output, Box<dyn std::error::Error>> {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--", "sh", "-c", "echo ran > ran.txt"]);
        let out = self.run(&all)?;
        assert_eq!(out.code(), 75, "{}", out.stderr);
        assert!(
            !self.path().join("ran.txt").exists(),
            "CMD ran although the scope was held"
        );
        Ok(out)
    }

    /// Starts a holder without waiting for its CMD.
    pub(crate) fn spawn_holder(
        &self,
        name: &str,
        args: &[&str],
        setup: &str,
    ) -> Result<Holder, Box<dyn std::error::Error>> {
        spawn(self.holder_command(name, args, setup))
    }

    /// The command line of a holder: `scope-lock run --name NAME ARGS -- sh -c SCRIPT`, where
    /// the script runs `setup`, prints `ready <its pid>` and reads a line from stdin.
    pub(crate) fn holder_command(&self, name: &str, args: &[&str], setup: &str) -> Command {
        let script = format!("{setup}\necho ready $$\nread x\nexit 0\n");
        let mut all = vec!["run", "--name", name];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--", "sh", "-c", &script]);
        self.command(&all)
    }
}

/// Starts `command` with its stdin, stdout and stderr piped to the test.
pub(crate) fn spawn(command: Command) -> Result<Holder, Box<dyn std::error::Error>> {
    spawn_with_stdin(command, Stdio::piped())
}

/// Starts `command`, a `scope-lock run` over a held scope that waits for it, and returns once
/// it says so: its first line on stderr, returned, begins `Blocking: waiting for scope`.
pub(crate) fn spawn_waiting(
    command: Command,
) -> Result<(Holder, String), Box<dyn std::error::Error>> {
    let mut waiter = spawn(command)?;
    let said = waiter
        .next_stderr_line(BOUND)
        .ok_or("the waiter said nothing")?;
    assert!(said.starts_with("Blocking: waiting for scope "), "{said}");
    Ok((waiter, said))
}

/// Starts `command` with stdin `stdin` (kept by the holder if piped) and its stdout and stderr
/// piped to the test.
pub(crate) fn spawn_with_stdin(
    mut command: Command,
    stdin: Stdio,
) -> Result<Holder, Box<dyn std::error::Error>> {
    command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn()?;
    let stdin = child.stdin.take();
    let lines = child.stdout.take().map(read_lines);
    let stderr = child.stderr.take().map(read_lines);
    Ok(Holder {
        child: Some(child),
        stdin,
        lines,
        stderr,
        cmd_pid: None,
    })
}

/// A `scope-lock run` in the background whose CMD waits for its stdin to close.
pub(crate) struct Holder {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Option<Receiver<String>>,
    stderr: Option<Receiver<String>>,
    /// CMD's pid, as it printed it.
    pub(crate) cmd_pid: Option<u32>,
}

impl Holder {
    /// The `scope-lock` process's pid (the pid in its lock record).
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The next line CMD (or scope-lock) printed on stdout; `None` at end of output or after
    /// `limit`.
    pub(crate) fn next_line(&mut self, limit: Duration) -> Option<String> {
        self.lines.as_ref()?.recv_timeout(limit).ok()
    }

    /// Sends `signal` to the `scope-lock` process.
    pub(crate) fn signal(&self, signal: rustix::process::Signal) -> std::io::Result<()> {
        let pid = rustix::process::Pid::from_raw(self.pid() as i32)
            .ok_or_else(|| std::io::Error::other("no pid"))?;
        rustix::process::kill_process(pid, signal).map_err(Into::into)
    }

    /// Closes CMD's stdin (so `read` returns and CMD exits) and waits for `scope-lock`.
    pub(crate) fn finish(&mut self) -> Option<ExitStatus> {
        self.stdin = None;
        self.wait(BOUND)
    }

    /// Waits at most `limit` for `scope-lock` to exit; kills it (and still reaps it) after that.
    pub(crate) fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + limit;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(10));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
    }

    /// The next line written on stderr; `None` at its end or after `limit`.
    pub(crate) fn next_stderr_line(&mut self, limit: Duration) -> Option<String> {
        self.stderr.as_ref()?.recv_timeout(limit).ok()
    }

    /// The rest of what `scope-lock` (and CMD) wrote on stderr, one line each; call after it
    /// exited.
    pub(crate) fn stderr(&mut self) -> String {
        let mut text = String::new();
        while let Some(line) = self.next_stderr_line(BOUND) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    }

    /// Asserts that CMD printed `line` and `scope-lock` then exited 0: a waiter got its scope
    /// and its CMD ran to its end.
    pub(crate) fn assert_ran(&mut self, line: &str) {
        assert_eq!(self.next_line(BOUND).as_deref(), Some(line));
        assert_eq!(self.wait(BOUND).and_then(|s| s.code()), Some(0));
    }

    /// Waits until a holder's CMD (see [`Sandbox::holder_command`]) runs: it says `ready`.
    pub(crate) fn assert_cmd_runs(&mut self, who: &str) -> TestResult {
        let line = self
            .next_line(BOUND)
            .ok_or_else(|| format!("{who} never ran CMD"))?;
        assert!(line.starts_with("ready "), "{who}: {line}");
        Ok(())
    }

    /// Whether `scope-lock` is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // Let CMD end (its stdin closes), then reap scope-lock, killing it if it is stuck.
        self.stdin = None;
        let _ = self.wait(BOUND);
    }
}

fn read_lines(stdout: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn read_all(mut stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    rx
}

/// Asserts that a command's output (its stdout or stderr) says `want`, showing all of it when
/// not.
#[track_caller]
pub(crate) fn assert_says(output: &str, want: &str) {
    assert!(output.contains(want), "expected {want:?} in:\n{output}");
}

/// Runs `command` with piped output until it exits, for at most [`BOUND`].
pub(crate) fn run_to_end(command: Command) -> Result<Output, Box<dyn std::error::Error>> {
    run_to_end_with_stdout(command, Stdio::piped())
}

/// [`run_to_end`] with `stdout` as the command's stdout (its `Output::stdout` is empty unless
/// that is piped).
pub(crate) fn run_to_end_with_stdout(
    mut command: Command,
    stdout: Stdio,
) -> Result<Output, Box<dyn std::error::Error>> {
    command.stdout(stdout).stderr(Stdio::piped());
    let mut child = command.spawn()?;
    let stdout = child.stdout.take().map(read_all);
    let stderr = child.stderr.take().map(read_all);
    let mut holder = Holder {
        child: Some(child),
        stdin: None,
        lines: None,
        stderr: None,
        cmd_pid: None,
    };
    let status = holder
        .wait(BOUND)
        .ok_or("scope-lock did not exit in time")?;
    let collect = |rx: Option<Receiver<String>>| {
        rx.and_then(|rx| rx.recv_timeout(BOUND).ok())
            .unwrap_or_default()
    };
    Ok(Output {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    })
}

/// A record in the original's format (no `liveness` key: alive while its pid is).
pub(crate) fn original_record(loop_name: &str, scope: &str, pid: u32, started_at: &str) -> String {
    format!(
        r#"{{"loop_name": "{loop_name}", "scope": ["{scope}"], "pid": {pid}, "started_at": "{started_at}"}}"#
    )
}

/// A `sleep` that runs until dropped: a live process with a known command line, for a lock of
/// the original's to name.
pub(crate) struct Sleeper(Child);

impl Sleeper {
    pub(crate) fn start() -> std::io::Result<Self> {
        Command::new("sleep")
            .arg("3600")
            .stdin(Stdio::null())
            .spawn()
            .map(Self)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The pid of a process that has exited and been reaped.
pub(crate) fn dead_pid() -> Result<u32, Box<dyn std::error::Error>> {
    let mut child = Command::new("true").spawn()?;
    let pid = child.id();
    child.wait()?;
    Ok(pid)
}

/// Whether process `pid` exists (and is not yet reaped).
pub(crate) fn process_exists(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// Replaces every occurrence of the sandbox path with `[DIR]`, for snapshots.
pub(crate) fn redact_dir(text: &str, dir: &Path) -> String {
    // The sandbox path may be reached through a symlink (macOS /var -> /private/var); the
    // resolved form, which contains the other, goes first.
    let mut text = text.to_owned();
    if let Ok(real) = dir.canonicalize() {
        text = text.replace(&real.display().to_string(), "[DIR]");
    }
    text.replace(&dir.display().to_string(), "[DIR]")
}
