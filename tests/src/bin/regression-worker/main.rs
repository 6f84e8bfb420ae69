//! The regression suite's worker: one process of a multi-process scenario.
//!
//! ```text
//! regression-worker cycle --impl I --loops-dir D --name N --scope S --cycles C --deadline-ms M
//!                         --worker K --witness LOG [--probe] [--shared --readers R
//!                         --together-dir T]
//! regression-worker scan  --running-dir R --stop-file F --max-scans K --deadline-ms M
//! regression-worker attempt --impl I --loops-dir D --name N --scope S [--instance ID]
//!                         [--singleton] [--as-uid U]
//! regression-worker churn --loops-dir D --name N --scope S --cycles C --deadline-ms M
//! regression-worker fork-release --impl I --loops-dir D --scope S
//! regression-worker wait --impl I --loops-dir D --name N --scope S --timeout-ms T
//!                         [--port poll|queue] [--witness LOG --worker K] [--barrier-dir B
//!                         --barrier-count C] [--release-at-once]
//! regression-worker list --loops-dir D
//! regression-worker turns ... (see `regression::turns`)
//! regression-worker hold-sentinel --running-dir R
//! regression-worker probe PATH
//! regression-worker repro --impl I [--soak] [--witness-copy PATH]
//! ```
//!
//! `cycle` and `scan` say `ready`, wait for stdin to close (the start barrier), run within
//! their bounds, and print a JSON summary as their last line. A `cycle --shared` worker is a
//! reader: its first hold lasts until all `--readers` readers hold at once (each says so with a
//! file in `--together-dir`), which only shared locks allow. `attempt` says `ready`, waits for
//! one line (`go`), tries once and says `held <path>`, `conflict <why>` or `failed <why>`, then
//! holds until the line `release` or until stdin closes, releases and says `released` or
//! `release-failed <why>`. With `SCOPE_LOCK_PAUSE_AT` set, it says `paused <step>` at that step
//! and goes on after the next line (`resume`). `churn`
//! acquires and releases in a loop, saying each step, until killed or out of bounds. `repro`
//! runs a whole fleet and prints its JSON report. `wait` says `ready`, waits for `go`, then
//! acquires waiting at most `--timeout-ms`: it says `waiting <ticket>` when it starts waiting,
//! then `held <path>`, `timeout <why>`, `gave-up <why>` (the pre-fix port's loser) or
//! `failed <why>`; a holder releases at once or when stdin closes and says `released`. With
//! `--impl pre-fix` it waits like the port `--port` names (see `regression::pre_fix_wait`).
//! `list` says `ready`, waits for `go`, lists the locks as `list_locks` does (cleaning what is
//! stale) and says `lock <path>`, `reclaimed <path>` and `problem <what>` for each, then
//! `listed` (or `failed <why>`). `hold-sentinel` takes the directory sentinel's flock, says
//! `holding`, and keeps it until stdin closes.
//!
//! The larger commands have a module each: [`fleet`] (`cycle` and `scan`), [`mod@attempt`],
//! [`mod@wait`], [`fork`] (`fork-release`); the small ones are below.

mod attempt;
mod fleet;
mod fork;
mod wait;

use std::fs;
use std::io::{self, BufRead, Read};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use regression::args::{self, Args, print_line as say};
use regression::fleet::{FleetParams, run_fleet};
use regression::locker::Impl;
use regression::probe::probe;
use scope_lock::{LockManager, LockRequest};

use attempt::attempt;
use fleet::{cycle, scan};
use fork::fork_release;
use wait::wait;

fn main() -> ExitCode {
    let (command, parser) = args::command();
    // Each command names the options it takes: anything else is refused, never ignored.
    let result = match command.as_str() {
        "cycle" => Args::parse(
            parser,
            &[
                "impl",
                "loops-dir",
                "name",
                "scope",
                "cycles",
                "deadline-ms",
                "worker",
                "witness",
                "readers",
                "together-dir",
            ],
            &["probe", "shared"],
        )
        .and_then(|args| cycle(&args)),
        "scan" => Args::parse(
            parser,
            &["running-dir", "stop-file", "max-scans", "deadline-ms"],
            &[],
        )
        .and_then(|args| scan(&args)),
        "attempt" => Args::parse(
            parser,
            &["impl", "loops-dir", "name", "scope", "instance", "as-uid"],
            &["singleton"],
        )
        .and_then(|args| attempt(&args)),
        "churn" => Args::parse(
            parser,
            &["loops-dir", "name", "scope", "cycles", "deadline-ms"],
            &[],
        )
        .and_then(|args| churn(&args)),
        "fork-release" => Args::parse(parser, &["impl", "loops-dir", "scope"], &[])
            .and_then(|args| fork_release(&args)),
        "wait" => Args::parse(
            parser,
            &[
                "impl",
                "loops-dir",
                "name",
                "scope",
                "timeout-ms",
                "port",
                "witness",
                "worker",
                "barrier-dir",
                "barrier-count",
            ],
            &["release-at-once"],
        )
        .and_then(|args| wait(&args)),
        "list" => Args::parse(parser, &["loops-dir"], &[]).and_then(|args| list(&args)),
        "turns" => Args::parse(parser, regression::turns::OPTIONS, &[])
            .and_then(|args| regression::turns::run(&args)),
        "hold-sentinel" => {
            Args::parse(parser, &["running-dir"], &[]).and_then(|args| hold_sentinel(&args))
        }
        "probe" => Args::parse(parser, &[], &[]).and_then(|args| probe_once(&args)),
        "repro" => {
            Args::parse(parser, &["impl", "witness-copy"], &["soak"]).and_then(|args| repro(&args))
        }
        other => Err(args::unknown_command(other)),
    };
    args::exit_status("regression-worker", &command, result)
}

