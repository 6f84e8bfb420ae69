//! The benchmark driver behind `cargo xtask bench`: measures the lock against a bare floor and
//! the pre-fix port, in one run, side by side, and prints one JSON report as its last stdout
//! line (progress goes to stderr).
//!
//! ```text
//! bench-driver run --work-dir W [--quick] [--cli PATH] [--only PARTS]
//!                                           the whole benchmark (with PATH, the `scope-lock`
//!                                           command's peak RSS too); with PARTS (e.g. `p3,p4`),
//!                                           only those of p1, p2, p3, p4, p5 and memory
//! bench-driver hold --running-dir D --root R --paths K      (internal: a holder of many locks)
//! bench-driver hammer --side ours|mutex|ring --root R --worker K --processes N --hold-us H
//!                     --window-ms W [--shared]              (internal: one P4 process)
//! bench-driver relay --side ours|mutex|ring --root R --worker K --processes N --holds H
//!                    --hold-us U --log L [--shared]         (internal: one P3 process)
//! bench-driver pong                                         (internal: echoes stdin, for the
//!                                                           bare wake-up)
//! bench-driver fleet --side ours|mutex|ring --work-dir W --processes N --holds H --hold-us U
//!                                           one P3 fleet on its own (for strace)
//! bench-driver cycles --side ours|floor --root R --count N  (uncontended cycles, for strace)
//!
//! With `--shared` a P3 or P4 process is a reader: a shared lock (for the mutex, `LOCK_SH`).
//! P3 and P4 each end with one readers-and-writers mix at their largest size, half of the
//! processes readers (`handoff_mix`, `contended_mix` in the report).
//! bench-driver rss-hold --root R                            (internal: peak RSS of a holder)
//! bench-driver rss-list --root R                            (internal: peak RSS of list_locks)
//! bench-driver rss-cli --cli PATH --root R                  (internal: peak RSS of `scope-lock list`)
//! bench-driver rss-idle                                     (internal: peak RSS doing nothing)
//! ```
//!
//! What is measured, and how, is described in docs/performance.md and in
//! `xtask/src/bench/mod.rs`. Every child process is reaped; every loop is bounded by a count or
//! a time window.

mod contended;
mod floor;
mod handoff;
mod holder;
mod measure;
mod ring;

use std::io::{self, Write};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use regression::args::Args;
use regression::prefix::PrefixLockManager;
use scope_lock::{LockManager, LockRequest};
use serde_json::{Value, json};

use crate::holder::{Arena, Holder};
use crate::measure::{Op, Plan, Samples, interleaved};

fn main() -> ExitCode {
    let mut parser = lexopt::Parser::from_env();
    let command = match parser.next() {
        Ok(Some(lexopt::Arg::Value(command))) => command.to_string_lossy().into_owned(),
        _ => String::new(),
    };
    // Each command names the options it takes: anything else is refused, never ignored.
    let result = match command.as_str() {
        "run" => Args::parse(parser, &["work-dir", "cli", "only"], &["quick"])
            .and_then(|args| run(&args)),
        "hold" => Args::parse(parser, &["running-dir", "root", "paths"], &[]).and_then(|args| {
            holder::serve(
                &args.path("running-dir")?,
                &args.path("root")?,
                args.number("paths")? as usize,
            )
        }),
        "hammer" => Args::parse(
            parser,
            &[
                "side",
                "root",
                "worker",
                "processes",
                "hold-us",
                "window-ms",
            ],
            &["shared"],
        )
        .and_then(|args| {
            contended::hammer(
                contended::Side::parse(args.get("side")?)?,
                &args.path("root")?,
                (args.number("worker")?, args.number("processes")?),
                Duration::from_micros(args.number("hold-us")?),
                Duration::from_millis(args.number("window-ms")?),
                args.flag("shared"),
            )
        }),
        "relay" => Args::parse(
            parser,
            &[
                "side",
                "root",
                "worker",
                "processes",
                "holds",
                "hold-us",
                "log",
            ],
            &["shared"],
        )
        .and_then(|args| {
            let small = |name: &str| -> Result<u32, String> {
                u32::try_from(args.number(name)?).map_err(|err| err.to_string())
            };
            handoff::relay(
                contended::Side::parse(args.get("side")?)?,
                &args.path("root")?,
                (small("worker")?, small("processes")?),
                args.number("holds")?,
                Duration::from_micros(args.number("hold-us")?),
                &args.path("log")?,
                args.flag("shared"),
            )
        }),
        "fleet" => Args::parse(
            parser,
            &["side", "work-dir", "processes", "holds", "hold-us"],
            &[],
        )
        .and_then(|args| fleet(&args)),
        "pong" => Args::parse(parser, &[], &[]).and_then(|_| ring::pong()),
        "cycles" => Args::parse(parser, &["side", "root", "count"], &[]).and_then(|args| {
            cycles(
                args.get("side")?,
                &args.path("root")?,
                args.number("count")?,
            )
        }),
        "rss-hold" => Args::parse(parser, &["root"], &[]).and_then(|a| rss_hold(&a.path("root")?)),
        "rss-list" => Args::parse(parser, &["root"], &[]).and_then(|a| rss_list(&a.path("root")?)),
        "rss-cli" => Args::parse(parser, &["cli", "root"], &[])
            .and_then(|a| rss_cli(&a.path("cli")?, &a.path("root")?)),
        "rss-idle" => Args::parse(parser, &[], &[])
            .and_then(|_| print_json(&json!({"peak_rss_kib": peak_rss_kib()?}))),
        other => Err(format!(
            "unknown command {other:?}; see the source's header"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(io::stderr(), "bench-driver {command}: {err}");
            ExitCode::FAILURE
        }
    }
}

fn print_json(value: &Value) -> Result<(), String> {
    let mut out = io::stdout().lock();
    writeln!(out, "{value}")
        .and_then(|()| out.flush())
        .map_err(|err| format!("writing the report: {err}"))
}

/// The sizes of one run: the full benchmark, or `--quick` (a smoke run for CI and tests).
struct Shape {
    held_counts: Vec<usize>,
    plan: Plan,
    /// Rounds at 10,000 held locks, where one operation takes tens of milliseconds.
    big_rounds: usize,
    p5_holders: usize,
    p5_sizes: Vec<usize>,
    p5_plan: Plan,
    p4: contended::Params,
    p3: handoff::Params,
    /// Round trips timed for the bare wake-up between two processes.
    wakeups: usize,
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
            }
        }
    }
}

