//! One process of the etcd many-process scenario: a "host" with its own clone of the
//! project (its own root), taking one scope of the shared project again and again.
//!
//! ```text
//! etcd-worker --endpoints E[,E…] --project P --root R --scope S --cycles C --worker K
//!             --witness LOG --order ORDER --deadline-ms M
//! ```
//!
//! It says `ready`, waits for stdin to close (the start barrier), then `C` times: acquires the
//! scope waiting at most until the deadline, writes `enter` to the witness log, appends
//! `<token> <ticket or -> <worker>` to the order log (while it holds the scope, so the order
//! log is in the order of the holds), writes `exit` and releases. Its last line is a JSON
//! summary.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use regression::args::Args;
use regression::witness::Witness;
use scope_lock::LockRequest;
use scope_lock::etcd::{EtcdConfig, EtcdLockManager};
use serde_json::json;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("etcd-worker: {err}");
            ExitCode::FAILURE
        }
    }
}

fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn run() -> Result<(), String> {
    let args = Args::parse(
        lexopt::Parser::from_env(),
        &[
            "endpoints",
            "project",
            "root",
            "scope",
            "cycles",
            "worker",
            "witness",
            "order",
            "deadline-ms",
        ],
        &[],
    )?;
    let worker = u32::try_from(args.number("worker")?).map_err(|err| err.to_string())?;
    let config = EtcdConfig::new(args.get("endpoints")?.split(','), args.get("project")?)
        .with_root(args.path("root")?)
        .with_lease_ttl(Duration::from_secs(5));
    let locks = EtcdLockManager::connect(config).map_err(|err| err.to_string())?;
    let request = LockRequest::new(format!("worker-{worker}")).scope([args.get("scope")?]);
    let mut witness =
        Witness::open(&args.path("witness")?, worker).map_err(|err| err.to_string())?;
    let mut order = OpenOptions::new()
        .create(true)
        .append(true)
        .open(args.path("order")?)
        .map_err(|err| format!("order log: {err}"))?;
    let deadline = Instant::now() + Duration::from_millis(args.number("deadline-ms")?);

    say("ready");
    io::stdin()
        .read_to_end(&mut Vec::new())
        .map_err(|err| err.to_string())?;
    let mut waited = 0;
    for cycle in 0..args.number("cycles")? {
        let mut ticket = None;
        let mut note = |wait: &scope_lock::Waiting<'_>| {
            if wait.is_first() {
                ticket = wait.ticket();
            }
        };
        let guard = locks
            .acquire_with(&request, deadline, &mut note)
            .map_err(|err| format!("cycle {cycle}: {err}"))?;
        witness
            .enter(cycle, Some(guard.token()))
            .map_err(|err| err.to_string())?;
        let ticket_text = ticket.map_or_else(|| "-".to_owned(), |t| t.to_string());
        waited += u64::from(ticket.is_some());
        // One write, so that the line lands whole.
        let line = format!("{} {ticket_text} {worker}\n", guard.token());
        order
            .write_all(line.as_bytes())
            .map_err(|err| format!("order log: {err}"))?;
        witness.exit(cycle).map_err(|err| err.to_string())?;
        guard
            .release()
            .map_err(|err| format!("cycle {cycle}: {err}"))?;
    }
    say(&json!({ "worker": worker, "waited": waited }).to_string());
    Ok(())
}
