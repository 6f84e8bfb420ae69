use super::*;

fn timing(best: f64) -> Value {
    json!({"best_us": best, "median_us": best * 1.1, "worst_us": best * 2.0, "rounds": 3, "batch": 1})
}

fn rung(name: &str, best: f64) -> Value {
    let mut timing = timing(best);
    timing["rung"] = json!(name);
    timing
}

/// A driver report of the right shape with made-up figures.
pub(crate) fn sample() -> Value {
    let held: Vec<Value> = [(0, 60.0), (10, 120.0), (1000, 6000.0)]
        .into_iter()
        .map(|(n, floor)| {
            json!({
                "held": n,
                "acquire_release": {"ours": timing(floor * 1.5), "floor": timing(floor), "pre_fix": timing(floor * 3.0),
                                    "ladder": [rung("normalise", floor * 1.1), rung("sentinel", floor * 1.3)]},
                "list_locks": {"ours": timing(floor), "floor": timing(floor * 0.9)},
            })
        })
        .collect();
    let scope_size: Vec<Value> = [(1, 1, 100.0), (1, 100, 200.0), (100, 100, 900.0)]
        .into_iter()
        .map(|(ours, theirs, us)| {
            json!({"ours_paths": ours, "holder_paths": theirs, "holders": 1000,
                   "ours": timing(us), "floor": timing(us / 2.0)})
        })
        .collect();
    let rate = |best: f64| json!({"best_per_s": best, "median_per_s": best - 10.0, "worst_per_s": 1.0, "rounds": 3});
    let contended: Vec<Value> = [(2, 500.0, 900.0, 800.0), (8, 400.0, 950.0, 420.0)]
        .into_iter()
        .map(|(p, ours, mutex, ring)| {
            json!({"processes": p, "ours": rate(ours), "mutex": rate(mutex), "ring": rate(ring), "protocol": rate(ours * 1.25)})
        })
        .collect();
    let handoff: Vec<Value> = [1, 8]
        .into_iter()
        .map(|w| {
            let side = |base: f64| json!({"handoffs": 100, "retakes": 3, "p50_us": base, "p99_us": base * 4.0, "max_us": base * 9.0,
                                           "cdf_us": (0..=100).map(|p| base * (1.0 + f64::from(p) / 10.0)).collect::<Vec<_>>()});
            json!({"waiters": w, "ours": side(300.0 * f64::from(w)), "mutex": side(20.0), "ring": side(200.0), "protocol": side(250.0)})
        })
        .collect();
    json!({
        "schema": 1, "quick": false, "handoff": handoff,
        "wakeup": {"handoffs": 5000, "retakes": 0, "p50_us": 3.0, "p99_us": 9.0, "max_us": 30.0, "cdf_us": [3.0]},
        "machine": {"cpus": 2, "cpu_model": "Test CPU", "kernel": "6.0", "load_before": "0.1 0.2 0.3", "load_after": "0.1 0.2 0.3"},
        "held": held, "scope_size": scope_size, "contended": contended,
        "memory": {"idle_process_kib": 2000, "one_lock_holder_kib": 2500, "list_locks_kib": 9000, "list_locks_count": 1000, "cli_list_kib": 9500},
        "etcd": etcd::tests::sample(),
    })
}

pub(crate) fn report() -> Report {
    match Report::new(
        sample(),
        json!({"commit": "abc1234", "rustc": "rustc 1.91"}),
    ) {
        Ok(report) => report,
        Err(err) => panic!("{err:#}"),
    }
}

