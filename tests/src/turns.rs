//! `regression-worker turns`: one process of a group that takes turns on one scope, each turn
//! ended by the test, so that a test can make the holder release while others already wait.
//!
//! ```text
//! regression-worker turns --loops-dir D --name N --scope S --worker K --witness LOG
//!                         --holds H --timeout-ms T
//! ```
//!
//! It says `ready` and waits for the line `go`. Then, `--holds` times: a waiting acquire,
//! which says `waiting <ticket>` when it starts to wait; once it holds, `enter` in the witness
//! log and `held <hold>`; then it waits for the line `release`, writes `exit` and releases, and
//! at once asks again. After the last hold it says `done`. A wait that runs out says `timeout
//! <why>` and ends the process.

use std::io::{self, BufRead as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use scope_lock::{AcquireError, LockManager, LockRequest, WaitObserver, Waiting};

use crate::args::Args;
use crate::witness::Witness;

/// The options `turns` takes (see the header).
pub const OPTIONS: &[&str] = &[
    "loops-dir",
    "name",
    "scope",
    "worker",
    "witness",
    "holds",
    "timeout-ms",
];

/// Runs `turns` (see the header).
///
/// # Errors
///
/// A bad option, a failed acquire or release, a witness log or stdio that cannot be used.
pub fn run(args: &Args) -> Result<(), String> {
    let locks = LockManager::new(args.path("loops-dir")?);
    let request = LockRequest::new(args.get("name")?).scope([args.get("scope")?]);
    let worker = u32::try_from(args.number("worker")?).map_err(|err| err.to_string())?;
    let mut witness =
        Witness::open(&args.path("witness")?, worker).map_err(|err| format!("witness: {err}"))?;
    let holds = args.number("holds")?;
    let timeout = Duration::from_millis(args.number("timeout-ms")?);
    let mut stdin = io::stdin().lock();
    say("ready")?;
    expect_line(&mut stdin, "go")?;
    for hold in 0..holds {
        let mut observer = SayWhenWaiting(Ok(()));
        let result = locks.acquire_with(&request, Instant::now() + timeout, &mut observer);
        observer.0?;
        let guard = match result {
            Ok(guard) => guard,
            Err(err @ AcquireError::Timeout(_)) => return say(&format!("timeout {err}")),
            Err(err) => return Err(err.to_string()),
        };
        witness
            .enter(hold, Some(guard.token()))
            .map_err(|err| format!("witness: {err}"))?;
        say(&format!("held {hold}"))?;
        expect_line(&mut stdin, "release")?;
        witness
            .exit(hold)
            .map_err(|err| format!("witness: {err}"))?;
        guard.release().map_err(|err| err.to_string())?;
    }
    say("done")
}

/// Says `waiting <ticket>` on stdout when a wait starts, and asks to hear nothing more: the
/// waiter wakes only for what the library's watch tells it, so a missed event shows as a
/// timeout. The result is the saying's.
pub struct SayWhenWaiting(pub Result<(), String>);

impl WaitObserver for SayWhenWaiting {
    fn waiting(&mut self, wait: &Waiting<'_>) {
        let ticket = wait.ticket().map_or("none".to_owned(), |t| t.to_string());
        self.0 = say(&format!("waiting {ticket}"));
    }

    fn interval(&self) -> Option<Duration> {
        None
    }
}

fn say(line: &str) -> Result<(), String> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|err| format!("stdout: {err}"))
}

fn expect_line(stdin: &mut io::StdinLock<'_>, wanted: &str) -> Result<(), String> {
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .map_err(|err| format!("stdin: {err}"))?;
    if line.trim_end() == wanted {
        Ok(())
    } else {
        Err(format!("expected {wanted:?} on stdin, got {line:?}"))
    }
}

/// Spawns a `turns` worker for the test (it has said `ready`).
///
/// # Errors
///
/// As [`AttemptProcess::spawn_command`](crate::attempt::AttemptProcess::spawn_command).
pub fn spawn(
    worker_exe: &Path,
    loops_dir: &Path,
    scope: &str,
    (worker, holds): (u32, u64),
    witness: &Path,
) -> io::Result<crate::attempt::AttemptProcess> {
    let name = format!("turns-{worker}");
    let (worker, holds) = (worker.to_string(), holds.to_string());
    let args: [&std::ffi::OsStr; 14] = [
        "--loops-dir".as_ref(),
        loops_dir.as_os_str(),
        "--name".as_ref(),
        name.as_ref(),
        "--scope".as_ref(),
        scope.as_ref(),
        "--worker".as_ref(),
        worker.as_ref(),
        "--witness".as_ref(),
        witness.as_os_str(),
        "--holds".as_ref(),
        holds.as_ref(),
        "--timeout-ms".as_ref(),
        "60000".as_ref(),
    ];
    crate::attempt::AttemptProcess::spawn_command(worker_exe, "turns", args)
}
