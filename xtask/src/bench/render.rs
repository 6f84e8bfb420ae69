//! The driver's measurements turned into ratios, targets and a terminal table.
//!
//! Every ratio divides ours by a baseline measured in the same run, interleaved with ours,
//! best round against best round (the least disturbed sample of each). The spread shown is how
//! far the median round lies above the best.

use anyhow::Context;
use serde_json::{Value, json};

mod etcd;
mod table;

pub(crate) use etcd::EtcdPart;

/// A report: what the driver measured, the run's context, and what follows from them.
pub(crate) struct Report {
    measured: Value,
    context: Value,
    pub(crate) held: Vec<HeldRow>,
    pub(crate) scope_size: Vec<ScopeRow>,
    pub(crate) contended: Vec<ContendedRow>,
    pub(crate) handoff: Vec<HandoffRow>,
    /// The bare wake-up between two processes (half a pipe round trip), when P3 ran.
    pub(crate) wakeup: Option<Handoffs>,
    pub(crate) etcd: EtcdPart,
}

/// A timing: best and median of rounds, µs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Timing {
    pub(crate) best: f64,
    pub(crate) median: f64,
}

/// `value[key]` as a number, or an error naming `what` and the key.
fn field(value: &Value, key: &str, what: &str) -> anyhow::Result<f64> {
    value[key]
        .as_f64()
        .with_context(|| format!("{what}: no {key} in {value}"))
}

impl Timing {
    fn from(value: &Value, what: &str) -> anyhow::Result<Self> {
        let get = |key: &str| field(value, key, what);
        Ok(Self {
            best: get("best_us")?,
            median: get("median_us")?,
        })
    }

    /// How far the median lies above the best, in percent.
    fn spread(self) -> f64 {
        (self.median / self.best - 1.0) * 100.0
    }
}

/// P1/P2 at one count of held locks.
pub(crate) struct HeldRow {
    pub(crate) held: u64,
    pub(crate) ours: Timing,
    pub(crate) floor: Timing,
    pub(crate) pre_fix: Timing,
    pub(crate) list_ours: Timing,
    pub(crate) list_floor: Timing,
    /// The floor plus each guarantee it leaves out, one rung at a time, lowest first:
    /// (rung, timing). Empty in reports from before the ladder.
    pub(crate) ladder: Vec<(String, Timing)>,
}

/// P5: one scope size against holders of one scope size.
pub(crate) struct ScopeRow {
    pub(crate) ours_paths: u64,
    pub(crate) holder_paths: u64,
    pub(crate) holders: u64,
    pub(crate) ours: Timing,
    pub(crate) floor: Timing,
}

/// P4 at one number of processes: holds per second, best and median of rounds.
pub(crate) struct ContendedRow {
    pub(crate) processes: u64,
    pub(crate) ours: (f64, f64),
    pub(crate) mutex: (f64, f64),
    /// The fair floor: the same processes passing the turn in FIFO order round a ring of FIFOs.
    pub(crate) ring: (f64, f64),
    /// The protocol's floor: what this protocol's guarantees need at each turn, done bare
    /// (`bench-driver/protocol_floor.rs`). `None` in reports from before it.
    pub(crate) protocol: Option<(f64, f64)>,
}

/// P3 at one number of waiters, for one side.
pub(crate) struct Handoffs {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
    pub(crate) count: u64,
    pub(crate) retakes: u64,
    /// The handoff time (µs) at each whole percent, 0 to 100.
    pub(crate) cdf: Vec<f64>,
}