#[test]
fn ratios_are_taken_best_against_best() {
    let table = report().table();
    for want in [
        "     0     90.0 µs      10%     60.0 µs     1.50    180.0 µs      0.50",
        "  1000     9.00 ms      10%     6.00 ms     1.50    18.00 ms      0.50",
        "      1000     6.00 ms        1.10        1.30        1.50",
        "  each held lock from 10 to 1000: ours 8.9 µs, floor 5.9 µs (1.50x)",
        "        100           100    900.0 µs     2.00      9.0",
        "        8       400       390         420       410       500       490       950        0.95        0.80        0.42",
        "  P4, 8 processes: ours/fair 0.95 = ours/protocol 0.80 x protocol/fair 1.19",
        "  P3 p50, 8 waiters: ours/fair 12.00 = ours/protocol 9.60 x protocol/fair 1.25",
        "  MISS P1/P2 acquire+release, 0 held: ours/floor: 1.50 (target <= 1.2)",
        "  met  P5 ours/floor at the largest scopes (at 1-path scopes: 2.00): 2.00 (target <= 2.00)",
        "  MISS P4 throughput, 2 processes: ours/fair floor: 0.62 (target >= 0.9)",
        "  met  P4 throughput, 8 processes: ours/fair floor: 0.95 (target >= 0.9)",
        "  MISS P3 handoff p50, 8 waiters: ours/fair floor: 12.00 (target <= 2)",
        "bare wake-up between two processes: p50 3.0 µs, p99 9.0 µs",
        "list_locks over 1000 locks 9000 KiB; `scope-lock list` over them 9500 KiB",
        "      8     2.40 ms     9.60 ms    21.60 ms     3/103    200.0 µs    800.0 µs    250.0 µs     1.00 ms     20.0 µs     80.0 µs     3/103",
        "  met  P3 handoff p99, 1 waiters: ours/fair floor: 1.50 (target <= 3)",
    ] {
        assert!(table.contains(want), "missing {want:?} in\n{table}");
    }
}

#[test]
fn the_json_keeps_the_measurements_and_adds_the_ratios() {
    let json = report().json();
    assert_eq!(json["measured"], sample());
    assert_eq!(json["context"]["commit"], "abc1234");
    let targets = json["derived"]["targets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let list = targets.iter().find(|t| {
        t["what"]
            .as_str()
            .is_some_and(|w| w.starts_with("list_locks"))
    });
    assert_eq!(list.map(|t| t["ratio"].clone()), Some(json!(1.111)));
    assert_eq!(list.map(|t| t["met"].clone()), Some(json!(false)));
    let split = &json["derived"]["decomposition"];
    assert_eq!(split["handoff"][1]["ours_per_protocol_p50"], json!(9.6));
    assert_eq!(split["handoff"][1]["protocol_per_fair_p50"], json!(1.25));
    assert_eq!(split["contended"][0]["ours_per_protocol"], json!(0.8));
    assert_eq!(split["p1_ladder"][0]["rungs"][1]["rung"], json!("sentinel"));
    assert_eq!(split["p1_ladder"][0]["rungs"][1]["per_floor"], json!(1.3));
}

#[test]
fn a_report_without_a_section_is_an_error_that_names_it() {
    let mut broken = sample();
    broken["contended"] = Value::Null;
    let err = Report::new(broken, Value::Null)
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains("contended")),
        "{err:?}"
    );
}

#[test]
fn a_run_of_some_parts_shows_only_those() -> anyhow::Result<()> {
    let mut partial = sample();
    for part in ["held", "scope_size", "contended"] {
        partial[part] = json!([]);
    }
    partial["memory"] = Value::Null;
    let table = Report::new(partial, Value::Null)?.table();
    assert!(table.contains("P3 handoff p99, 8 waiters"), "{table}");
    for absent in ["P1/P2", "P4 contended", "P5", "memory (peak RSS)"] {
        assert!(!table.contains(absent), "{absent:?} in\n{table}");
    }
    Ok(())
}

#[test]
fn durations_pick_their_unit() {
    assert_eq!(duration(12.34), "12.3 µs");
    assert_eq!(duration(12_340.0), "12.34 ms");
    assert_eq!(duration(2_900_000.0), "2.90 s");
    assert_eq!(duration(f64::NAN), "?");
}