/// The parts of a run, as `--only` names them; P1 and P2 are measured together.
const PARTS: [&str; 6] = ["p1", "p2", "p3", "p4", "p5", "memory"];

/// The parts `--only` asks for (every part without it); an unknown name is an error.
fn parts(only: Option<&str>) -> Result<Vec<&'static str>, String> {
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

fn run(args: &Args) -> Result<(), String> {
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
        (held, list_rss) = held_locks(&exe, &work, &shape, cli.as_deref())?;
    }
    let memory = if wants("memory") {
        eprintln!("bench: memory");
        memory(&exe, &work, list_rss)?
    } else {
        Value::Null
    };
    let scope_size = if wants("p5") {
        eprintln!(
            "bench: P5 ({} holders of {:?} paths)",
            shape.p5_holders, shape.p5_sizes
        );
        scope_size(&exe, &work, &shape)?
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
    }))
}

/// P1 and P2: acquire+release and `list_locks` while another process holds N live locks.
/// Returns the rows and the peak RSS of `list_locks` over the largest count.
fn held_locks(
    exe: &Path,
    work: &Path,
    shape: &Shape,
    cli: Option<&Path>,
) -> Result<(Vec<Value>, Value), String> {
    let arena = Arena::new(work, "p2")?;
    let mut holder = Holder::spawn(exe, &arena.running_dir, &arena.root, 1)?;
    let scope = vec![format!("{}/ours/p0", arena.root.display())];
    let locks = LockManager::new(&arena.loops_dir);
    let request = LockRequest::new("bench-ours").scope(scope.clone());
    let prefix = PrefixLockManager::new(&arena.loops_dir);
    let mut rows = Vec::new();
    for &count in &shape.held_counts {
        holder.grow(count)?;
        let plan = if count >= 10_000 {
            Plan {
                rounds: shape.big_rounds,
                ..shape.plan
            }
        } else {
            shape.plan
        };
        let mut cycle: Vec<Op<'_>> = vec![
            Box::new(|| ours_cycle(&locks, &request)),
            Box::new(|| floor_cycle(&arena.running_dir, "bench-floor", &scope)),
            Box::new(|| {
                if !prefix.acquire("bench-prefix", &scope).map_err(err)? {
                    return Err("the pre-fix port refused a free scope".into());
                }
                prefix.release("bench-prefix").map_err(err)
            }),
        ];
        let [ours, floor, pre] = three(interleaved(plan, &mut cycle)?)?;
        drop(cycle);
        let mut list: Vec<Op<'_>> = vec![
            Box::new(|| {
                let listing = locks.list_locks().map_err(err)?;
                expect_count("list_locks", listing.locks().len(), count)
            }),
            Box::new(|| {
                let live = floor::list(&arena.running_dir).map_err(err)?;
                expect_count("the floor's list", live.len(), count)
            }),
        ];
        let [list_ours, list_floor] = two(interleaved(plan, &mut list)?)?;
        eprintln!(
            "  {count:>5} held: acquire+release ours {:.1} µs, floor {:.1} µs, pre-fix {:.1} µs; \
             list ours {:.1} µs, floor {:.1} µs",
            ours.best(),
            floor.best(),
            pre.best(),
            list_ours.best(),
            list_floor.best()
        );
        rows.push(json!({
            "held": count,
            "acquire_release": {"ours": ours.to_json(), "floor": floor.to_json(), "prefix": pre.to_json()},
            "list_locks": {"ours": list_ours.to_json(), "floor": list_floor.to_json()},
        }));
    }
    let mut list_rss = child_json(
        Command::new(exe)
            .arg("rss-list")
            .arg("--root")
            .arg(&arena.root),
    )?;
    if let Some(cli) = cli {
        let measured = child_json(
            Command::new(exe)
                .arg("rss-cli")
                .arg("--cli")
                .arg(cli)
                .arg("--root")
                .arg(&arena.root),
        )?;
        list_rss["cli_peak_rss_kib"] = measured["peak_rss_kib"].clone();
    }
    holder.finish()?;
    Ok((rows, list_rss))
}

