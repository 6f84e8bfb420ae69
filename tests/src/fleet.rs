//! Many worker processes at once: spawned, held at a start barrier, released together, bounded
//! in cycles and time, and always reaped.
//!
//! The barrier is each worker's stdin: a worker says `ready` on stdout, then reads stdin to
//! end-of-file; the parent closes every stdin only once all have said `ready`. Scanners stop
//! when the parent creates a stop file (after the cycling workers are done), or at their own
//! bounds. No sleeps order anything.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::locker::Impl;
use crate::witness;

/// The shape of a fleet run.
#[derive(Debug, Clone)]
pub struct FleetParams {
    /// The implementation under test.
    pub which: Impl,
    /// Processes acquiring and releasing the same scope under the same loop name.
    pub workers: u32,
    /// How many of the workers are readers (shared locks, each under its own instance name,
    /// first holds all at once; see the worker's `cycle --shared`). With none, every worker
    /// is a writer under the one loop name, as in the bug report.
    pub readers: u32,
    /// Holds per worker (each retried on conflict until it holds, within the deadline).
    pub cycles_per_worker: u64,
    /// Processes reading every lock file, without any lock, as fast as they can.
    pub scanners: u32,
    /// Scans per scanner at most.
    pub max_scans: u64,
    /// Whether each holder probes its lock file's flock through a fresh open while it holds.
    pub probe: bool,
    /// Each process stops by itself after this long. A safety stop for a run that hangs, not
    /// a race: the cycle count bounds the work, and a fleet that stops here is incomplete
    /// (the tests fail it), so this must leave room for a machine busy with other builds.
    pub deadline: Duration,
    /// Where to keep a copy of the witness log (`cargo xtask repro` draws it).
    pub witness_copy: Option<PathBuf>,
}

impl FleetParams {
    /// The default for CI: 8 workers x 2,500 hold cycles (20,000 holds), 2 scanners; with
    /// `soak`, ten times the cycles and scans. A quiet 2-core machine runs it in about 30 s;
    /// with five builds beside it, 20,000 holds once took longer than 90 s, so the stop is at
    /// ten minutes.
    pub fn standard(which: Impl, soak: bool) -> Self {
        let scale = if soak { 10 } else { 1 };
        Self {
            which,
            workers: 8,
            readers: 0,
            cycles_per_worker: 2_500 * scale,
            scanners: 2,
            max_scans: 2_000_000 * scale,
            probe: true,
            deadline: Duration::from_secs(600 * scale),
            witness_copy: None,
        }
    }
}

/// What a fleet run saw, summed over its processes: one flat record, which the worker's
/// `repro` prints and `cargo xtask repro` reads, and which the fleet tests take their evidence
/// from (`to_json`, `evidence`).
pub use xtask_contract::FleetSummary as FleetReport;

/// The loop name every cycling worker uses: the same loop started many times, as in the
/// report's steps to reproduce.
pub const LOOP_NAME: &str = "bug-423";

/// Runs a fleet of `worker_exe` processes in a fresh temporary directory.
///
/// # Errors
///
/// A process that could not be spawned, never said `ready`, printed no summary, exited
/// unsuccessfully or outlived its deadline (it is killed and reaped), or a malformed witness
/// log.
pub fn run_fleet(worker_exe: &Path, params: &FleetParams) -> Result<FleetReport, String> {
    let dir = tempfile::tempdir().map_err(|err| format!("tempdir: {err}"))?;
    let loops_dir = dir.path().join(".loops");
    let scope = dir.path().join("project");
    fs::create_dir_all(&scope).map_err(|err| format!("{}: {err}", scope.display()))?;
    let witness_log = dir.path().join("witness.log");
    let stop_file = dir.path().join("stop");
    let together_dir = dir.path().join("together");
    fs::create_dir_all(&together_dir)
        .map_err(|err| format!("{}: {err}", together_dir.display()))?;
    let deadline_ms = params.deadline.as_millis().to_string();

    let mut workers = Group::default();
    for worker in 0..params.workers {
        let mut command = Command::new(worker_exe);
        command
            .arg("cycle")
            .args(["--impl", params.which.name()])
            .arg("--loops-dir")
            .arg(&loops_dir)
            .arg("--scope")
            .arg(&scope)
            .args(["--cycles", &params.cycles_per_worker.to_string()])
            .args(["--deadline-ms", &deadline_ms])
            .args(["--worker", &worker.to_string()])
            .arg("--witness")
            .arg(&witness_log);
        if params.probe {
            command.arg("--probe");
        }
        if params.readers == 0 {
            command.args(["--name", LOOP_NAME]);
        } else {
            // Readers hold together, so each needs its own lock file; writers get their own
            // too, so that only the scope rules keep them apart.
            command.args(["--name", &format!("{LOOP_NAME}-{worker}")]);
        }
        if worker < params.readers {
            command
                .arg("--shared")
                .args(["--readers", &params.readers.to_string()])
                .arg("--together-dir")
                .arg(&together_dir);
        }
        workers.spawn(command)?;
    }
    let mut scanners = Group::default();
    for _ in 0..params.scanners {
        let mut command = Command::new(worker_exe);
        command
            .arg("scan")
            .arg("--running-dir")
            .arg(loops_dir.join(".running"))
            .arg("--stop-file")
            .arg(&stop_file)
            .args(["--max-scans", &params.max_scans.to_string()])
            .args(["--deadline-ms", &deadline_ms]);
        scanners.spawn(command)?;
    }
    workers.await_ready()?;
    scanners.await_ready()?;

    // The barrier: everyone is ready; let them all go at once.
    let started = Instant::now();
    scanners.release();
    workers.release();
    let grace = params.deadline + Duration::from_secs(30);
    let worker_summaries = workers.collect(grace)?;
    let elapsed = started.elapsed();
    fs::write(&stop_file, b"stop").map_err(|err| format!("{}: {err}", stop_file.display()))?;
    let scanner_summaries = scanners.collect(grace)?;

    let sum = |summaries: &[Value], key: &str| -> u64 {
        summaries
            .iter()
            .filter_map(|summary| summary.get(key)?.as_u64())
            .sum()
    };
    let first = |summaries: &[Value], key: &str| {
        summaries
            .iter()
            .find_map(|summary| summary.get(key)?.as_str().map(str::to_owned))
    };
    let (w, s) = (&worker_summaries, &scanner_summaries);
    let log = fs::read_to_string(&witness_log).unwrap_or_default();
    if let Some(copy) = &params.witness_copy {
        fs::write(copy, &log).map_err(|err| format!("{}: {err}", copy.display()))?;
    }
    let witness = witness::check(&log)?;
    Ok(FleetReport {
        implementation: Some(params.which.name().to_owned()),
        workers: u64::from(params.workers),
        cycles: sum(w, "cycles"),
        attempts: sum(w, "attempts"),
        holds: sum(w, "holds"),
        conflicts: sum(w, "conflicts"),
        not_found_on_release: sum(w, "not_found_on_release"),
        other_errors: sum(w, "other_errors") + sum(s, "errors"),
        first_error: first(w, "first_error"),
        overlaps: witness.overlaps(),
        overlaps_by_order: witness.overlaps_by_order,
        overlaps_by_time: witness.overlaps_by_time,
        max_holders: witness.max_holders,
        witnessed_holds: witness.holds,
        unmatched_events: witness.unmatched,
        tokened_holds: witness.tokens,
        token_regressions: witness.token_regressions,
        probes: sum(w, "probes"),
        unheld_probes: sum(w, "unheld_probes"),
        scans: sum(s, "scans"),
        reads: sum(s, "reads"),
        partial_reads: sum(s, "partial_reads"),
        first_partial: first(s, "first_partial"),
        elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
    })
}

