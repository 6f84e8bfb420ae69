//! Judging: a pure function from the issue records and the collected outcomes to the report.
//! No files, no processes: everything it needs is in [`Outcomes`].

use crate::doc_paths::StalePath;
use crate::records::{Criterion, PreFixCheck, RecordFile};

use super::{
    outcomes::{Evidence, FailedTest, Outcome, Outcomes, TestResult},
    report::{
        BinaryReport, CriterionReport, PreFixReport, RecordReport, Report, Status, TestReport,
        Workspace,
    },
};

/// Where the records came from, and how the tests were run: carried into the report.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// The records' directory, as shown to people.
    pub(crate) issues_dir: String,
    pub(crate) soak: bool,
    /// The paths the records and docs name that the repository does not have
    /// ([`crate::doc_paths`]): each fails the gate.
    pub(crate) stale_paths: Vec<StalePath>,
}

/// Judges every record's criteria against `outcomes`, and the workspace's tests as a whole.
pub(crate) fn judge(context: &Context, files: &[RecordFile], outcomes: &Outcomes) -> Report {
    let records: Vec<RecordReport> = files.iter().map(|it| record(it, outcomes)).collect();
    let workspace = workspace(outcomes);
    let (criteria_passed, criteria_failed) =
        records
            .iter()
            .flat_map(|it| &it.criteria)
            .fold((0, 0), |(pass, fail), it| match it.status {
                Status::Pass => (pass + 1, fail),
                Status::Fail => (pass, fail + 1),
            });
    let passed = records.iter().all(|it| it.passed)
        && workspace.failures.is_empty()
        && workspace.failed == 0
        && workspace.doc_tests.ok
        && context.stale_paths.is_empty();
    Report {
        passed,
        soak: context.soak,
        issues_dir: context.issues_dir.clone(),
        unknown_issues: Vec::new(),
        criteria_passed,
        criteria_failed,
        workspace: Some(workspace),
        records,
        mutants: None,
        stale_paths: context.stale_paths.clone(),
    }
}

/// The report when the command line names records that do not exist: nothing is run.
pub(crate) fn unknown_issues(context: &Context, unknown: Vec<String>) -> Report {
    Report {
        passed: false,
        soak: context.soak,
        issues_dir: context.issues_dir.clone(),
        unknown_issues: unknown,
        criteria_passed: 0,
        criteria_failed: 0,
        workspace: None,
        records: Vec::new(),
        mutants: None,
        stale_paths: context.stale_paths.clone(),
    }
}

fn record(file: &RecordFile, outcomes: &Outcomes) -> RecordReport {
    let path = super::display_path(&file.path);
    let record = match &file.record {
        Ok(record) => record,
        Err(problem) => {
            return RecordReport {
                id: file.stem.clone(),
                title: None,
                file: path,
                passed: false,
                problem: Some(problem.clone()),
                criteria: Vec::new(),
            };
        }
    };
    let criteria: Vec<CriterionReport> = record
        .criteria
        .iter()
        .map(|it| criterion(it, outcomes))
        .collect();
    RecordReport {
        id: record.id.clone(),
        title: Some(record.title.clone()),
        file: path,
        passed: criteria.iter().all(|it| it.status == Status::Pass),
        problem: None,
        criteria,
    }
}

fn criterion(criterion: &Criterion, outcomes: &Outcomes) -> CriterionReport {
    let mut reasons = Vec::new();
    if criterion.tests.is_empty() && criterion.against_pre_fix.is_empty() {
        reasons.push("names no test: nothing proves it".to_owned());
    }
    if criterion.summary.trim().is_empty() {
        reasons.push("has an empty summary".to_owned());
    }
    let tests = criterion
        .tests
        .iter()
        .map(|test| must_pass(test, outcomes, &mut reasons))
        .collect();
    let against_pre_fix = criterion
        .against_pre_fix
        .iter()
        .map(|check| must_fail_on_pre_fix(check, outcomes, &mut reasons))
        .collect();
    CriterionReport {
        id: criterion.id.clone(),
        summary: criterion.summary.clone(),
        status: if reasons.is_empty() {
            Status::Pass
        } else {
            Status::Fail
        },
        reasons,
        tests,
        against_pre_fix,
    }
}

