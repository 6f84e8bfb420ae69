//! P3: handoff. W waiters and one holder take turns on one scope, each waiting in
//! `LockManager::acquire`; the handoff is the time from a holder's release to the next process
//! holding the lock. Against the same fleet taking turns on a bare flock mutex (a blocking
//! `flock(LOCK_EX)` on one file).
//!
//! Every process writes `enter` to a shared witness log right after it holds the lock and
//! `exit` right before it releases (`tests/src/witness.rs`: one clock for all processes). A
//! handoff is an `exit` followed by the next `enter` of *another* process: it includes the
//! release, the wake-up and the next acquire. A process that takes the lock again right after
//! releasing it (the mutex allows that; our queue serves waiters in arrival order) is counted
//! as a re-take, not as a handoff.

use std::io;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use regression::fleet::Group;
use regression::witness::Witness;
use scope_lock::{LockManager, LockRequest};
use serde_json::{Value, json};

use crate::contended::{
    SIDES, Side, busy, lock_mutex, mode, open_mutex, ready_then_wait_for_start,
};
use crate::holder::Arena;
use crate::measure::round3;
use crate::{protocol_floor, ring};

/// How long one waiting acquire may take before the run is a failure.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(60);

/// `bench-driver relay --side S --root R --worker K --processes N --holds H --hold-us U --log L`.
#[allow(
    clippy::disallowed_methods,
    reason = "the flock mutex is the bare baseline, not the library"
)]
pub(crate) fn relay(
    side: Side,
    root: &Path,
    (worker, processes): (u32, u32),
    holds: u64,
    hold: Duration,
    log: &Path,
    shared: bool,
) -> Result<(), String> {
    let mut witness =
        Witness::open(log, worker).map_err(|err| format!("{}: {err}", log.display()))?;
    if shared {
        witness = witness.shared();
    }
    let mut member = match side {
        Side::Ring => Some(ring::Member::join(
            root,
            u64::from(worker),
            u64::from(processes),
        )?),
        _ => None,
    };
    let mut floor_member = match side {
        Side::Protocol => Some(protocol_floor::Member::join(
            root,
            u64::from(worker),
            u64::from(processes),
        )?),
        _ => None,
    };
    ready_then_wait_for_start()?;
    let witnessed = |result: io::Result<()>| result.map_err(|err| format!("witness log: {err}"));
    match side {
        Side::Ours => {
            let locks = LockManager::new(root.join(".loops"));
            let scope = root.join("project").to_string_lossy().into_owned();
            let request = LockRequest::new(format!("relay-{worker}"))
                .scope([scope])
                .with_mode(mode(shared));
            for cycle in 0..holds {
                let guard = locks
                    .acquire(&request, ACQUIRE_TIMEOUT)
                    .map_err(|err| err.to_string())?;
                witnessed(witness.enter(cycle, None))?;
                busy(hold);
                witnessed(witness.exit(cycle))?;
                guard.release().map_err(|err| err.to_string())?;
            }
        }
        Side::Mutex => {
            let file = open_mutex(root)?;
            for cycle in 0..holds {
                lock_mutex(&file, shared)?;
                witnessed(witness.enter(cycle, None))?;
                busy(hold);
                witnessed(witness.exit(cycle))?;
                file.unlock().map_err(|err| err.to_string())?;
            }
        }
        Side::Ring => {
            let member = member.as_mut().ok_or("no ring")?;
            // Every member holds as often as the others: the counts end the run, not a token.
            for cycle in 0..holds {
                member.take_turn()?;
                witnessed(witness.enter(cycle, None))?;
                busy(hold);
                witnessed(witness.exit(cycle))?;
                member.pass(false)?;
            }
        }
        Side::Protocol => {
            let member = floor_member.as_mut().ok_or("no protocol floor")?;
            for cycle in 0..holds {
                if !member.acquire()? {
                    return Err("the protocol floor's ring stopped".into());
                }
                witnessed(witness.enter(cycle, None))?;
                busy(hold);
                witnessed(witness.exit(cycle))?;
                // The last hold asks for no more.
                member.release(cycle + 1 < holds)?;
            }
        }
    }
    println!("{}", json!({ "holds": holds }));
    Ok(())
}

/// Shape of the P3 run.
pub(crate) struct Params {
    pub(crate) waiters: Vec<u32>,
    /// Handoffs wanted per fleet (each process holds about this many divided by its size).
    pub(crate) handoffs: u64,
    pub(crate) hold: Duration,
}

