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
//! `--impl prefix` it waits like the port `--port` names (see `regression::prefix_wait`).
//! `list` says `ready`, waits for `go`, lists the locks as `list_locks` does (cleaning what is
//! stale) and says `lock <path>`, `reclaimed <path>` and `problem <what>` for each, then
//! `listed` (or `failed <why>`). `hold-sentinel` takes the directory sentinel's flock, says
//! `holding`, and keeps it until stdin closes.

use std::fs;
use std::io::{self, BufRead, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use regression::args::Args;
use regression::fleet::{FleetParams, run_fleet};
use regression::locker::{Attempt, Impl, Locker};
use regression::original_reader;
use regression::prefix_wait;
use regression::probe::{Probe, probe};
use regression::witness::Witness;
use scope_lock::{
    AcquireError, LockManager, LockMode, LockRequest, ScopeGuard, WaitObserver, Waiting,
};
use serde_json::json;

fn main() -> ExitCode {
    let mut parser = lexopt::Parser::from_env();
    let command = match parser.next() {
        Ok(Some(lexopt::Arg::Value(command))) => command.to_string_lossy().into_owned(),
        _ => String::new(),
    };
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
        "hold-sentinel" => {
            Args::parse(parser, &["running-dir"], &[]).and_then(|args| hold_sentinel(&args))
        }
        "probe" => Args::parse(parser, &[], &[]).and_then(|args| probe_once(&args)),
        "repro" => {
            Args::parse(parser, &["impl", "witness-copy"], &["soak"]).and_then(|args| repro(&args))
        }
        other => Err(format!(
            "unknown command {other:?}; see the source's header"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(io::stderr(), "regression-worker {command}: {err}");
            ExitCode::FAILURE
        }
    }
}

fn which(args: &Args) -> Result<Impl, String> {
    args.get("impl")?.parse()
}

fn say(line: &str) -> Result<(), String> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|err| format!("stdout: {err}"))
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

/// `--cycles` times or until `--deadline-ms`: acquire (trying again on conflict), witness,
/// probe, release. A cycle is one hold; the attempts it took are counted too.
fn cycle(args: &Args) -> Result<(), String> {
    let locker = Locker::new(which(args)?, &args.path("loops-dir")?);
    let name = args.get("name")?;
    let scope = vec![args.get("scope")?.to_owned()];
    let cycles = args.number("cycles")?;
    let deadline = Duration::from_millis(args.number("deadline-ms")?);
    let worker = u32::try_from(args.number("worker")?).map_err(|err| err.to_string())?;
    let mut witness = Witness::open(&args.path("witness")?, worker)
        .map_err(|err| format!("witness log: {err}"))?;
    let with_probe = args.flag("probe");
    let (mode, together) = if args.flag("shared") {
        witness = witness.shared();
        let readers = args.number("readers")?;
        (
            LockMode::Shared,
            Some((args.path("together-dir")?, readers)),
        )
    } else {
        (LockMode::Exclusive, None)
    };

    ready_then_wait_for_start()?;
    let started = Instant::now();
    let mut counts = CycleCounts::default();
    'cycles: for cycle in 0..cycles {
        let held = loop {
            if started.elapsed() > deadline {
                break 'cycles;
            }
            counts.attempts += 1;
            match locker.try_acquire_in(name, &scope, mode) {
                Attempt::Held(held) => break held,
                Attempt::Conflict => {
                    counts.conflicts += 1;
                    // Give the holder the processor rather than spinning against it.
                    std::thread::yield_now();
                }
                Attempt::Failed(message) => {
                    counts.error(false, message);
                    continue 'cycles;
                }
            }
        };
        counts.cycles += 1;
        witness.enter(cycle).map_err(|err| err.to_string())?;
        if let (0, Some((dir, readers))) = (cycle, &together) {
            hold_until_all_readers_hold(dir, worker, *readers, started + deadline)?;
        }
        if with_probe {
            counts.probes += 1;
            // Missing counts too: a lock file someone deleted under us holds nothing.
            if probe(held.path()).map_err(|err| err.to_string())? != Probe::Held {
                counts.unheld_probes += 1;
            }
        }
        witness.exit(cycle).map_err(|err| err.to_string())?;
        if let Err(failure) = locker.release(held) {
            counts.error(failure.not_found, failure.to_string());
        }
    }
    say(&json!({
        "cycles": counts.cycles,
        "holds": counts.cycles,
        "attempts": counts.attempts,
        "conflicts": counts.conflicts,
        "not_found_on_release": counts.not_found,
        "other_errors": counts.errors,
        "first_error": counts.first_error,
        "probes": counts.probes,
        "unheld_probes": counts.unheld_probes,
    })
    .to_string())
}