/// Processes started together, held at the stdin barrier and released at once; any still
/// running when this is dropped are killed and reaped. Each must say `ready`, wait for stdin to
/// close, and print a JSON summary as its last line.
#[derive(Default)]
pub struct Group {
    members: Vec<Member>,
}

struct Member {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<BufReader<ChildStdout>>,
    reaped: bool,
}

impl Group {
    /// Starts `command` with piped stdin and stdout.
    ///
    /// # Errors
    ///
    /// When it cannot be spawned.
    pub fn spawn(&mut self, mut command: Command) -> Result<(), String> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|err| format!("cannot spawn {command:?}: {err}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().map(BufReader::new);
        self.members.push(Member {
            child,
            stdin,
            stdout,
            reaped: false,
        });
        Ok(())
    }

    /// Waits until every member has said `ready`.
    ///
    /// # Errors
    ///
    /// A member that said anything else, or exited first.
    pub fn await_ready(&mut self) -> Result<(), String> {
        for member in &mut self.members {
            let mut line = String::new();
            if let Some(stdout) = member.stdout.as_mut() {
                stdout
                    .read_line(&mut line)
                    .map_err(|err| format!("reading a worker's ready line: {err}"))?;
            }
            if line.trim() != "ready" {
                return Err(format!(
                    "worker {} did not say ready (said {line:?})",
                    member.child.id()
                ));
            }
        }
        Ok(())
    }

    /// The barrier: closes every member's stdin.
    pub fn release(&mut self) {
        for member in &mut self.members {
            drop(member.stdin.take());
        }
    }

    /// Waits for every member to print its summary and exit, up to `limit`.
    ///
    /// # Errors
    ///
    /// A member still running after `limit` (killed on drop), failing, or printing no JSON.
    pub fn collect(&mut self, limit: Duration) -> Result<Vec<Value>, String> {
        let (sender, receiver) = mpsc::channel();
        for (index, member) in self.members.iter_mut().enumerate() {
            let Some(mut stdout) = member.stdout.take() else {
                continue;
            };
            let sender = sender.clone();
            thread::spawn(move || {
                let mut rest = String::new();
                let result = stdout.read_to_string(&mut rest).map(|_| rest);
                let _ = sender.send((index, result));
            });
        }
        drop(sender);
        let deadline = Instant::now() + limit;
        let mut outputs = vec![None; self.members.len()];
        for _ in 0..self.members.len() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(remaining) {
                Ok((index, Ok(output))) => outputs[index] = Some(output),
                Ok((_, Err(err))) => return Err(format!("reading a worker's output: {err}")),
                Err(_) => {
                    return Err(format!(
                        "workers still running after {limit:?}; killed (a hang is a failure)"
                    ));
                }
            }
        }
        let mut summaries = Vec::new();
        for (member, output) in self.members.iter_mut().zip(outputs) {
            let status = member
                .child
                .wait()
                .map_err(|err| format!("waiting for worker {}: {err}", member.child.id()))?;
            member.reaped = true;
            let output = output.unwrap_or_default();
            if !status.success() {
                return Err(format!(
                    "worker {} exited with {status}; output: {output}",
                    member.child.id()
                ));
            }
            let last = output.lines().last().unwrap_or_default();
            summaries.push(
                serde_json::from_str(last).map_err(|err| {
                    format!("worker {} summary {last:?}: {err}", member.child.id())
                })?,
            );
        }
        Ok(summaries)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for member in &mut self.members {
            if !member.reaped {
                let _ = member.child.kill();
                let _ = member.child.wait();
            }
        }
    }
}