/// Runs P3 and returns its JSON rows.
pub(crate) fn run(exe: &Path, work: &Path, params: &Params) -> Result<Vec<Value>, String> {
    let mut rows = Vec::new();
    for &waiters in &params.waiters {
        let mut row = json!({ "waiters": waiters });
        for side in SIDES {
            let (handoffs, retakes) = one_fleet(exe, work, side, waiters + 1, params)?;
            let summary = summarise(handoffs, retakes);
            eprintln!(
                "  P3 {waiters:>2} waiters, {}: handoff p50 {} µs, p99 {} µs, max {} µs ({} handoffs, {} re-takes)",
                side.name(),
                summary["p50_us"],
                summary["p99_us"],
                summary["max_us"],
                summary["handoffs"],
                summary["retakes"]
            );
            row[side.name()] = summary;
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The readers-and-writers mix: the largest fleet of P3, half of it readers (the fair floor,
/// which has no readers, sits it out). A handoff is still an `exit` followed by another
/// process's `enter`; readers that enter while another reader holds make none.
pub(crate) fn run_mix(exe: &Path, work: &Path, params: &Params) -> Result<Value, String> {
    let waiters = params.waiters.iter().copied().max().unwrap_or(1);
    // Half of the fleet, the holder included.
    let readers = waiters.div_ceil(2);
    let mut row = json!({ "waiters": waiters, "readers": readers });
    for side in [Side::Ours, Side::Mutex] {
        let (handoffs, retakes) = fleet_of(exe, work, side, (waiters + 1, readers), params)?;
        let summary = summarise(handoffs, retakes);
        eprintln!(
            "  P3 {waiters:>2} waiters, {readers} readers, {}: handoff p50 {} µs, p99 {} µs ({} handoffs)",
            side.name(),
            summary["p50_us"],
            summary["p99_us"],
            summary["handoffs"],
        );
        row[side.name()] = summary;
    }
    Ok(row)
}

/// One fleet of `processes` taking turns; returns the handoffs (µs) and the re-takes.
pub(crate) fn one_fleet(
    exe: &Path,
    work: &Path,
    side: Side,
    processes: u32,
    params: &Params,
) -> Result<(Vec<f64>, u64), String> {
    fleet_of(exe, work, side, (processes, 0), params)
}

/// [`one_fleet`], the first `readers` of the `processes` readers.
fn fleet_of(
    exe: &Path,
    work: &Path,
    side: Side,
    (processes, readers): (u32, u32),
    params: &Params,
) -> Result<(Vec<f64>, u64), String> {
    let arena = Arena::new(work, "p3")?;
    let project = arena.root.join("project");
    std::fs::create_dir_all(&project)
        .map_err(|err| format!("creating {}: {err}", project.display()))?;
    let log = arena.root.join("witness.log");
    let holds = params.handoffs.div_ceil(u64::from(processes)).max(2);
    match side {
        Side::Ring => ring::make(&arena.root, u64::from(processes))?,
        Side::Protocol => protocol_floor::make(&arena.root, u64::from(processes))?,
        Side::Ours | Side::Mutex => {}
    }
    let mut group = Group::default();
    for worker in 0..processes {
        let mut command = Command::new(exe);
        command
            .arg("relay")
            .args(["--side", side.name()])
            .arg("--root")
            .arg(&arena.root)
            .args(["--worker", &worker.to_string()])
            .args(["--processes", &processes.to_string()])
            .args(["--holds", &holds.to_string()])
            .args(["--hold-us", &params.hold.as_micros().to_string()])
            .arg("--log")
            .arg(&log);
        if worker < readers {
            command.arg("--shared");
        }
        group.spawn(command)?;
    }
    group.await_ready()?;
    group.release();
    let limit =
        ACQUIRE_TIMEOUT * 2 + params.hold * u32::try_from(holds).unwrap_or(u32::MAX) * processes;
    group.collect(limit)?;
    let text = std::fs::read_to_string(&log).map_err(|err| format!("{}: {err}", log.display()))?;
    handoffs(&text)
}

/// Handoffs (µs) and re-takes from a witness log.
pub(crate) fn handoffs(log: &str) -> Result<(Vec<f64>, u64), String> {
    let mut events = Vec::new();
    for line in log.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (&[kind, worker, _cycle, ns] | &[kind, worker, _cycle, ns, "shared"]) = &fields[..]
        else {
            return Err(format!("witness log line {line:?}"));
        };
        let worker: u32 = worker
            .parse()
            .map_err(|_| format!("witness log line {line:?}"))?;
        let ns: u64 = ns
            .parse()
            .map_err(|_| format!("witness log line {line:?}"))?;
        events.push((ns, kind == "enter", worker));
    }
    // Exits before enters at the same instant.
    events.sort_unstable();
    let mut out = Vec::new();
    let mut retakes = 0;
    let mut last_exit: Option<(u64, u32)> = None;
    for (ns, enter, worker) in events {
        if !enter {
            last_exit = Some((ns, worker));
            continue;
        }
        match last_exit.take() {
            Some((at, by)) if by != worker => out.push((ns - at) as f64 / 1e3),
            Some(_) => retakes += 1,
            None => {}
        }
    }
    Ok((out, retakes))
}

/// Percentiles, and the CDF at every whole percent for the plot.
pub(crate) fn summarise(mut micros: Vec<f64>, retakes: u64) -> Value {
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| -> f64 {
        if micros.is_empty() {
            return f64::NAN;
        }
        let rank = (q * (micros.len() - 1) as f64).round() as usize;
        micros[rank.min(micros.len() - 1)]
    };
    let cdf: Vec<f64> = (0..=100)
        .map(|p| round3(at(f64::from(p) / 100.0)))
        .collect();
    json!({
        "handoffs": micros.len(),
        "retakes": retakes,
        "p50_us": round3(at(0.5)),
        "p99_us": round3(at(0.99)),
        "max_us": round3(micros.last().copied().unwrap_or(f64::NAN)),
        "cdf_us": cdf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handoffs_are_exit_to_another_processs_enter() -> Result<(), String> {
        let log = "enter 0 0 1000\nexit 0 0 2000\nenter 1 0 2500\nexit 1 0 3000\nenter 1 1 3100\nexit 1 1 4000\nenter 0 1 7000\n";
        let (handoffs, retakes) = handoffs(log)?;
        assert_eq!(handoffs, [0.5, 3.0]);
        assert_eq!(retakes, 1);
        Ok(())
    }
}
