//! `cargo xtask bench [--quick] [--only PARTS]`: how fast the lock is, measured beside what it must be
//! compared with, in one run.
//!
//! The measuring is done by `bench-driver` (package `regression`, built in release mode),
//! which runs every contender interleaved in the same directory and prints one JSON object.
//! This module builds and runs it, then writes what a reader wants from it:
//!
//! - a table on the terminal, every ratio taken against the baseline measured beside it;
//! - `<target>/bench/report.json`: the driver's measurements plus the ratios and the run's
//!   context (commit, rustc);
//! - `<target>/bench/report.html` and one SVG per plot (latency against held locks,
//!   throughput against processes, cost against scope size).
//!
//! Baselines: the **floor** is the protocol's necessary system calls done bare by the driver
//! (`tests/src/bin/bench-driver/floor.rs`); the **pre-fix** port is `tests/src/pre_fix.rs`;
//! the **flock mutex** is N processes doing the same 1 ms of work under one flocked file. On
//! etcd (`--only etcd`, on one member the run starts; loudly not measured without an etcd
//! installed), **etcd's own lock** (etcd-client's `lock`/`unlock` of one key under a lease) and
//! **one bare transaction** (`tests/src/bin/bench-driver/etcd.rs`).

mod render;
mod svg;

use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};
use xshell::{Shell, cmd};

use crate::cargo::{build_bin, target_dir, without_cargo_package_env};
use crate::flags;

impl flags::Bench {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<bool> {
        run(sh, &self)
    }
}

fn run(sh: &Shell, flags: &flags::Bench) -> anyhow::Result<bool> {
    let driver = build_bin(sh, "regression", "bench-driver", true)?;
    let cli = build_bin(sh, "scope-lock-cli", "scope-lock", true)?;
    let out_dir = target_dir(sh)?.join("bench");
    let work = out_dir.join("work");
    sh.create_dir(&work)?;
    // Before the run: the figures belong to the tree as it was built.
    let context = context(sh);
    let mut options: Vec<String> = Vec::new();
    if flags.quick {
        options.push("--quick".into());
    }
    if let Some(only) = &flags.only {
        options.extend(["--only".into(), only.clone()]);
    }
    eprintln!(
        "running bench-driver run {} (release build) ...",
        options.join(" ")
    );
    let stdout = without_cargo_package_env(cmd!(
        sh,
        "{driver} run --work-dir {work} --cli {cli} {options...}"
    ))
    .read()
    .context("bench-driver failed")?;
    let last = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .context("bench-driver printed nothing")?;
    let measured: Value = serde_json::from_str(last)
        .with_context(|| format!("bench-driver's last line is not JSON: {last}"))?;
    let report = render::Report::new(measured, context)?;
    print!("{}", report.table());
    write_outputs(sh, &out_dir, &report)?;
    Ok(true)
}

fn write_outputs(sh: &Shell, out_dir: &Path, report: &render::Report) -> anyhow::Result<()> {
    let json_path = out_dir.join("report.json");
    sh.write_file(&json_path, serde_json::to_string_pretty(&report.json())?)?;
    let plots = svg::plots(report);
    for (name, svg) in &plots {
        sh.write_file(out_dir.join(name), svg)?;
    }
    let html_path = out_dir.join("report.html");
    sh.write_file(&html_path, svg::html(report, &plots))?;
    let mut written = vec![
        json_path.display().to_string(),
        html_path.display().to_string(),
    ];
    // A run of some parts (`--only etcd`) may have nothing to plot.
    written.extend(plots.iter().map(|(name, _)| name.clone()));
    let last = written.pop().unwrap_or_default();
    println!("\nwrote {} and {last}", written.join(", "));
    Ok(())
}

/// The commit and compiler the figures belong to.
fn context(sh: &Shell) -> Value {
    let commit = cmd!(sh, "git rev-parse --short HEAD")
        .quiet()
        .ignore_stderr()
        .read()
        .unwrap_or_default();
    let dirty = !cmd!(sh, "git status --porcelain --untracked-files=no")
        .quiet()
        .ignore_stderr()
        .read()
        .unwrap_or_default()
        .is_empty();
    let rustc = cmd!(sh, "rustc --version")
        .quiet()
        .ignore_stderr()
        .read()
        .unwrap_or_default();
    json!({
        "commit": if dirty { format!("{commit}+dirty") } else { commit },
        "rustc": rustc,
        "command": "cargo xtask bench",
    })
}
