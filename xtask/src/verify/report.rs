//! What judge concludes: the report, as data. `render` shows it; its JSON form
//! (target/verify/report.json) is these types serialised.

use serde::{Serialize, Serializer};

use super::outcomes::{DocTests, Evidence, FailedTest, Outcome};
use crate::doc_paths::StalePath;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub(crate) enum Status {
    Pass,
    Fail,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// The gate's verdict: every criterion, workspace test and doc test passed.
    pub(crate) passed: bool,
    pub(crate) soak: bool,
    pub(crate) issues_dir: String,
    /// Issue ids named on the command line that have no record.
    pub(crate) unknown_issues: Vec<String>,
    pub(crate) criteria_passed: usize,
    pub(crate) criteria_failed: usize,
    /// `None` when nothing was run (an unknown issue stops verify before it builds).
    pub(crate) workspace: Option<Workspace>,
    pub(crate) records: Vec<RecordReport>,
    /// The summary of the latest `cargo xtask mutants` run, when it left a report in the
    /// target directory. Shown, never judged: it may be older than the tree.
    pub(crate) mutants: Option<String>,
    /// Paths that a record or a doc names and the repository does not have.
    pub(crate) stale_paths: Vec<StalePath>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Workspace {
    pub(crate) passed: usize,
    pub(crate) failed: usize,
    pub(crate) ignored: usize,
    pub(crate) binaries: Vec<BinaryReport>,
    /// Every workspace test that failed or did not report, whether or not a criterion names it.
    pub(crate) failures: Vec<FailedTest>,
    pub(crate) doc_tests: DocTests,
}

#[derive(Debug, Serialize)]
pub(crate) struct BinaryReport {
    pub(crate) package: String,
    pub(crate) target: String,
    pub(crate) kind: String,
    pub(crate) executable: String,
    pub(crate) tests: usize,
    pub(crate) passed: usize,
    pub(crate) failed: usize,
    pub(crate) ignored: usize,
    pub(crate) seconds: f64,
    /// Set when the binary could not be listed or exited badly without naming a failed test.
    pub(crate) problem: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct RecordReport {
    pub(crate) id: String,
    pub(crate) title: Option<String>,
    pub(crate) file: String,
    pub(crate) passed: bool,
    /// Why the record as a whole could not be judged (unreadable front matter, ...).
    pub(crate) problem: Option<String>,
    pub(crate) criteria: Vec<CriterionReport>,
}

#[derive(Debug, Serialize)]
pub(crate) struct CriterionReport {
    pub(crate) id: String,
    pub(crate) summary: String,
    pub(crate) status: Status,
    /// Why it failed, one sentence each.
    pub(crate) reasons: Vec<String>,
    pub(crate) tests: Vec<TestReport>,
    pub(crate) against_pre_fix: Vec<PreFixReport>,
}

#[derive(Debug, Serialize)]
pub(crate) struct TestReport {
    pub(crate) test: String,
    /// `None` (shown as "unknown") when the id names no test, or more than one.
    #[serde(serialize_with = "outcome_or_unknown")]
    pub(crate) outcome: Option<Outcome>,
    /// First line of the panic message when it failed.
    pub(crate) message: Option<String>,
    pub(crate) evidence: Option<Evidence>,
    /// Set when the evidence file exists but is not a JSON object.
    pub(crate) evidence_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct PreFixReport {
    pub(crate) test: String,
    pub(crate) symptom: String,
    /// Outcome of the run with `SCOPE_LOCK_IMPL=pre-fix` (should be "failed").
    #[serde(serialize_with = "outcome_or_unknown")]
    pub(crate) outcome: Option<Outcome>,
    pub(crate) symptom_found: bool,
    /// Outcome of the same test in the ordinary run on the fix (should be "passed").
    #[serde(serialize_with = "outcome_or_unknown")]
    pub(crate) fixed_outcome: Option<Outcome>,
    pub(crate) message: Option<String>,
    pub(crate) evidence: Option<Evidence>,
    pub(crate) evidence_error: Option<String>,
}

/// The name shown for an outcome; "unknown" for none.
pub(crate) fn outcome_name(outcome: Option<Outcome>) -> &'static str {
    outcome.map_or("unknown", Outcome::as_str)
}

fn outcome_or_unknown<S: Serializer>(
    outcome: &Option<Outcome>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(outcome_name(*outcome))
}

/// A report with a passing and a failing criterion, an unknown issue and a failing test.
#[cfg(test)]
pub(crate) fn sample() -> Report {
    let evidence = Evidence::from_json(
        r#"{"workers": 8, "cycles": 24000, "holds": 5000, "overlaps": 0, "not_found": 0, "errors": 0}"#,
    )
    .ok();
    Report {
        passed: false,
        soak: false,
        issues_dir: "issues".into(),
        unknown_issues: vec!["BUG-9".into()],
        criteria_passed: 1,
        criteria_failed: 1,
        workspace: Some(Workspace {
            passed: 10,
            failed: 1,
            ignored: 0,
            binaries: Vec::new(),
            failures: vec![FailedTest {
                test: "bug_423::x".into(),
                message: "boom | bang".into(),
            }],
            doc_tests: DocTests {
                ok: true,
                passed: 2,
                ..DocTests::default()
            },
        }),
        mutants: Some("mutants: PASSED (the whole library, at abc1234): 9 caught".into()),
        stale_paths: vec![StalePath {
            file: "issues/SL-1.md".into(),
            line: 51,
            path: "crates/scope-lock/src/protocol.rs".into(),
        }],
        records: vec![RecordReport {
            id: "BUG-423".into(),
            title: Some("t".into()),
            file: "issues/BUG-423.md".into(),
            passed: false,
            problem: None,
            criteria: vec![
                CriterionReport {
                    id: "AC-4".into(),
                    summary: "eight processes never hold the same scope at once".into(),
                    status: Status::Pass,
                    reasons: vec![],
                    tests: vec![TestReport {
                        test: "bug_423::eight_processes_never_hold_at_once".into(),
                        outcome: Some(Outcome::Passed),
                        message: None,
                        evidence: evidence.clone(),
                        evidence_error: None,
                    }],
                    against_pre_fix: vec![PreFixReport {
                        test: "bug_423::eight_processes_never_hold_at_once".into(),
                        symptom: "two holders".into(),
                        outcome: Some(Outcome::Failed),
                        symptom_found: true,
                        fixed_outcome: Some(Outcome::Passed),
                        message: Some("two holders at once".into()),
                        evidence: Evidence::from_json(r#"{"overlaps": 1203}"#).ok(),
                        evidence_error: None,
                    }],
                },
                CriterionReport {
                    id: "AC-9".into(),
                    summary: "bogus".into(),
                    status: Status::Fail,
                    reasons: vec!["no test `nope` in scope_lock".into()],
                    tests: vec![
                        TestReport {
                            test: "scope_lock::nope".into(),
                            outcome: None,
                            message: None,
                            evidence: None,
                            evidence_error: None,
                        },
                        TestReport {
                            test: "scope_lock::record::tests::b".into(),
                            outcome: Some(Outcome::Failed),
                            message: Some("assertion failed".into()),
                            evidence: None,
                            evidence_error: Some("expected value at line 1 column 1".into()),
                        },
                    ],
                    against_pre_fix: vec![],
                },
            ],
        }],
    }
}
