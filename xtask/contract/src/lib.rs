//! What `cargo xtask` and the test suites it runs agree on, defined once: the environment
//! variables that pass between them ([`mod@env`]) and the report `regression-worker repro`
//! prints for `cargo xtask repro` to read ([`FleetSummary`]).
//!
//! A crate of its own, depending on serde and serde_json alone, rather than a module of the
//! `regression` package: xtask must not depend on the code it judges. `cargo xtask verify` has
//! to build and report even when the library or the regression suite does not compile, and a
//! change to the suite should not rebuild the task runner.

use serde::{Deserialize, Serialize};

/// Environment variable names (and the values they take).
pub mod env {
    /// Which implementation the regression suite tests: [`IMPL_PRE_FIX`] for the port of the
    /// pre-fix code, the fix when unset (or `fixed`). `verify` sets it for its `against_pre_fix`
    /// runs and removes it everywhere else.
    pub const IMPL: &str = "SCOPE_LOCK_IMPL";
    /// The value of [`IMPL`] that selects the pre-fix port.
    pub const IMPL_PRE_FIX: &str = "pre-fix";

    /// A directory where tests leave their counts, `<test function name>.json`, one flat JSON
    /// object each, for `verify`'s report.
    pub const EVIDENCE_DIR: &str = "SCOPE_LOCK_EVIDENCE_DIR";

    /// Set to [`SOAK_ON`], the concurrency scenarios run ten times longer
    /// (`cargo xtask verify --soak`).
    pub const SOAK: &str = "SCOPE_LOCK_SOAK";
    /// The value of [`SOAK`] that turns soaking on.
    pub const SOAK_ON: &str = "1";

    /// A Python interpreter that has the package `scope_lock` and pytest installed, for
    /// `verify`'s run of the Python suite; unset, `verify` makes its own virtual environment.
    pub const PYTHON: &str = "SCOPE_LOCK_PYTHON";

    /// Set to `1`, the hostile tests (other pid namespaces, other users; they need root) skip
    /// themselves, loudly, instead of failing where they cannot run. `verify` removes it from
    /// every test run, so the gate fails rather than skips.
    pub const SKIP_HOSTILE: &str = "SCOPE_LOCK_SKIP_HOSTILE";

    /// Set to `1`, the etcd backend's tests fail where no etcd server binary can be found,
    /// instead of skipping loudly (`scope_lock::testing::etcd::REQUIRE_VAR` names the same
    /// variable). `verify` sets it for every test run: the gate proves the etcd backend or
    /// fails.
    pub const REQUIRE_ETCD: &str = "SCOPE_LOCK_REQUIRE_ETCD";

    /// A directory `cargo xtask verify` reads issue records from instead of `issues/`.
    pub const ISSUES_DIR: &str = "XTASK_ISSUES_DIR";
}

/// What one fleet run saw, summed over its processes: the regression worker's `repro` output
/// (one JSON line) and the source of the fleet tests' evidence. Keys serialise in this order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSummary {
    /// `fixed` or `pre-fix`.
    #[serde(rename = "impl")]
    pub implementation: Option<String>,
    /// Processes acquiring and releasing the same scope.
    pub workers: u64,
    /// Completed hold cycles (acquire, witness, probe, release).
    pub cycles: u64,
    /// Acquire attempts, including those refused.
    pub attempts: u64,
    /// Attempts that acquired.
    pub holds: u64,
    /// Attempts refused because the scope was busy.
    pub conflicts: u64,
    /// Releases that failed because the lock file was already gone.
    pub not_found_on_release: u64,
    /// Any other error of acquire or release.
    pub other_errors: u64,
    /// The first such error.
    pub first_error: Option<String>,
    /// Moments with two holders, by either of the witness's proofs.
    pub overlaps: u64,
    /// `enter` lines the witness saw while another hold was open.
    pub overlaps_by_order: u64,
    /// Hold intervals that began before an earlier one ended.
    pub overlaps_by_time: u64,
    /// The most holders at once.
    pub max_holders: u64,
    /// Complete holds the witness saw.
    pub witnessed_holds: u64,
    /// Witness events without their pair.
    pub unmatched_events: u64,
    /// Holds the witness saw with a fencing token.
    pub tokened_holds: u64,
    /// Holds whose token was not larger than every token before it.
    pub token_regressions: u64,
    /// Probes of a holder's lock file while it held.
    pub probes: u64,
    /// Probes that found the file missing or its flock free.
    pub unheld_probes: u64,
    /// Scans of the lock directory by the unlocked readers.
    pub scans: u64,
    /// Lock files those scans read.
    pub reads: u64,
    /// Reads the original's reader would reject (empty or partial JSON).
    pub partial_reads: u64,
    /// The first such read.
    pub first_partial: Option<String>,
    /// Wall time of the cycling phase.
    pub elapsed_ms: u64,
}

impl FleetSummary {
    /// As one flat JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!(self)
    }

    /// The keys of [`to_json`](Self::to_json) named in `keys`, nulls left out: the evidence
    /// of a test that judges only those.
    pub fn evidence(&self, keys: &[&str]) -> serde_json::Value {
        let all = self.to_json();
        let picked = keys
            .iter()
            .filter_map(|key| {
                let value = all.get(*key)?;
                (!value.is_null()).then(|| ((*key).to_owned(), value.clone()))
            })
            .collect();
        serde_json::Value::Object(picked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_round_trips_with_impl_as_its_first_key() -> Result<(), serde_json::Error> {
        let summary = FleetSummary {
            implementation: Some("pre-fix".into()),
            workers: 8,
            overlaps: 3,
            ..FleetSummary::default()
        };
        let json = serde_json::to_string(&summary)?;
        assert!(
            json.starts_with(r#"{"impl":"pre-fix","workers":8,"cycles":0,"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<FleetSummary>(&json)?, summary);
        Ok(())
    }

    #[test]
    fn evidence_picks_the_keys_asked_for_and_drops_nulls() {
        let summary = FleetSummary {
            workers: 8,
            overlaps: 3,
            ..FleetSummary::default()
        };
        assert_eq!(
            summary.evidence(&["overlaps", "first_error", "no_such_key", "workers"]),
            serde_json::json!({"overlaps": 3, "workers": 8})
        );
    }

    #[test]
    fn a_summary_with_a_key_it_does_not_know_is_refused() {
        let json = r#"{"impl":"fixed","workers":8,"cycle":1}"#;
        let err = serde_json::from_str::<FleetSummary>(json).err();
        assert!(
            err.is_some_and(|err| err.to_string().contains("unknown field `cycle`")),
            "a misspelt key must not read as zero"
        );
    }
}
