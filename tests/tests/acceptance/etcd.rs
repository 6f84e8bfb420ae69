//! The etcd backend's many-process regression check: processes that pretend to be different
//! hosts (each its own clone of the project, at its own root) take overlapping scopes of one
//! project again and again, and an independent witness (`regression::witness`) checks that no
//! two ever held at once, that every hold's fencing token is larger than the one before, and
//! that waiters were served in the order they queued.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use regression::fleet::Group;
use regression::witness;
use scope_lock::testing::TestResult;
use scope_lock::testing::etcd::{EtcdCluster, available};

const WORKERS: u32 = 6;
const CYCLES: u64 = 8;

#[test]
fn hosts_with_different_roots_never_overlap_and_are_served_in_order() -> TestResult {
    if !available("etcd::hosts_with_different_roots_never_overlap_and_are_served_in_order") {
        return Ok(());
    }
    let cluster = EtcdCluster::single()?;
    let logs = tempfile::tempdir()?;
    let witness_log = logs.path().join("witness.log");
    let order_log = logs.path().join("order.log");
    let mut clones = Vec::new();
    let mut group = Group::default();
    for worker in 0..WORKERS {
        let clone = tempfile::tempdir()?;
        // Overlapping scopes, not one: the rules decide, not equality of names.
        let scope = if worker % 2 == 0 { "src" } else { "src/sub" };
        let mut command = Command::new(Path::new(env!("CARGO_BIN_EXE_etcd-worker")));
        command
            .arg("--endpoints")
            .arg(cluster.endpoints().join(","))
            .args(["--project", "fleet", "--scope", scope])
            .arg("--root")
            .arg(clone.path())
            .args(["--cycles", &CYCLES.to_string()])
            .args(["--worker", &worker.to_string()])
            .arg("--witness")
            .arg(&witness_log)
            .arg("--order")
            .arg(&order_log)
            .args(["--deadline-ms", "120000"]);
        group.spawn(command)?;
        clones.push(clone);
    }
    group.await_ready()?;
    group.release();
    let summaries = group.collect(Duration::from_secs(180))?;
    assert_eq!(summaries.len(), WORKERS as usize);

    let report = witness::check(&std::fs::read_to_string(&witness_log)?)?;
    assert_eq!(report.holds, u64::from(WORKERS) * CYCLES, "{report:?}");
    assert_eq!(report.overlaps(), 0, "{report:?}");
    assert_eq!(report.unmatched, 0, "{report:?}");

    let order = std::fs::read_to_string(&order_log)?;
    let mut tokens = Vec::new();
    let mut tickets = Vec::new();
    for line in order.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let [token, ticket, _worker] = fields[..] else {
            return Err(format!("order log line {line:?}").into());
        };
        tokens.push(token.parse::<u64>()?);
        if ticket != "-" {
            tickets.push(ticket.parse::<u64>()?);
        }
    }
    assert!(
        tokens.windows(2).all(|pair| pair[0] < pair[1]),
        "fencing tokens not strictly increasing in hold order: {tokens:?}"
    );
    assert!(
        tickets.windows(2).all(|pair| pair[0] < pair[1]),
        "waiters not served in the order they queued: {tickets:?}"
    );
    // The scenario contends: most holds were waited for.
    assert!(
        tickets.len() > tokens.len() / 2,
        "{} of {} waited",
        tickets.len(),
        tokens.len()
    );
    Ok(())
}