/// A test in `tests`: it must exist, be unambiguous, and pass.
fn must_pass(test: &str, outcomes: &Outcomes, reasons: &mut Vec<String>) -> TestReport {
    let mut report = TestReport {
        test: test.to_owned(),
        outcome: None,
        message: None,
        evidence: None,
        evidence_error: None,
    };
    match outcomes.resolve(test) {
        Err(why) => reasons.push(why),
        Ok(found) => {
            let result = found.result;
            report.outcome = Some(result.outcome);
            report.message.clone_from(&result.message);
            (report.evidence, report.evidence_error) = evidence(result);
            if result.outcome != Outcome::Passed {
                reasons.push(format!("{test} {}", result.outcome.as_str()));
            }
        }
    }
    report
}

/// An `against_pre_fix` test: it must fail on the pre-fix port, saying its symptom, and pass on
/// the fix; otherwise its failing proves nothing about the bug.
fn must_fail_on_pre_fix(
    check: &PreFixCheck,
    outcomes: &Outcomes,
    reasons: &mut Vec<String>,
) -> PreFixReport {
    let test = &check.test;
    let mut report = PreFixReport {
        test: test.clone(),
        symptom: check.symptom.clone(),
        outcome: None,
        symptom_found: false,
        fixed_outcome: None,
        message: None,
        evidence: None,
        evidence_error: None,
    };
    if check.symptom.is_empty() {
        reasons.push(format!("{test}: the symptom is empty"));
    }
    let found = match outcomes.resolve(test) {
        Ok(found) => found,
        Err(why) => {
            reasons.push(why);
            return report;
        }
    };
    match outcomes.pre_fix.get(test) {
        None => reasons.push(format!("{test}: was not run on the pre-fix port")),
        Some(pre_fix) => {
            let outcome = pre_fix.result.outcome;
            report.outcome = Some(outcome);
            report.symptom_found =
                !check.symptom.is_empty() && pre_fix.output.contains(&check.symptom);
            report.message.clone_from(&pre_fix.result.message);
            (report.evidence, report.evidence_error) = evidence(&pre_fix.result);
            if outcome != Outcome::Failed {
                reasons.push(format!(
                    "{test}: {} on the pre-fix port: the suite would not catch the bug's return",
                    outcome.as_str()
                ));
            } else if !report.symptom_found {
                reasons.push(format!(
                    "{test}: failed on the pre-fix port, but its output never says {:?}: the suite would not catch the bug's return",
                    check.symptom
                ));
            }
        }
    }
    let fixed = found.result.outcome;
    report.fixed_outcome = Some(fixed);
    if fixed != Outcome::Passed {
        reasons.push(format!(
            "{test}: {} on the fix too, so its failing on the pre-fix port proves nothing",
            fixed.as_str()
        ));
    }
    report
}

fn evidence(result: &TestResult) -> (Option<Evidence>, Option<String>) {
    match &result.evidence {
        Some(Ok(evidence)) => (Some(evidence.clone()), None),
        Some(Err(err)) => (None, Some(err.clone())),
        None => (None, None),
    }
}

/// The workspace's tests as a whole: every failure counts, named by a criterion or not.
fn workspace(outcomes: &Outcomes) -> Workspace {
    let mut workspace = Workspace {
        doc_tests: outcomes.doc_tests.clone(),
        ..Workspace::default()
    };
    for target in &outcomes.targets {
        let id = target.id_name();
        let (mut passed, mut failed, mut ignored) = (0, 0, 0);
        for (name, result) in &target.tests {
            let message = match result.outcome {
                Outcome::Passed => {
                    passed += 1;
                    continue;
                }
                Outcome::Ignored => {
                    ignored += 1;
                    continue;
                }
                Outcome::Failed | Outcome::DidNotRun => result.message.clone().unwrap_or_default(),
                Outcome::DidNotReport => {
                    "did not report an outcome (did the binary crash?)".to_owned()
                }
            };
            failed += 1;
            workspace.failures.push(FailedTest {
                test: format!("{id}::{name}"),
                message,
            });
        }
        if let Some(problem) = &target.problem {
            workspace.failures.push(FailedTest {
                test: format!("{id} ({} {})", target.package, target.kind),
                message: problem.clone(),
            });
        }
        workspace.passed += passed;
        workspace.failed += failed;
        workspace.ignored += ignored;
        workspace.binaries.push(BinaryReport {
            package: target.package.clone(),
            target: target.target.clone(),
            kind: target.kind.clone(),
            executable: target.executable.clone(),
            tests: target.tests.len(),
            passed,
            failed,
            ignored,
            seconds: (target.seconds * 10.0).round() / 10.0,
            problem: target.problem.clone(),
        });
    }
    workspace
}

#[cfg(test)]
mod tests;
