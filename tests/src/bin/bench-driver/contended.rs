//! P4: contended throughput. N processes hammer one scope, each hold doing 1 ms of busy work,
//! against N processes doing the same work under a bare flock mutex on one file.
//!
//! Ours waits in `LockManager::acquire` (served in arrival order, woken by the release). Every
//! process is held at a start barrier (stdin), stops by itself when its time window ends, and
//! is reaped by [`Group`].

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use regression::fleet::Group;
use scope_lock::{LockManager, LockMode, LockRequest};
use serde_json::{Value, json};

use crate::holder::Arena;
use crate::measure::round3;
use crate::{protocol_floor, ring};

/// Which side of the comparison a hammer process is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Ours,
    Mutex,
    /// The fair floor: the turn passed in FIFO order round a ring of FIFOs (see [`ring`]).
    Ring,
    /// The protocol's floor: the fair floor's ring, each turn doing what this protocol's
    /// guarantees need (see [`protocol_floor`]).
    Protocol,
}

impl Side {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Side::Ours => "ours",
            Side::Mutex => "mutex",
            Side::Ring => "ring",
            Side::Protocol => "protocol",
        }
    }

    pub(crate) fn parse(name: &str) -> Result<Self, String> {
        match name {
            "ours" => Ok(Side::Ours),
            "mutex" => Ok(Side::Mutex),
            "ring" => Ok(Side::Ring),
            "protocol" => Ok(Side::Protocol),
            other => Err(format!(
                "--side {other:?}: expected ours, mutex, ring or protocol"
            )),
        }
    }
}

/// Spins for `hold`: the work done while holding.
pub(crate) fn busy(hold: Duration) {
    let started = Instant::now();
    while started.elapsed() < hold {
        std::hint::spin_loop();
    }
}

/// The start barrier: say `ready`, then wait for the parent to close our stdin.
pub(crate) fn ready_then_wait_for_start() -> Result<(), String> {
    println!("ready");
    io::stdout().flush().map_err(|err| err.to_string())?;
    let mut rest = Vec::new();
    io::stdin()
        .read_to_end(&mut rest)
        .map_err(|err| format!("waiting for the start: {err}"))?;
    Ok(())
}

/// The bare baseline's one file, `<root>/mutex`, opened (created) for flocking.
pub(crate) fn open_mutex(root: &Path) -> Result<File, String> {
    let path = root.join("mutex");
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|err| format!("{}: {err}", path.display()))
}

/// `bench-driver hammer --side S --root R --worker K --processes N --hold-us H --window-ms W`.
#[allow(
    clippy::disallowed_methods,
    reason = "the flock mutex is the bare baseline, not the library"
)]
pub(crate) fn hammer(
    side: Side,
    root: &Path,
    (worker, processes): (u64, u64),
    hold: Duration,
    window: Duration,
    shared: bool,
) -> Result<(), String> {
    let mut member = match side {
        Side::Ring => Some(ring::Member::join(root, worker, processes)?),
        _ => None,
    };
    let mut floor_member = match side {
        Side::Protocol => Some(protocol_floor::Member::join(root, worker, processes)?),
        _ => None,
    };
    ready_then_wait_for_start()?;
    let started = Instant::now();
    let mut holds = 0u64;
    match side {
        Side::Ours => {
            let locks = LockManager::new(root.join(".loops"));
            let scope = root.join("project").to_string_lossy().into_owned();
            let request = LockRequest::new(format!("hammer-{worker}"))
                .scope([scope])
                .with_mode(mode(shared));
            // Waiting may outlast the window by one turn of every other process.
            let timeout = window + Duration::from_secs(60);
            while started.elapsed() < window {
                let guard = locks
                    .acquire(&request, timeout)
                    .map_err(|err| err.to_string())?;
                busy(hold);
                guard.release().map_err(|err| err.to_string())?;
                holds += 1;
            }
        }
        Side::Mutex => {
            let file = open_mutex(root)?;
            while started.elapsed() < window {
                lock_mutex(&file, shared)?;
                busy(hold);
                file.unlock().map_err(|err| err.to_string())?;
                holds += 1;
            }
        }
        Side::Ring => {
            let member = member.as_mut().ok_or("no ring")?;
            // The first process whose window is over stops the whole ring: each passes the
            // stop on once and ends.
            while member.take_turn()? {
                busy(hold);
                holds += 1;
                if started.elapsed() >= window {
                    break;
                }
                member.pass(false)?;
            }
            member.pass(true)?;
        }
        Side::Protocol => {
            let member = floor_member.as_mut().ok_or("no protocol floor")?;
            // As the ring's: the first process whose window is over stops them all.
            while member.acquire()? {
                busy(hold);
                holds += 1;
                if started.elapsed() >= window {
                    break;
                }
                member.release(true)?;
            }
            member.stop()?;
        }
    }
    let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    println!("{}", json!({"holds": holds, "elapsed_us": elapsed_us}));
    Ok(())
}

/// A reader's mode, or a writer's.
pub(crate) fn mode(shared: bool) -> LockMode {
    if shared {
        LockMode::Shared
    } else {
        LockMode::Exclusive
    }
}

/// Takes the bare baseline's flock, shared (a reader's) or exclusive.
#[allow(
    clippy::disallowed_methods,
    reason = "the flock mutex is the bare baseline, not the library"
)]
pub(crate) fn lock_mutex(file: &File, shared: bool) -> Result<(), String> {
    if shared {
        file.lock_shared()
    } else {
        file.lock()
    }
    .map_err(|err| err.to_string())
}

