//! The etcd part of a report: our scope lock on etcd beside etcd's own single-key lock and a
//! bare transaction, measured on one member the run started.

use std::fmt::Write as _;

use anyhow::Context;
use serde_json::Value;

use super::{Timing, duration, field, table};

/// How much a scope lock on etcd may cost: about one etcd transaction more than etcd's own
/// single-key lock (issue 19), for an acquire+release and for each contended hold. "About":
/// the ratio to (lock + one transaction) may exceed 1 by this much, a shared machine's noise.
pub(crate) const TARGET_ETCD: f64 = 1.1;

/// What the run says about etcd.
pub(crate) enum EtcdPart {
    /// `--only` left it out.
    NotRun,
    /// There was no etcd to run: why, and how to install it.
    Skipped(String),
    Measured(EtcdFigures),
}

pub(crate) struct EtcdFigures {
    pub(crate) server: String,
    pub(crate) ours: Timing,
    pub(crate) lock: Timing,
    pub(crate) txn: Timing,
    /// Per acquire+release (or per transaction), for each contender.
    pub(crate) round_trips: Vec<(&'static str, Counters)>,
    pub(crate) contended: Vec<EtcdContendedRow>,
}

/// N processes on one scope (ours) or one key (etcd's lock): holds per second, best and median.
pub(crate) struct EtcdContendedRow {
    pub(crate) processes: u64,
    pub(crate) ours: (f64, f64),
    pub(crate) lock: (f64, f64),
    /// Requests per hold in the last round, by the member's metrics, for each side.
    pub(crate) requests: [(&'static str, Counters); 2],
}

/// `(counter, per cycle or per hold)`, in the order the member's metrics list them.
pub(crate) type Counters = Vec<(String, f64)>;

/// The counters of `value` (an object of counter to number; anything else is none).
fn counters(value: &Value) -> Counters {
    value.as_object().map_or_else(Vec::new, |all| {
        all.iter()
            .map(|(counter, per)| (counter.clone(), per.as_f64().unwrap_or(f64::NAN)))
            .collect()
    })
}

fn write_counters(w: &mut String, indent: &str, all: &[(&'static str, Counters)]) {
    for (name, counters) in all {
        let list: Vec<String> = counters
            .iter()
            .map(|(counter, per)| format!("{counter} {per:.2}"))
            .collect();
        let _ = writeln!(w, "{indent}{name:<9} {}", list.join(", "));
    }
}

impl EtcdPart {
    pub(crate) fn from(value: &Value) -> anyhow::Result<Self> {
        if value.is_null() {
            return Ok(Self::NotRun);
        }
        if let Some(why) = value["skipped"].as_str() {
            return Ok(Self::Skipped(why.to_owned()));
        }
        let cycle = &value["acquire_release"];
        let mut round_trips = Vec::new();
        for (key, name) in [
            ("ours", "ours"),
            ("etcd_lock", "etcd lock"),
            ("txn", "one txn"),
        ] {
            let measured = &value["round_trips"][key];
            if !measured.is_object() {
                anyhow::bail!("etcd: no round_trips.{key} in {value}");
            }
            round_trips.push((name, counters(measured)));
        }
        let mut contended = Vec::new();
        for row in value["contended"]
            .as_array()
            .with_context(|| format!("etcd: no contended list in {value}"))?
        {
            let rate = |side: &str| -> anyhow::Result<(f64, f64)> {
                Ok((
                    field(&row[side], "best_per_s", "etcd contended")?,
                    field(&row[side], "median_per_s", "etcd contended")?,
                ))
            };
            contended.push(EtcdContendedRow {
                processes: row["processes"]
                    .as_u64()
                    .with_context(|| format!("etcd: no processes in {row}"))?,
                ours: rate("ours")?,
                lock: rate("etcd_lock")?,
                requests: [
                    ("ours", counters(&row["requests_per_hold"]["ours"])),
                    (
                        "etcd lock",
                        counters(&row["requests_per_hold"]["etcd_lock"]),
                    ),
                ],
            });
        }
        Ok(Self::Measured(EtcdFigures {
            server: value["server"].as_str().unwrap_or("?").to_owned(),
            ours: Timing::from(&cycle["ours"], "etcd.acquire_release.ours")?,
            lock: Timing::from(&cycle["etcd_lock"], "etcd.acquire_release.etcd_lock")?,
            txn: Timing::from(&cycle["txn"], "etcd.acquire_release.txn")?,
            round_trips,
            contended,
        }))
    }

    /// The table's etcd section (a loud line when it was skipped, nothing when not run).
    pub(crate) fn table(&self, w: &mut String) {
        let figures = match self {
            Self::NotRun => return,
            Self::Skipped(why) => {
                let _ = writeln!(
                    w,
                    "\n!!! etcd: NOT MEASURED, the etcd rows are missing from this run: {why}"
                );
                return;
            }
            Self::Measured(figures) => figures,
        };
        let _ = writeln!(
            w,
            "\netcd {}: one member started by the bench, on this machine; acquire+release\n\
             (ours: EtcdLockManager, one scope; etcd lock: etcd-client's lock+unlock of one key under a lease;\n\
             one txn: a compare and a put under a lease)",
            figures.server
        );
        let _ = writeln!(
            w,
            "{:>10} {:>7}  {:>10} {:>7}  {:>10} {:>7}  {:>14}",
            "ours", "spread", "etcd lock", "spread", "one txn", "spread", "ours/(lock+txn)"
        );
        let _ = writeln!(
            w,
            "{:>10} {:>6.0}%  {:>10} {:>6.0}%  {:>10} {:>6.0}%  {:>14.2}",
            duration(figures.ours.best),
            figures.ours.spread(),
            duration(figures.lock.best),
            figures.lock.spread(),
            duration(figures.txn.best),
            figures.txn.spread(),
            figures.acquire_ratio(),
        );
        let _ = writeln!(
            w,
            "requests per cycle (gRPC messages received by method; raft writes), by the member's metrics:"
        );
        write_counters(w, "  ", &figures.round_trips);
        if !figures.contended.is_empty() {
            let _ = writeln!(
                w,
                "etcd contended throughput: N processes, one scope (ours) or one key (etcd lock), holds/s;\n\
                 time per hold against etcd lock's plus one txn"
            );
            let widths = [9, 8, 8, 9, 8, 9, 15];
            let names = [
                "processes",
                "ours",
                "median",
                "etcd lock",
                "median",
                "ours/lock",
                "ours/(lock+txn)",
            ]
            .map(str::to_owned);
            table::cells(w, &table::columns(&widths, &names));
            for row in &figures.contended {
                let mut texts = vec![row.processes.to_string()];
                texts.extend(table::rates(row.ours));
                texts.extend(table::rates(row.lock));
                texts.extend([
                    format!("{:.2}", row.ours.0 / row.lock.0),
                    format!("{:.2}", figures.hold_ratio(row)),
                ]);
                table::cells(w, &table::columns(&widths, &texts));
            }
            for row in &figures.contended {
                let _ = writeln!(
                    w,
                    "requests per hold at {} processes (a whole round, start-up included):",
                    row.processes
                );
                write_counters(w, "  ", &row.requests);
            }
        }
    }

    /// The etcd targets: (what, ratio, target, met).
    pub(crate) fn targets(&self) -> Vec<(String, f64, String, bool)> {
        let Self::Measured(figures) = self else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut push = |what: String, ratio: f64| {
            out.push((
                what,
                ratio,
                format!("<= {TARGET_ETCD}"),
                ratio <= TARGET_ETCD,
            ));
        };
        push(
            "etcd acquire+release: ours/(etcd lock + one txn)".to_owned(),
            figures.acquire_ratio(),
        );
        for row in &figures.contended {
            push(
                format!(
                    "etcd contended, {} processes: time per hold, ours/(etcd lock + one txn)",
                    row.processes
                ),
                figures.hold_ratio(row),
            );
        }
        out
    }
}

impl EtcdFigures {
    fn acquire_ratio(&self) -> f64 {
        self.ours.best / (self.lock.best + self.txn.best)
    }

    /// Ours' time per hold (µs) against etcd lock's plus one transaction.
    fn hold_ratio(&self, row: &EtcdContendedRow) -> f64 {
        (1e6 / row.ours.0) / (1e6 / row.lock.0 + self.txn.best)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;
    use crate::bench::render::Report;
    use crate::bench::render::tests::{report, sample as report_sample};

    /// The driver's etcd section with made-up figures.
    pub(crate) fn sample() -> Value {
        let timing = |best: f64| json!({"best_us": best, "median_us": best * 1.1, "worst_us": best * 2.0, "rounds": 3, "batch": 10});
        let rate = |best: f64| json!({"best_per_s": best, "median_per_s": best - 1.0, "worst_per_s": 1.0, "rounds": 3});
        json!({
            "server": "3.5.1",
            "acquire_release": {"ours": timing(1200.0), "etcd_lock": timing(800.0), "txn": timing(400.0)},
            "round_trips": {
                "cycles": 200,
                "ours": {"KV/Range": 1.0, "KV/Txn": 2.0, "writes committed": 2.0},
                "etcd_lock": {"Lock/Lock": 1.0, "Lock/Unlock": 1.0, "writes committed": 2.0},
                "txn": {"KV/Txn": 1.0, "writes committed": 1.0},
            },
            "contended": [
                {"processes": 2, "ours": rate(100.0), "etcd_lock": rate(100.0),
                 "requests_per_hold": {"ours": {"KV/Range": 3.0}, "etcd_lock": {"Lock/Lock": 1.0}}},
                {"processes": 8, "ours": rate(50.0), "etcd_lock": rate(100.0),
                 "requests_per_hold": {"ours": {"KV/Range": 4.0}, "etcd_lock": {"Lock/Lock": 1.0}}},
            ],
            "hold_us": 1000,
        })
    }

    #[test]
    fn the_etcd_targets_allow_one_transaction_more_than_etcds_lock() {
        let table = report().table();
        for want in [
            "   1.20 ms     10%    800.0 µs     10%    400.0 µs     10%            1.00",
            "  ours      KV/Range 1.00, KV/Txn 2.00, writes committed 2.00",
            "        8        50        49        100        99       0.50             1.92",
            "requests per hold at 8 processes (a whole round, start-up included):\n  ours      KV/Range 4.00",
            "  met  etcd acquire+release: ours/(etcd lock + one txn): 1.00 (target <= 1.1)",
            "  met  etcd contended, 2 processes: time per hold, ours/(etcd lock + one txn): 0.96 (target <= 1.1)",
            "  MISS etcd contended, 8 processes: time per hold, ours/(etcd lock + one txn): 1.92 (target <= 1.1)",
        ] {
            assert!(table.contains(want), "missing {want:?} in\n{table}");
        }
    }

    #[test]
    fn a_run_without_etcd_says_so_loudly_and_judges_nothing_of_it() -> anyhow::Result<()> {
        let mut skipped = report_sample();
        skipped["etcd"] = json!({"skipped": "no etcd server binary: install one"});
        let report = Report::new(skipped, Value::Null)?;
        let table = report.table();
        assert!(
            table.contains("!!! etcd: NOT MEASURED, the etcd rows are missing from this run: no etcd server binary: install one"),
            "{table}"
        );
        assert!(
            report
                .targets()
                .iter()
                .all(|(what, ..)| !what.starts_with("etcd"))
        );
        Ok(())
    }

    #[test]
    fn a_run_that_left_etcd_out_shows_nothing_of_it() -> anyhow::Result<()> {
        let mut without = report_sample();
        without["etcd"] = Value::Null;
        let table = Report::new(without, Value::Null)?.table();
        assert!(!table.contains("etcd"), "{table}");
        Ok(())
    }

    #[test]
    fn an_etcd_section_without_its_counts_is_an_error_that_names_them() {
        let mut broken = report_sample();
        broken["etcd"]["round_trips"] = Value::Null;
        let err = Report::new(broken, Value::Null)
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("round_trips.ours")),
            "{err:?}"
        );
    }
}
