//! The benchmark driver behind `cargo xtask bench`: measures the lock against a bare floor and
//! the pre-fix port, in one run, side by side, and prints one JSON report as its last stdout
//! line (progress goes to stderr).
//!
//! ```text
//! bench-driver run --work-dir W [--quick] [--cli PATH] [--only PARTS]
//!                                           the whole benchmark (with PATH, the `scope-lock`
//!                                           command's peak RSS too); with PARTS (e.g. `p3,p4`),
//!                                           only those of p1, p2, p3, p4, p5, memory and etcd
//! bench-driver hold --running-dir D --root R --paths K      (internal: a holder of many locks)
//! bench-driver hammer --side ours|mutex|ring|protocol --root R --worker K --processes N --hold-us H
//!                     --window-ms W [--shared]              (internal: one P4 process)
//! bench-driver relay --side ours|mutex|ring|protocol --root R --worker K --processes N --holds H
//!                    --hold-us U --log L [--shared]         (internal: one P3 process)
//! bench-driver pong                                         (internal: echoes stdin, for the
//!                                                           bare wake-up)
//! bench-driver fleet --side ours|mutex|ring|protocol --work-dir W --processes N --holds H --hold-us U
//!                                           one P3 fleet on its own (for strace)
//! bench-driver cycles --side ours|floor|floor+RUNG --root R --count N
//!                                           uncontended cycles, for strace (RUNG: normalise,
//!                                           sentinel, queue or token: the floor with the
//!                                           guarantees of P1's ladder up to that one)
//! bench-driver etcd-hammer --side ours|etcd --endpoint E --root R --worker K --hold-us H
//!                          --window-ms W                    (internal: one contended etcd process)
//! bench-driver rss-hold --root R                            (internal: peak RSS of a holder)
//! bench-driver rss-list --root R                            (internal: peak RSS of list_locks)
//! bench-driver rss-cli --cli PATH --root R                  (internal: peak RSS of `scope-lock list`)
//! bench-driver rss-idle                                     (internal: peak RSS doing nothing)
//! ```
//!
//! With `--shared` a P3 or P4 process is a reader: a shared lock (for the mutex, `LOCK_SH`).
//! P3 and P4 each end with one readers-and-writers mix at their largest size, half of the
//! processes readers (`handoff_mix`, `contended_mix` in the report).
//!
//! What is measured, and how, is described in docs/performance.md and in
//! `xtask/src/bench/mod.rs`. Every child process is reaped; every loop is bounded by a count or
//! a time window.

mod contended;
mod etcd;
mod floor;
mod handoff;
mod holder;
mod measure;
mod memory;
mod protocol_floor;
mod ring;
mod run;
mod uncontended;

use std::process::{Command, ExitCode};
use std::time::Duration;

use regression::args::{self, Args, print_line as print_json};
use serde_json::Value;

fn main() -> ExitCode {
    let (command, parser) = args::command();
    // Each command names the options it takes: anything else is refused, never ignored.
    let result = match command.as_str() {
        "run" => Args::parse(parser, &["work-dir", "cli", "only"], &["quick"])
            .and_then(|args| run::run(&args)),
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
        "etcd-hammer" => Args::parse(
            parser,
            &["side", "endpoint", "root", "worker", "hold-us", "window-ms"],
            &[],
        )
        .and_then(|args| {
            etcd::hammer(
                args.get("side")?,
                args.get("endpoint")?,
                &args.path("root")?,
                args.number("worker")?,
                Duration::from_micros(args.number("hold-us")?),
                Duration::from_millis(args.number("window-ms")?),
            )
        }),
        "pong" => Args::parse(parser, &[], &[]).and_then(|_| ring::pong()),
        "cycles" => Args::parse(parser, &["side", "root", "count"], &[]).and_then(|args| {
            uncontended::cycles(
                args.get("side")?,
                &args.path("root")?,
                args.number("count")?,
            )
        }),
        "rss-hold" => {
            Args::parse(parser, &["root"], &[]).and_then(|a| memory::rss_hold(&a.path("root")?))
        }
        "rss-list" => {
            Args::parse(parser, &["root"], &[]).and_then(|a| memory::rss_list(&a.path("root")?))
        }
        "rss-cli" => Args::parse(parser, &["cli", "root"], &[])
            .and_then(|a| memory::rss_cli(&a.path("cli")?, &a.path("root")?)),
        "rss-idle" => Args::parse(parser, &[], &[]).and_then(|_| memory::rss_idle()),
        other => Err(args::unknown_command(other)),
    };
    args::exit_status("bench-driver", &command, result)
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

fn err(error: impl std::fmt::Display) -> String {
    error.to_string()
}
