//! Taking turns (B12): a holder that releases and at once asks again goes behind the
//! processes that were already waiting. A few processes take turns on one scope; the test ends
//! each hold only once every other process has said that it waits (its ticket is filed and its
//! watch in place), so at every release the order of arrival is settled; the independent
//! witness log then gives the order of the holds, which must go round the processes in turn.
//!
//! What this does not cover, by design: a process that has not yet asked again, or whose
//! first attempt has not yet taken the sentinel, is not waiting, and a releaser that asks
//! first takes a free scope before it (docs/protocol.md, B12; P3's re-takes with two
//! processes, docs/performance.md).

use std::collections::VecDeque;

use crate::support::{project, worker};
use regression::{record_evidence, turns, witness};
use scope_lock::testing::TestResult;
use serde_json::json;

#[test]
fn a_releaser_that_asks_again_goes_behind_the_processes_already_waiting() -> TestResult {
    let (f, scope) = project()?;
    let log = f.root.join("witness.log");
    let processes: usize = 3;
    let holds: u64 = 6;
    let mut group = Vec::new();
    for k in 0..processes {
        group.push(turns::spawn(
            worker(),
            &f.loops_dir(),
            &scope,
            (u32::try_from(k)?, holds),
            &log,
        )?);
    }
    // Process 0 holds first; the others line up behind it in number order, each started only
    // once the one before it has said it waits.
    let said = group[0].go()?;
    assert_eq!(said, "held 0", "process 0 did not get the free scope");
    let mut waiting = VecDeque::new();
    for (k, process) in group.iter_mut().enumerate().skip(1) {
        let said = process.go()?;
        assert!(
            said.starts_with("waiting "),
            "process {k} did not wait: {said}"
        );
        waiting.push_back(k);
    }
    let mut holder = 0;
    let mut retaken = None;
    // Every hold but the first is one turn; each process's last `release` makes it say `done`.
    for _ in 1..processes * usize::try_from(holds)? {
        let said = group[holder].release_on_line()?;
        if said.starts_with("waiting ") {
            waiting.push_back(holder);
        } else if said.starts_with("held ") {
            // It went before every process that was waiting: the witness log shows it below.
            retaken = Some(holder);
            break;
        } else {
            assert_eq!(said, "done", "process {holder} after its release");
        }
        let next = waiting
            .pop_front()
            .ok_or("nobody waits, yet holds remain")?;
        let said = group[next].next_line()?;
        assert!(
            said.starts_with("held "),
            "process {next}, first in line, did not get the scope: {said}"
        );
        holder = next;
    }
    let text = if retaken.is_none() {
        assert_eq!(group[holder].release_on_line()?, "done");
        for process in group {
            process.release()?;
        }
        std::fs::read_to_string(&log)?
    } else {
        // Read while the re-taker still holds; then all are killed and reaped, since the
        // others may never be served (each would hold for a moment as the one before it
        // dies, and leave an `enter` without its `exit`).
        let text = std::fs::read_to_string(&log)?;
        drop(group);
        text
    };
    let report = witness::check(&text)?;
    let order: Vec<usize> = text
        .lines()
        .filter_map(|line| line.strip_prefix("enter "))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect();
    let in_turn: Vec<usize> = (0..order.len()).map(|i| i % processes).collect();
    record_evidence(
        "a_releaser_that_asks_again_goes_behind_the_processes_already_waiting",
        &json!({
            "processes": processes,
            "holds": order.len(),
            "overlaps": report.overlaps(),
            "retaken_by": retaken,
        }),
    );
    assert_eq!(report.overlaps(), 0, "two holders at once: {report:?}");
    assert_eq!(
        order, in_turn,
        "the releaser took the scope again ahead of a process already waiting \
         (witnessed order of holds)"
    );
    assert_eq!(order.len(), processes * usize::try_from(holds)?);
    Ok(())
}