/// Shape of the P4 run.
pub(crate) struct Params {
    pub(crate) processes: Vec<u64>,
    pub(crate) rounds: usize,
    pub(crate) hold: Duration,
    pub(crate) window: Duration,
}

/// Every side of P4 and P3, in the order of their first round.
pub(crate) const SIDES: [Side; 4] = [Side::Ours, Side::Mutex, Side::Ring, Side::Protocol];

/// Runs P4 and returns its JSON rows.
pub(crate) fn run(exe: &Path, work: &Path, params: &Params) -> Result<Vec<Value>, String> {
    let arena = Arena::new(work, "p4")?;
    let project = arena.root.join("project");
    std::fs::create_dir_all(&project)
        .map_err(|err| format!("creating {}: {err}", project.display()))?;
    let mut rows = Vec::new();
    for &processes in &params.processes {
        let mut rates = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        for round in 0..params.rounds {
            for k in 0..SIDES.len() {
                let which = (k + round) % SIDES.len();
                let rate = one_round(exe, &arena.root, SIDES[which], processes, 0, params)?;
                rates[which].push(rate);
            }
        }
        let [ours, mutex, ring, protocol] = rates.map(rate_stats);
        let best = |side: &Value| side["best_per_s"].as_f64().unwrap_or(0.0);
        eprintln!(
            "  P4 {processes:>2} processes: ours {:.0}/s, protocol floor {:.0}/s, fair floor {:.0}/s, flock mutex {:.0}/s (best of {})",
            best(&ours),
            best(&protocol),
            best(&ring),
            best(&mutex),
            params.rounds
        );
        rows.push(json!({
            "processes": processes,
            "ours": ours,
            "mutex": mutex,
            "ring": ring,
            "protocol": protocol,
        }));
    }
    Ok(rows)
}

/// The readers-and-writers mix: the largest fleet of P4, half of it readers (shared locks;
/// for the mutex, `LOCK_SH`). The fair floor has no readers, so it sits this one out.
pub(crate) fn run_mix(exe: &Path, work: &Path, params: &Params) -> Result<Value, String> {
    let arena = Arena::new(work, "p4-mix")?;
    let project = arena.root.join("project");
    std::fs::create_dir_all(&project)
        .map_err(|err| format!("creating {}: {err}", project.display()))?;
    let processes = params.processes.iter().copied().max().unwrap_or(2);
    let readers = processes / 2;
    let sides = [Side::Ours, Side::Mutex];
    let mut rates = [Vec::new(), Vec::new()];
    for round in 0..params.rounds {
        for k in 0..sides.len() {
            let which = (k + round) % sides.len();
            rates[which].push(one_round(
                exe,
                &arena.root,
                sides[which],
                processes,
                readers,
                params,
            )?);
        }
    }
    let [ours, mutex] = rates.map(rate_stats);
    eprintln!(
        "  P4 {processes:>2} processes, {readers} of them readers: ours {:.0}/s, flock rwlock {:.0}/s (best of {})",
        ours["best_per_s"].as_f64().unwrap_or(0.0),
        mutex["best_per_s"].as_f64().unwrap_or(0.0),
        params.rounds
    );
    Ok(json!({
        "processes": processes,
        "readers": readers,
        "ours": ours,
        "mutex": mutex,
    }))
}

/// One fleet of `processes` hammers, the first `readers` of them readers; returns holds per
/// second.
fn one_round(
    exe: &Path,
    root: &Path,
    side: Side,
    processes: u64,
    readers: u64,
    params: &Params,
) -> Result<f64, String> {
    match side {
        Side::Ring => ring::make(root, processes)?,
        Side::Protocol => protocol_floor::make(root, processes)?,
        Side::Ours | Side::Mutex => {}
    }
    let mut group = Group::default();
    for worker in 0..processes {
        let mut command = Command::new(exe);
        command
            .arg("hammer")
            .args(["--side", side.name()])
            .arg("--root")
            .arg(root)
            .args(["--worker", &worker.to_string()])
            .args(["--processes", &processes.to_string()])
            .args(["--hold-us", &params.hold.as_micros().to_string()])
            .args(["--window-ms", &params.window.as_millis().to_string()]);
        if worker < readers {
            command.arg("--shared");
        }
        group.spawn(command)?;
    }
    group.await_ready()?;
    group.release();
    let summaries = group.collect(params.window + Duration::from_secs(60))?;
    let sum = |key: &str| -> u64 { summaries.iter().filter_map(|s| s[key].as_u64()).sum() };
    let longest = summaries
        .iter()
        .filter_map(|s| s["elapsed_us"].as_u64())
        .max()
        .unwrap_or(0)
        .max(1);
    Ok(sum("holds") as f64 * 1e6 / longest as f64)
}

pub(crate) fn rate_stats(mut rates: Vec<f64>) -> Value {
    rates.sort_by(|a, b| b.total_cmp(a));
    let n = rates.len();
    let median = if n == 0 { 0.0 } else { rates[n / 2] };
    json!({
        "best_per_s": round3(rates.first().copied().unwrap_or(0.0)),
        "median_per_s": round3(median),
        "worst_per_s": round3(rates.last().copied().unwrap_or(0.0)),
        "rounds": n,
    })
}