fn which(args: &Args) -> Result<Impl, String> {
    args.get("impl")?.parse()
}

/// The start barrier of a worker told when to go: `ready`, then the parent's line (into `line`).
fn ready_then_go(stdin: &mut io::StdinLock<'_>, line: &mut String) -> Result<(), String> {
    say("ready")?;
    stdin
        .read_line(line)
        .map(drop)
        .map_err(|err| format!("stdin: {err}"))
}

/// The start barrier: `ready`, then wait for the parent to close our stdin.
fn ready_then_wait_for_start() -> Result<(), String> {
    say("ready")?;
    let mut sink = Vec::new();
    io::stdin()
        .read_to_end(&mut sink)
        .map_err(|err| format!("stdin: {err}"))?;
    Ok(())
}

/// Acquire and release the fix's lock in a loop, saying each step, so that a parent can kill
/// this process at arbitrary points of the protocol.
fn churn(args: &Args) -> Result<(), String> {
    let locks = LockManager::new(args.path("loops-dir")?);
    let request = LockRequest::new(args.get("name")?).scope([args.get("scope")?]);
    let cycles = args.number("cycles")?;
    let deadline = Duration::from_millis(args.number("deadline-ms")?);
    let started = Instant::now();
    for cycle in 0..cycles {
        if started.elapsed() > deadline {
            break;
        }
        match locks.try_acquire(&request) {
            Ok(guard) => {
                say(&format!("acquired {cycle}"))?;
                guard.release().map_err(|err| err.to_string())?;
                say(&format!("released {cycle}"))?;
            }
            Err(err) => say(&format!("not-acquired {cycle} {err}"))?,
        }
    }
    Ok(())
}

/// One cleaning listing (`list_locks`) on `go`, said line by line.
fn list(args: &Args) -> Result<(), String> {
    let locks = LockManager::new(args.path("loops-dir")?);
    ready_then_go(&mut io::stdin().lock(), &mut String::new())?;
    match locks.list_locks() {
        Ok(listing) => {
            for lock in listing.locks() {
                say(&format!("lock {}", lock.path().display()))?;
            }
            for path in listing.reclaimed() {
                say(&format!("reclaimed {}", path.display()))?;
            }
            for problem in listing.problems() {
                say(&format!("problem {problem}"))?;
            }
            say("listed")
        }
        Err(err) => say(&format!("failed {err}")),
    }
}

/// Takes the directory sentinel's flock as a process stuck inside an acquire would hold it.
#[allow(
    clippy::disallowed_methods,
    reason = "stands in for another process holding the sentinel, outside the library"
)]
fn hold_sentinel(args: &Args) -> Result<(), String> {
    let running_dir = args.path("running-dir")?;
    fs::create_dir_all(&running_dir).map_err(|err| err.to_string())?;
    say("ready")?;
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(running_dir.join(".acquire.lock"))
        .map_err(|err| err.to_string())?;
    file.lock().map_err(|err| err.to_string())?;
    say("holding")?;
    let mut sink = Vec::new();
    io::stdin()
        .read_to_end(&mut sink)
        .map_err(|err| format!("stdin: {err}"))?;
    drop(file);
    Ok(())
}

fn probe_once(args: &Args) -> Result<(), String> {
    let path = args.positional().first().ok_or("probe needs a path")?;
    let found = probe(Path::new(path)).map_err(|err| format!("{path}: {err}"))?;
    say(found.name())
}

/// The report's steps to reproduce, scaled up: prints the fleet's JSON report.
fn repro(args: &Args) -> Result<(), String> {
    let mut params = FleetParams::standard(which(args)?, args.flag("soak"));
    params.witness_copy = args.path("witness-copy").ok();
    let exe = std::env::current_exe().map_err(|err| format!("current_exe: {err}"))?;
    let report = run_fleet(&exe, &params)?;
    say(&report.to_json().to_string())
}