/// Says that reader `worker` holds (a file in `dir`), then waits, holding, until `readers`
/// readers have said so, or fails at `deadline`: if shared locks were exclusive, no second
/// reader could get in while the first one waits here.
fn hold_until_all_readers_hold(
    dir: &Path,
    worker: u32,
    readers: u64,
    deadline: Instant,
) -> Result<(), String> {
    fs::write(dir.join(worker.to_string()), b"").map_err(|err| format!("{dir:?}: {err}"))?;
    loop {
        let holding = fs::read_dir(dir)
            .map_err(|err| format!("{dir:?}: {err}"))?
            .count() as u64;
        if holding >= readers {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "readers never held together: {holding} of {readers} held at once"
            ));
        }
        // Polled: the other readers' files are what ends the wait, and they come within an
        // acquire or two.
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[derive(Default)]
struct CycleCounts {
    cycles: u64,
    attempts: u64,
    conflicts: u64,
    not_found: u64,
    errors: u64,
    first_error: Option<String>,
    probes: u64,
    unheld_probes: u64,
}

impl CycleCounts {
    fn error(&mut self, not_found: bool, message: String) {
        if not_found {
            self.not_found += 1;
        } else {
            self.errors += 1;
        }
        self.first_error.get_or_insert(message);
    }
}