impl Handoffs {
    fn from(value: &Value, what: &str) -> anyhow::Result<Self> {
        let get = |key: &str| field(value, key, what);
        Ok(Self {
            p50: get("p50_us")?,
            p99: get("p99_us")?,
            max: get("max_us")?,
            count: value["handoffs"].as_u64().unwrap_or(0),
            retakes: value["retakes"].as_u64().unwrap_or(0),
            cdf: value["cdf_us"]
                .as_array()
                .map(|all| all.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default(),
        })
    }
}

/// P3: one holder and `waiters` waiters taking turns.
pub(crate) struct HandoffRow {
    pub(crate) waiters: u64,
    pub(crate) ours: Handoffs,
    pub(crate) mutex: Handoffs,
    /// The fair floor's handoff: a token written into the next process's FIFO.
    pub(crate) ring: Handoffs,
    /// The protocol floor's handoff (see [`ContendedRow::protocol`]).
    pub(crate) protocol: Option<Handoffs>,
}

/// How close to the floors our costs should stay (issue 22): checked here and reported, never
/// asserted in a test, since timings depend on the machine and its load.
pub(crate) const TARGET_ACQUIRE: f64 = 1.2;
pub(crate) const TARGET_LIST_PER_LOCK: f64 = 1.1;
/// P4: ours at least this share of the fair floor's holds per second, at every fleet size.
pub(crate) const TARGET_CONTENDED: f64 = 0.9;
/// P3: ours at most these multiples of the fair floor's handoff.
pub(crate) const TARGET_HANDOFF_P50: f64 = 2.0;
pub(crate) const TARGET_HANDOFF_P99: f64 = 3.0;

impl Report {
    pub(crate) fn new(measured: Value, context: Value) -> anyhow::Result<Self> {
        let rows = |key: &str| -> anyhow::Result<Vec<Value>> {
            measured[key]
                .as_array()
                .cloned()
                .with_context(|| format!("the driver's report has no {key} list"))
        };
        let number = |row: &Value, key: &str| {
            row[key]
                .as_u64()
                .with_context(|| format!("no {key} in {row}"))
        };
        let mut held = Vec::new();
        for row in rows("held")? {
            let (cycle, list) = (&row["acquire_release"], &row["list_locks"]);
            held.push(HeldRow {
                held: number(&row, "held")?,
                ours: Timing::from(&cycle["ours"], "acquire_release.ours")?,
                floor: Timing::from(&cycle["floor"], "acquire_release.floor")?,
                pre_fix: Timing::from(&cycle["pre_fix"], "acquire_release.pre_fix")?,
                list_ours: Timing::from(&list["ours"], "list_locks.ours")?,
                list_floor: Timing::from(&list["floor"], "list_locks.floor")?,
                ladder: match cycle["ladder"].as_array() {
                    None => Vec::new(),
                    Some(rungs) => rungs
                        .iter()
                        .map(|timing| {
                            let rung = timing["rung"].as_str().unwrap_or("?").to_owned();
                            Ok((rung, Timing::from(timing, "acquire_release.ladder")?))
                        })
                        .collect::<anyhow::Result<_>>()?,
                },
            });
        }
        let mut scope_size = Vec::new();
        for row in rows("scope_size")? {
            scope_size.push(ScopeRow {
                ours_paths: number(&row, "ours_paths")?,
                holder_paths: number(&row, "holder_paths")?,
                holders: number(&row, "holders")?,
                ours: Timing::from(&row["ours"], "scope_size.ours")?,
                floor: Timing::from(&row["floor"], "scope_size.floor")?,
            });
        }
        let mut contended = Vec::new();
        for row in rows("contended")? {
            let rate = |side: &str| -> anyhow::Result<(f64, f64)> {
                let get = |key: &str| {
                    row[side][key]
                        .as_f64()
                        .with_context(|| format!("no {side}.{key} in {row}"))
                };
                Ok((get("best_per_s")?, get("median_per_s")?))
            };
            contended.push(ContendedRow {
                processes: number(&row, "processes")?,
                ours: rate("ours")?,
                mutex: rate("mutex")?,
                ring: rate("ring")?,
                protocol: if row["protocol"].is_null() {
                    None
                } else {
                    Some(rate("protocol")?)
                },
            });
        }
        let mut handoff = Vec::new();
        for row in rows("handoff")? {
            handoff.push(HandoffRow {
                waiters: number(&row, "waiters")?,
                ours: Handoffs::from(&row["ours"], "handoff.ours")?,
                mutex: Handoffs::from(&row["mutex"], "handoff.mutex")?,
                ring: Handoffs::from(&row["ring"], "handoff.ring")?,
                protocol: match &row["protocol"] {
                    Value::Null => None,
                    value => Some(Handoffs::from(value, "handoff.protocol")?),
                },
            });
        }
        let wakeup = match &measured["wakeup"] {
            Value::Null => None,
            value => Some(Handoffs::from(value, "wakeup")?),
        };
        let etcd = EtcdPart::from(&measured["etcd"])?;
        Ok(Self {
            measured,
            context,
            etcd,
            held,
            scope_size,
            contended,
            handoff,
            wakeup,
        })
    }

