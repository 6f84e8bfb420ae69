//! One whole run (`bench-driver run`): its sizes, the parts `--only` selects, and the report
//! with the machine it ran on.

use std::time::Duration;

use regression::args::Args;
use serde_json::{Value, json};

use crate::measure::Plan;
use crate::{contended, current_exe, etcd, handoff, memory, print_json, ring, uncontended};

/// The sizes of one run: the full benchmark, or `--quick` (a smoke run for CI and tests).
pub(crate) struct Shape {
    pub(crate) held_counts: Vec<usize>,
    pub(crate) plan: Plan,
    /// Rounds at 10,000 held locks, where one operation takes tens of milliseconds.
    pub(crate) big_rounds: usize,
    pub(crate) p5_holders: usize,
    pub(crate) p5_sizes: Vec<usize>,
    pub(crate) p5_plan: Plan,
    pub(crate) p4: contended::Params,
    pub(crate) p3: handoff::Params,
    /// Round trips timed for the bare wake-up between two processes.
    pub(crate) wakeups: usize,
    pub(crate) etcd: etcd::Params,
}

impl Shape {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                held_counts: vec![0, 10, 100],
                plan: Plan {
                    sample: Duration::from_millis(2),
                    rounds: 3,
                },
                big_rounds: 2,
                p5_holders: 50,
                p5_sizes: vec![1, 10, 100],
                p5_plan: Plan {
                    sample: Duration::from_millis(2),
                    rounds: 2,
                },
                p4: contended::Params {
                    processes: vec![2, 8],
                    rounds: 1,
                    hold: Duration::from_millis(1),
                    window: Duration::from_millis(150),
                },
                p3: handoff::Params {
                    waiters: vec![1, 8],
                    handoffs: 30,
                    hold: Duration::from_micros(200),
                },
                wakeups: 200,
                etcd: etcd::Params {
                    plan: Plan {
                        sample: Duration::from_millis(20),
                        rounds: 3,
                    },
                    counted: 20,
                    processes: vec![4],
                    rounds: 1,
                    hold: Duration::from_millis(1),
                    window: Duration::from_millis(500),
                },
            }
        } else {
            Self {
                held_counts: vec![0, 10, 100, 1_000, 10_000],
                plan: Plan {
                    sample: Duration::from_millis(25),
                    rounds: 9,
                },
                big_rounds: 5,
                p5_holders: 1_000,
                p5_sizes: vec![1, 10, 100],
                p5_plan: Plan {
                    sample: Duration::from_millis(25),
                    rounds: 5,
                },
                p4: contended::Params {
                    processes: vec![2, 8, 32],
                    rounds: 3,
                    hold: Duration::from_millis(1),
                    window: Duration::from_secs(1),
                },
                p3: handoff::Params {
                    waiters: vec![1, 8, 32],
                    handoffs: 600,
                    hold: Duration::from_micros(200),
                },
                wakeups: 5_000,
                etcd: etcd::Params {
                    plan: Plan {
                        sample: Duration::from_millis(100),
                        rounds: 9,
                    },
                    counted: 200,
                    processes: vec![2, 8],
                    rounds: 3,
                    hold: Duration::from_millis(1),
                    window: Duration::from_secs(3),
                },
            }
        }
    }
}

/// The parts of a run, as `--only` names them; P1 and P2 are measured together; `etcd` starts
/// an etcd member of its own (and says loudly that it did not, without one installed).
pub(crate) const PARTS: [&str; 7] = ["p1", "p2", "p3", "p4", "p5", "memory", "etcd"];

/// The parts `--only` asks for (every part without it); an unknown name is an error.
pub(crate) fn parts(only: Option<&str>) -> Result<Vec<&'static str>, String> {
    let Some(only) = only else {
        return Ok(PARTS.to_vec());
    };
    let mut wanted = Vec::new();
    for name in only
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        let part = PARTS
            .iter()
            .find(|part| part.eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("--only {name:?}: expected some of {}", PARTS.join(", ")))?;
        wanted.push(*part);
    }
    if wanted.is_empty() {
        return Err(format!(
            "--only names no part; expected some of {}",
            PARTS.join(", ")
        ));
    }
    Ok(wanted)
}

pub(crate) fn run(args: &Args) -> Result<(), String> {
    let exe = current_exe()?;
    let work = args.path("work-dir")?;
    let shape = Shape::new(args.flag("quick"));
    let parts = parts(args.get("only").ok())?;
    let wants = |part: &str| parts.contains(&part);
    let load_before = load_average();
    let cli = args.path("cli").ok();
    let (mut held, mut list_rss) = (Vec::new(), Value::Null);
    // Memory needs P2's largest listing, so it runs P2 too.
    if wants("p1") || wants("p2") || wants("memory") {
        eprintln!("bench: P1/P2 (held locks: {:?})", shape.held_counts);
        (held, list_rss) = uncontended::held_locks(&exe, &work, &shape, cli.as_deref())?;
    }
    let memory = if wants("memory") {
        eprintln!("bench: memory");
        memory::memory(&exe, &work, list_rss)?
    } else {
        Value::Null
    };
    let scope_size = if wants("p5") {
        eprintln!(
            "bench: P5 ({} holders of {:?} paths)",
            shape.p5_holders, shape.p5_sizes
        );
        uncontended::scope_size(&exe, &work, &shape)?
    } else {
        Vec::new()
    };
    let contended = if wants("p4") {
        eprintln!("bench: P4 (processes: {:?})", shape.p4.processes);
        contended::run(&exe, &work, &shape.p4)?
    } else {
        Vec::new()
    };
    let (handoff, wakeup) = if wants("p3") {
        eprintln!("bench: P3 (waiters: {:?})", shape.p3.waiters);
        let handoff = handoff::run(&exe, &work, &shape.p3)?;
        let wakeup = handoff::summarise(ring::wakeups(&exe, shape.wakeups)?, 0);
        eprintln!(
            "  bare wake-up between two processes: p50 {} µs, p99 {} µs",
            wakeup["p50_us"], wakeup["p99_us"]
        );
        (handoff, wakeup)
    } else {
        (Vec::new(), Value::Null)
    };
    let contended_mix = if wants("p4") {
        contended::run_mix(&exe, &work, &shape.p4)?
    } else {
        Value::Null
    };
    let etcd = if wants("etcd") {
        eprintln!(
            "bench: etcd (one member; contended: {:?} processes)",
            shape.etcd.processes
        );
        etcd::run(&exe, &work, &shape.etcd)?
    } else {
        Value::Null
    };
    let handoff_mix = if wants("p3") {
        handoff::run_mix(&exe, &work, &shape.p3)?
    } else {
        Value::Null
    };
    print_json(&json!({
        "schema": 1,
        "quick": args.flag("quick"),
        "parts": parts,
        "machine": machine(load_before),
        "held": held,
        "scope_size": scope_size,
        "contended": contended,
        "contended_mix": contended_mix,
        "handoff": handoff,
        "handoff_mix": handoff_mix,
        "wakeup": wakeup,
        "memory": memory,
        "etcd": etcd,
    }))
}

fn machine(load_before: String) -> Value {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, usize::from),
        "cpu_model": cpu,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "load_before": load_before,
        "load_after": load_average(),
    })
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|it| it.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_picks_the_named_parts_and_refuses_unknown_ones() {
        assert_eq!(parts(None), Ok(PARTS.to_vec()));
        assert_eq!(parts(Some("P3, p4")), Ok(vec!["p3", "p4"]));
        assert!(parts(Some("p3,p9")).is_err_and(|err| err.contains("\"p9\"")));
        assert!(parts(Some(",")).is_err());
    }
}
