//! How long a released scope takes to reach the next waiter: a measurement, not a test.
//!
//! ```sh
//! cargo run --release -p scope-lock --example handoff -- [WAITERS [HOLDS_EACH]]
//! ```
//!
//! Starts WAITERS processes (default 8) that all want one scope and each take it HOLDS_EACH
//! times (default 200) with `LockManager::acquire`, noting the wall-clock time right after it
//! returns and right before each release. A handoff is the time from one holder's "before
//! release" to the next holder's "acquired": the release, the wake-up and the acquire. Prints
//! the handoffs' percentiles and whether every waiter got every hold.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scope_lock::{LockManager, LockRequest};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn now_ns() -> Result<u128> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        return child(&args[1..]);
    }
    let waiters: usize = args.first().map_or(Ok(8), |a| a.parse())?;
    let holds: usize = args.get(1).map_or(Ok(200), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let scope = dir.path().join("src");
    fs::create_dir_all(&scope)?;
    let log = dir.path().join("log");
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for k in 0..waiters {
        children.push(
            Command::new(&exe)
                .arg("child")
                .arg(dir.path())
                .arg(&scope)
                .arg(&log)
                .arg(k.to_string())
                .arg(holds.to_string())
                .stdin(Stdio::piped())
                .spawn()?,
        );
    }
    // Start them together: each waits for its stdin to close.
    for child in &mut children {
        drop(child.stdin.take());
    }
    let mut failed = 0;
    for mut child in children {
        if !child.wait()?.success() {
            failed += 1;
        }
    }
    let mut events: Vec<(u128, bool, usize)> = Vec::new();
    for line in fs::read_to_string(&log)?.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if let [kind, worker, ns] = fields[..] {
            events.push((ns.parse()?, kind == "enter", worker.parse()?));
        }
    }
    events.sort();
    let mut gaps = Vec::new();
    let mut last_exit = None;
    let mut overlaps = 0;
    let mut open = 0;
    for (ns, enter, _) in &events {
        if *enter {
            open += 1;
            if open > 1 {
                overlaps += 1;
            }
            if let Some(exit) = last_exit.take() {
                gaps.push(ns - exit);
            }
        } else {
            open -= 1;
            last_exit = Some(*ns);
        }
    }
    gaps.sort_unstable();
    let pct = |p: usize| {
        gaps.get((p * gaps.len()).div_ceil(100).clamp(1, gaps.len().max(1)) - 1)
            .map_or(0.0, |ns| *ns as f64 / 1e6)
    };
    println!(
        "waiters={waiters} holds={} of {} failed_processes={failed} overlaps={overlaps} \
         handoff_ms p50={:.3} p90={:.3} p99={:.3} max={:.3}",
        events.iter().filter(|e| e.1).count(),
        waiters * holds,
        pct(50),
        pct(90),
        pct(99),
        pct(100),
    );
    Ok(())
}

fn child(args: &[String]) -> Result<()> {
    let [loops_dir, scope, log, worker, holds] = args else {
        return Err("child LOOPS_DIR SCOPE LOG WORKER HOLDS".into());
    };
    let holds: usize = holds.parse()?;
    let locks = LockManager::new(loops_dir);
    let request = LockRequest::new(format!("w{worker}")).scope([scope.as_str()]);
    let mut log = OpenOptions::new().create(true).append(true).open(log)?;
    std::io::stdin().read_to_end(&mut Vec::new())?;
    for _ in 0..holds {
        let guard = locks.acquire(&request, Duration::from_secs(120))?;
        let entered = now_ns()?;
        let exiting = now_ns()?;
        // One write per line, O_APPEND: lines from different processes never interleave.
        log.write_all(format!("enter {worker} {entered}\nexit {worker} {exiting}\n").as_bytes())?;
        guard.release()?;
    }
    Ok(())
}