    /// Cost of one more held lock between consecutive counts: (ours, floor) µs per lock.
    pub(crate) fn per_held_lock(&self) -> Vec<(u64, u64, f64, f64)> {
        self.held
            .windows(2)
            .map(|pair| {
                let (a, b) = (&pair[0], &pair[1]);
                let n = (b.held - a.held).max(1) as f64;
                (
                    a.held,
                    b.held,
                    (b.ours.best - a.ours.best) / n,
                    (b.floor.best - a.floor.best) / n,
                )
            })
            .collect()
    }

    /// P5: ours/floor at the largest scopes, and at 1-path scopes against holders of 1 path.
    /// The floor's own growth with scope size is the data there is to read; ours should add
    /// nothing to it.
    fn scope_ratios(&self) -> Option<(f64, f64)> {
        let ratio = |row: &ScopeRow| row.ours.best / row.floor.best;
        let base = self
            .scope_size
            .iter()
            .find(|row| row.ours_paths == 1 && row.holder_paths == 1)?;
        let top = self
            .scope_size
            .iter()
            .max_by_key(|row| (row.ours_paths * row.holder_paths, row.ours_paths))?;
        Some((ratio(top), ratio(base)))
    }

    fn largest_list(&self) -> Option<&HeldRow> {
        self.held
            .iter()
            .filter(|row| row.held > 0)
            .max_by_key(|row| row.held)
    }

    /// Each target: (what, measured ratio, target, met).
    pub(crate) fn targets(&self) -> Vec<(String, f64, String, bool)> {
        let mut out = Vec::new();
        for row in &self.held {
            let ratio = row.ours.best / row.floor.best;
            out.push((
                format!("P1/P2 acquire+release, {} held: ours/floor", row.held),
                ratio,
                format!("<= {TARGET_ACQUIRE}"),
                ratio <= TARGET_ACQUIRE,
            ));
        }
        if let Some(row) = self.largest_list() {
            let ratio = row.list_ours.best / row.list_floor.best;
            out.push((
                format!("list_locks per held lock, {} held: ours/floor", row.held),
                ratio,
                format!("<= {TARGET_LIST_PER_LOCK}"),
                ratio <= TARGET_LIST_PER_LOCK,
            ));
        }
        for row in &self.contended {
            let ratio = row.ours.0 / row.ring.0;
            out.push((
                format!(
                    "P4 throughput, {} processes: ours/fair floor",
                    row.processes
                ),
                ratio,
                format!(">= {TARGET_CONTENDED}"),
                ratio >= TARGET_CONTENDED,
            ));
        }
        for row in &self.handoff {
            for (quantile, ours, floor, target) in [
                ("p50", row.ours.p50, row.ring.p50, TARGET_HANDOFF_P50),
                ("p99", row.ours.p99, row.ring.p99, TARGET_HANDOFF_P99),
            ] {
                let ratio = ours / floor;
                out.push((
                    format!(
                        "P3 handoff {quantile}, {} waiters: ours/fair floor",
                        row.waiters
                    ),
                    ratio,
                    format!("<= {target}"),
                    ratio <= target,
                ));
            }
        }
        if let Some((top, base)) = self.scope_ratios() {
            out.push((
                format!("P5 ours/floor at the largest scopes (at 1-path scopes: {base:.2})"),
                top,
                format!("<= {base:.2}"),
                top <= base,
            ));
        }
        out.extend(self.etcd.targets());
        out
    }