fn ours_cycle(locks: &LockManager, request: &LockRequest) -> Result<(), String> {
    locks
        .try_acquire(request)
        .map_err(|e| e.to_string())?
        .release()
        .map_err(err)
}

fn floor_cycle(running_dir: &Path, name: &str, scope: &[String]) -> Result<(), String> {
    match floor::acquire(running_dir, name, scope).map_err(err)? {
        Ok(guard) => floor::release(running_dir, guard).map_err(err),
        Err(blocker) => Err(format!("the floor was refused by {}", blocker.display())),
    }
}

fn expect_count(what: &str, got: usize, want: usize) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what} saw {got} live locks, expected {want}"))
    }
}

/// P5: acquire+release with scopes of 1, 10 and 100 paths against holders of 1, 10 and 100
/// paths each (never overlapping, so every entry is compared).
fn scope_size(exe: &Path, work: &Path, shape: &Shape) -> Result<Vec<Value>, String> {
    let mut rows = Vec::new();
    for &theirs in &shape.p5_sizes {
        let arena = Arena::new(work, &format!("p5-{theirs}"))?;
        let mut holder = Holder::spawn(exe, &arena.running_dir, &arena.root, theirs)?;
        holder.grow(shape.p5_holders)?;
        let locks = LockManager::new(&arena.loops_dir);
        for &ours_paths in &shape.p5_sizes {
            let scope: Vec<String> = (0..ours_paths)
                .map(|j| format!("{}/ours/p{j}", arena.root.display()))
                .collect();
            let request = LockRequest::new("bench-ours").scope(scope.clone());
            let mut ops: Vec<Op<'_>> = vec![
                Box::new(|| ours_cycle(&locks, &request)),
                Box::new(|| floor_cycle(&arena.running_dir, "bench-floor", &scope)),
            ];
            let [ours, floor] = two(interleaved(shape.p5_plan, &mut ops)?)?;
            eprintln!(
                "  {ours_paths:>3} paths vs {} holders of {theirs:>3}: ours {:.1} µs, floor {:.1} µs",
                shape.p5_holders,
                ours.best(),
                floor.best()
            );
            rows.push(json!({
                "ours_paths": ours_paths,
                "holder_paths": theirs,
                "holders": shape.p5_holders,
                "ours": ours.to_json(),
                "floor": floor.to_json(),
            }));
        }
        holder.finish()?;
    }
    Ok(rows)
}

/// Peak resident sets: a process doing nothing, a process holding one lock, and `list_locks`
/// over the most locks P2 held.
fn memory(exe: &Path, work: &Path, list: Value) -> Result<Value, String> {
    let arena = Arena::new(work, "rss")?;
    let idle = child_json(Command::new(exe).arg("rss-idle"))?;
    let hold = child_json(
        Command::new(exe)
            .arg("rss-hold")
            .arg("--root")
            .arg(&arena.root),
    )?;
    Ok(json!({
        "idle_process_kib": idle["peak_rss_kib"],
        "one_lock_holder_kib": hold["peak_rss_kib"],
        "list_locks_kib": list["peak_rss_kib"],
        "list_locks_count": list["locks"],
        "cli_list_kib": list["cli_peak_rss_kib"],
    }))
}

