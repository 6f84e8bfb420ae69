//! SL-24: shared (read) scopes among many processes. Readers and writers of one scope cycle
//! together; the independent witness log proves that no writer's hold ever overlapped anyone's,
//! and that the readers did hold together (their first holds last until all of them hold),
//! so that a shared lock secretly taken as exclusive would fail here too.

use crate::support::worker;
use regression::fleet::{FleetParams, run_fleet};
use regression::locker::Impl;
use regression::{record_evidence, soak};

#[test]
fn readers_and_writers_in_many_processes_never_let_a_writer_overlap_anyone() {
    let mut params = FleetParams::standard(Impl::Fixed, soak());
    params.readers = 4;
    // Small: it shares the machine with BUG-423's fleet, which this binary runs at the same
    // time, and a few hundred holds of each kind are plenty to catch a writer beside anyone.
    params.cycles_per_worker /= 16;
    params.scanners = 1;
    let report = match run_fleet(worker(), &params) {
        Ok(report) => report,
        Err(err) => panic!("the fleet did not run: {err}"),
    };
    record_evidence(
        "readers_and_writers_in_many_processes_never_let_a_writer_overlap_anyone",
        &serde_json::json!({
            "readers": params.readers,
            "writers": params.workers - params.readers,
            "witnessed_holds": report.witnessed_holds,
            "overlaps_by_order": report.overlaps_by_order,
            "overlaps_by_time": report.overlaps_by_time,
            "max_holders": report.max_holders,
            "partial_reads": report.partial_reads,
            "other_errors": report.other_errors,
        }),
    );
    assert_eq!(
        report.cycles,
        u64::from(params.workers) * params.cycles_per_worker,
        "the fleet stopped before completing its cycles: {}",
        report.to_json()
    );
    assert_eq!(report.witnessed_holds, report.holds, "{}", report.to_json());
    assert_eq!(
        (report.unmatched_events, report.other_errors),
        (0, 0),
        "{}",
        report.to_json()
    );
    assert_eq!(
        report.overlaps,
        0,
        "a writer held together with another holder {} times (by log order {}, by clock {}): {}",
        report.overlaps,
        report.overlaps_by_order,
        report.overlaps_by_time,
        report.to_json()
    );
    assert!(
        report.max_holders >= u64::from(params.readers),
        "the readers never held together (at most {} at once): {}",
        report.max_holders,
        report.to_json()
    );
    assert_eq!(report.partial_reads, 0, "{}", report.to_json());
}