    /// `report.json`: the measurements, the context and the derived ratios.
    pub(crate) fn json(&self) -> Value {
        let targets: Vec<Value> = self
            .targets()
            .into_iter()
            .map(|(what, ratio, target, met)| {
                json!({"what": what, "ratio": round3(ratio), "target": target, "met": met})
            })
            .collect();
        let per_lock: Vec<Value> = self
            .per_held_lock()
            .into_iter()
            .map(|(from, to, ours, floor)| {
                json!({"from": from, "to": to, "ours_us": round3(ours), "floor_us": round3(floor)})
            })
            .collect();
        json!({
            "context": self.context,
            "measured": self.measured,
            "derived": {
                "targets": targets,
                "acquire_cost_per_held_lock": per_lock,
                "decomposition": self.decomposition(),
            },
        })
    }

    /// Ours against the protocol's floor beside ours against the fair floor (P3, P4), and
    /// P1's ladder as ratios to the floor: which part of each gap is the protocol's.
    pub(crate) fn decomposition(&self) -> Value {
        let handoff: Vec<Value> = self
            .handoff
            .iter()
            .filter_map(|row| {
                let protocol = row.protocol.as_ref()?;
                Some(json!({
                    "waiters": row.waiters,
                    "ours_per_protocol_p50": round3(row.ours.p50 / protocol.p50),
                    "ours_per_protocol_p99": round3(row.ours.p99 / protocol.p99),
                    "protocol_per_fair_p50": round3(protocol.p50 / row.ring.p50),
                    "protocol_per_fair_p99": round3(protocol.p99 / row.ring.p99),
                    "ours_per_fair_p50": round3(row.ours.p50 / row.ring.p50),
                    "ours_per_fair_p99": round3(row.ours.p99 / row.ring.p99),
                }))
            })
            .collect();
        let contended: Vec<Value> = self
            .contended
            .iter()
            .filter_map(|row| {
                let protocol = row.protocol?;
                Some(json!({
                    "processes": row.processes,
                    "ours_per_protocol": round3(row.ours.0 / protocol.0),
                    "protocol_per_fair": round3(protocol.0 / row.ring.0),
                    "ours_per_fair": round3(row.ours.0 / row.ring.0),
                }))
            })
            .collect();
        let ladder: Vec<Value> = self
            .held
            .iter()
            .filter(|row| !row.ladder.is_empty())
            .map(|row| {
                let rungs: Vec<Value> = row
                    .ladder
                    .iter()
                    .map(|(rung, timing)| {
                        json!({"rung": rung, "per_floor": round3(timing.best / row.floor.best)})
                    })
                    .collect();
                json!({
                    "held": row.held,
                    "rungs": rungs,
                    "ours_per_floor": round3(row.ours.best / row.floor.best),
                })
            })
            .collect();
        json!({"handoff": handoff, "contended": contended, "p1_ladder": ladder})
    }

    pub(crate) fn machine_line(&self) -> String {
        let m = &self.measured["machine"];
        format!(
            "{} CPUs ({}), Linux {}, load average {} before, {} after",
            m["cpus"],
            m["cpu_model"].as_str().unwrap_or("?"),
            m["kernel"].as_str().unwrap_or("?"),
            m["load_before"].as_str().unwrap_or("?"),
            m["load_after"].as_str().unwrap_or("?"),
        )
    }

    pub(crate) fn context_line(&self) -> String {
        format!(
            "commit {}, {}{}",
            self.context["commit"].as_str().unwrap_or("?"),
            self.context["rustc"].as_str().unwrap_or("?"),
            if self.measured["quick"] == true {
                ", --quick (smoke sizes: not for comparison)"
            } else {
                ""
            }
        )
    }
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A duration given in µs, in the unit that reads best.
pub(crate) fn duration(micros: f64) -> String {
    if !micros.is_finite() {
        "?".into()
    } else if micros.abs() >= 1e6 {
        format!("{:.2} s", micros / 1e6)
    } else if micros.abs() >= 1e3 {
        format!("{:.2} ms", micros / 1e3)
    } else {
        format!("{micros:.1} µs")
    }
}

#[cfg(test)]
pub(crate) mod tests;