/// Runs `scope-lock list` over `<root>/.loops` as our only child and reports its peak RSS
/// (`getrusage(RUSAGE_CHILDREN)` covers exactly the children reaped so far: this one).
fn rss_cli(cli: &Path, root: &Path) -> Result<(), String> {
    let status = Command::new(cli)
        .arg("--loops-dir")
        .arg(root.join(".loops"))
        .arg("list")
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("running {}: {e}", cli.display()))?;
    if !status.success() {
        return Err(format!("{} list exited with {status}", cli.display()));
    }
    print_json(&json!({"peak_rss_kib": children_peak_rss_kib()}))
}

/// The largest peak resident set of the children reaped so far, KiB.
#[allow(unsafe_code)]
fn children_peak_rss_kib() -> Option<u64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole `rusage` into the buffer we own, or fails and writes
    // nothing; we read it only on success, and all-zero bytes are a valid `rusage` anyway.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) != 0 {
            return None;
        }
        usage.assume_init()
    };
    let max = u64::try_from(usage.ru_maxrss).ok()?;
    // Linux reports KiB; macOS, bytes.
    Some(if cfg!(target_os = "macos") {
        max / 1024
    } else {
        max
    })
}

/// One P3 fleet on its own (for `strace -f -c`): prints its handoffs and re-takes.
fn fleet(args: &Args) -> Result<(), String> {
    let processes = u32::try_from(args.number("processes")?).map_err(err)?;
    let params = handoff::Params {
        waiters: Vec::new(),
        handoffs: args.number("holds")? * u64::from(processes),
        hold: Duration::from_micros(args.number("hold-us")?),
    };
    let side = contended::Side::parse(args.get("side")?)?;
    let (handoffs, retakes) = handoff::one_fleet(
        &current_exe()?,
        &args.path("work-dir")?,
        side,
        processes,
        &params,
    )?;
    print_json(&handoff::summarise(handoffs, retakes))
}

fn current_exe() -> Result<std::path::PathBuf, String> {
    std::env::current_exe().map_err(|err| format!("finding myself: {err}"))
}

/// `count` uncontended acquire+release cycles, ours or the floor's, in `<root>/.loops`: what
/// `strace -c` counts per cycle (run it at two counts and take the difference).
fn cycles(side: &str, root: &Path, count: u64) -> Result<(), String> {
    let scope = vec![format!("{}/ours/p0", root.display())];
    let loops = root.join(".loops");
    let running_dir = loops.join(".running");
    let locks = LockManager::new(&loops);
    let request = LockRequest::new("cycles").scope(scope.clone());
    for _ in 0..count {
        match side {
            "ours" => ours_cycle(&locks, &request)?,
            "floor" => floor_cycle(&running_dir, "cycles", &scope)?,
            other => return Err(format!("--side {other:?}: expected ours or floor")),
        }
    }
    Ok(())
}

fn rss_hold(root: &Path) -> Result<(), String> {
    let locks = LockManager::new(root.join(".loops"));
    let scope = format!("{}/ours/p0", root.display());
    let guard = locks
        .try_acquire(&LockRequest::new("rss").scope([scope]))
        .map_err(|e| e.to_string())?;
    let peak = peak_rss_kib()?;
    guard.release().map_err(err)?;
    print_json(&json!({"peak_rss_kib": peak}))
}

fn rss_list(root: &Path) -> Result<(), String> {
    let listing = LockManager::new(root.join(".loops"))
        .list_locks()
        .map_err(err)?;
    print_json(&json!({"peak_rss_kib": peak_rss_kib()?, "locks": listing.locks().len()}))
}

/// Runs a child to completion and parses its last stdout line.
fn child_json(command: &mut Command) -> Result<Value, String> {
    let output = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("running {command:?}: {e}"))?;
    if !output.status.success() {
        return Err(format!("{command:?} exited with {}", output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).map_err(|e| format!("{command:?} printed {last:?}: {e}"))
}

/// This process's peak resident set (`VmHWM`), KiB; `None` where there is no `/proc` (the
/// report says null).
pub(crate) fn peak_rss_kib() -> Result<Option<u64>, String> {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return Ok(None);
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .map(Some)
        .ok_or_else(|| "no VmHWM line in /proc/self/status".to_owned())
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

fn err(error: impl std::fmt::Display) -> String {
    error.to_string()
}

fn two(samples: Vec<Samples>) -> Result<[Samples; 2], String> {
    <[Samples; 2]>::try_from(samples).map_err(|_| "expected two contenders".to_owned())
}

fn three(samples: Vec<Samples>) -> Result<[Samples; 3], String> {
    <[Samples; 3]>::try_from(samples).map_err(|_| "expected three contenders".to_owned())
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