/// Reads every lock file, without any lock, as the original's status tools do, and counts the
/// reads the original's reader would reject.
fn scan(args: &Args) -> Result<(), String> {
    let running_dir = args.path("running-dir")?;
    let stop_file = args.path("stop-file")?;
    let max_scans = args.number("max-scans")?;
    let deadline = Duration::from_millis(args.number("deadline-ms")?);

    ready_then_wait_for_start()?;
    let started = Instant::now();
    let (mut scans, mut reads, mut partial, mut errors) = (0u64, 0u64, 0u64, 0u64);
    let mut first_partial: Option<String> = None;
    while scans < max_scans && started.elapsed() < deadline && !stop_file.exists() {
        scans += 1;
        let Ok(entries) = fs::read_dir(&running_dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !name.ends_with(".lock") {
                continue;
            }
            match fs::read(entry.path()) {
                Ok(bytes) => {
                    reads += 1;
                    if let Err(why) = original_reader::parse(&bytes) {
                        partial += 1;
                        first_partial.get_or_insert_with(|| {
                            format!("{why} in {:?}", String::from_utf8_lossy(&bytes))
                        });
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(_) => errors += 1,
            }
        }
    }
    say(&json!({
        "scans": scans,
        "reads": reads,
        "partial_reads": partial,
        "first_partial": first_partial,
        "errors": errors,
    })
    .to_string())
}

/// One acquire on `go`, held until the line `release` or until stdin closes.
fn attempt(args: &Args) -> Result<(), String> {
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

/// Acquire, fork, let the child release (or drop) what it inherited and exit, then report
/// whether the parent's lock survived: `{"exists": bool, "held": bool}`.
fn fork_release(args: &Args) -> Result<(), String> {
    let which = which(args)?;
    let loops_dir = args.path("loops-dir")?;
    let locker = Locker::new(which, &loops_dir);
    let scope = vec![args.get("scope")?.to_owned()];
    let Attempt::Held(held) = locker.try_acquire("forked", &scope) else {
        return Err("could not acquire before forking".into());
    };
    let path = held.path().to_owned();
    let child = fork()?;
    if child == 0 {
        // The child: release what it inherited, as a careless program would, and leave
        // without running the parent's destructors or flushing its buffers.
        let code = i32::from(locker.release(held).is_err());
        exit_now(code);
    }
    wait_for(child)?;
    let probed = probe(&path).map_err(|err| err.to_string())?;
    let report = json!({
        "exists": probed != Probe::Missing,
        "held": probed == Probe::Held,
        "probe": probed.name(),
    });
    // The parent's own release: whatever the child did, this must not fail either.
    let _ = locker.release(held);
    say(&report.to_string())
}

/// One waiting acquire on `go`; see the header.
fn wait(args: &Args) -> Result<(), String> {
    let which = which(args)?;
    let locks = LockManager::new(args.path("loops-dir")?);
    let request = LockRequest::new(args.get("name")?).scope([args.get("scope")?]);
    let timeout = Duration::from_millis(args.number("timeout-ms")?);
    let mut witness = match args.get("witness") {
        Ok(path) => {
            let worker = u32::try_from(args.number("worker")?).map_err(|err| err.to_string())?;
            Some(Witness::open(Path::new(path), worker).map_err(|err| format!("witness: {err}"))?)
        }
        Err(_) => None,
    };
    let mut stdin = io::stdin().lock();
    let mut line = String::new();
    ready_then_go(&mut stdin, &mut line)?;

    let deadline = Instant::now() + timeout;
    let outcome = match which {
        Impl::Fixed => {
            let mut observer = SayWhenWaiting(Ok(()));
            let result = locks.acquire_with(&request, deadline, &mut observer);
            observer.0?;
            result.map_err(|err| match err {
                AcquireError::Timeout(_) => format!("timeout {err}"),
                _ => format!("failed {err}"),
            })
        }
        Impl::Prefix => wait_like_the_port(args, &locks, &request, deadline)?,
    };
    let guard = match outcome {
        Ok(guard) => guard,
        Err(line) => return say(&line),
    };
    say(&format!("held {}", guard.path().display()))?;
    if let Some(witness) = &mut witness {
        witness.enter(0).map_err(|err| err.to_string())?;
        witness.exit(0).map_err(|err| err.to_string())?;
    }
    if !args.flag("release-at-once") {
        let mut sink = Vec::new();
        stdin
            .read_to_end(&mut sink)
            .map_err(|err| format!("stdin: {err}"))?;
    }
    guard.release().map_err(|err| err.to_string())?;
    say("released")
}

/// Says `waiting <ticket>` once, when the wait starts, and never again: so that the waiter
/// wakes only for what the library's watch tells it, and a missed event shows as a timeout.
struct SayWhenWaiting(Result<(), String>);

impl WaitObserver for SayWhenWaiting {
    fn waiting(&mut self, wait: &Waiting<'_>) {
        let ticket = wait.ticket().map_or("none".to_owned(), |t| t.to_string());
        self.0 = say(&format!("waiting {ticket}"));
    }

    fn interval(&self) -> Option<Duration> {
        None
    }
}

/// The pre-fix ports' waiting: `Ok(Err(line))` is an outcome to say, not a failure.
fn wait_like_the_port(
    args: &Args,
    locks: &LockManager,
    request: &LockRequest,
    deadline: Instant,
) -> Result<Result<ScopeGuard, String>, String> {
    let mut told = Ok(());
    let mut on_wait = || told = say("waiting port");
    let outcome = match args.get("port")? {
        "poll" => {
            if !prefix_wait::wait_for_scope(locks, request, deadline, &mut on_wait)? {
                Err("timeout the scope never came free".to_owned())
            } else {
                // Every waiter woke in the same poll tick: let them all see "free" first.
                let barrier = args.path("barrier-dir")?;
                let count = usize::try_from(args.number("barrier-count")?)
                    .map_err(|err| err.to_string())?;
                let me = args.number("worker")?;
                let patience = Duration::from_secs(60);
                prefix_wait::file_barrier(&barrier, "free", me, count, patience)?;
                let result = locks.try_acquire(request);
                prefix_wait::file_barrier(&barrier, "tried", me, count, patience)?;
                result.map_err(|err| format!("gave-up {err}"))
            }
        }
        "queue" => {
            let queue = prefix_wait::PortQueue::new(locks.running_dir());
            match prefix_wait::queue_then_acquire(locks, request, &queue, deadline, &mut on_wait)? {
                Some(guard) => Ok(guard),
                None => Err("timeout still queued behind an earlier entry".to_owned()),
            }
        }
        other => return Err(format!("--port {other:?}: poll or queue")),
    };
    told?;
    Ok(outcome)
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

#[allow(unsafe_code)]
fn fork() -> Result<libc::pid_t, String> {
    // SAFETY: this process is single-threaded here (the worker never starts threads before
    // this point), so the child may go on running ordinary Rust code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        Err(format!("fork: {}", io::Error::last_os_error()))
    } else {
        Ok(pid)
    }
}

#[allow(unsafe_code)]
fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` ends the process immediately; nothing is unwound or flushed.
    unsafe { libc::_exit(code) }
}

#[allow(unsafe_code)]
fn wait_for(pid: libc::pid_t) -> Result<(), String> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer; `pid` is our child.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        if waited == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(format!("waitpid: {err}"));
        }
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        Err(format!("the forked child failed (status {status})"))
    }
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
