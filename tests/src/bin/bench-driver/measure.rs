//! Timing: contenders measured side by side, interleaved round by round, best of rounds.
//!
//! Each contender first runs once (warm-up, and an estimate of its cost), which sizes its
//! batch so that one sample takes about the target time. Then, round after round, each
//! contender times one batch, in an order that rotates every round, so that a burst of load
//! from elsewhere on the machine hits every contender alike. A sample is the batch's time
//! divided by its size; the report keeps the best (least disturbed), the median and the worst.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long one sample should take, and how many rounds to run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) sample: Duration,
    pub(crate) rounds: usize,
}

/// One operation to time; returns an error to abort the benchmark.
pub(crate) type Op<'a> = Box<dyn FnMut() -> Result<(), String> + 'a>;

/// Per-operation times of one contender, in microseconds, sorted.
#[derive(Debug, Clone)]
pub(crate) struct Samples {
    pub(crate) batch: u64,
    pub(crate) micros: Vec<f64>,
}

impl Samples {
    pub(crate) fn best(&self) -> f64 {
        self.micros.first().copied().unwrap_or(f64::NAN)
    }

    pub(crate) fn to_json(&self) -> Value {
        let n = self.micros.len();
        let median = if n == 0 {
            f64::NAN
        } else if n % 2 == 1 {
            self.micros[n / 2]
        } else {
            (self.micros[n / 2 - 1] + self.micros[n / 2]) / 2.0
        };
        json!({
            "best_us": round3(self.best()),
            "median_us": round3(median),
            "worst_us": round3(self.micros.last().copied().unwrap_or(f64::NAN)),
            "rounds": n,
            "batch": self.batch,
        })
    }
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Times `ops` interleaved, as described in the module documentation.
pub(crate) fn interleaved(plan: Plan, ops: &mut [Op<'_>]) -> Result<Vec<Samples>, String> {
    let mut batches = Vec::with_capacity(ops.len());
    for op in ops.iter_mut() {
        let started = Instant::now();
        op()?;
        let once = started.elapsed().max(Duration::from_micros(1));
        let batch = (plan.sample.as_nanos() / once.as_nanos()).clamp(1, 100_000);
        batches.push(u64::try_from(batch).unwrap_or(1));
    }
    let mut micros = vec![Vec::with_capacity(plan.rounds); ops.len()];
    for round in 0..plan.rounds {
        for k in 0..ops.len() {
            let which = (k + round) % ops.len();
            let started = Instant::now();
            for _ in 0..batches[which] {
                ops[which]()?;
            }
            let per_op = started.elapsed().as_secs_f64() * 1e6 / batches[which] as f64;
            micros[which].push(per_op);
        }
    }
    Ok(batches
        .into_iter()
        .zip(micros)
        .map(|(batch, mut micros)| {
            micros.sort_by(f64::total_cmp);
            Samples { batch, micros }
        })
        .collect())
}
