//! Judge's tests: records and outcomes built in memory, no files, no processes.

use std::{collections::BTreeMap, path::PathBuf};

use super::*;
use crate::{
    records::Record,
    verify::outcomes::{DocTests, PreFixRun, TargetRun},
};

fn target(name: &str, package: &str, tests: &[(&str, Outcome)]) -> TargetRun {
    TargetRun::sample(name, package, tests)
}

/// `bug_423` with a passing (with evidence), a failing and an ignored test, and two
/// binaries both called `twice`.
fn outcomes() -> Outcomes {
    let mut bug_423 = target(
        "bug_423",
        "regression",
        &[
            ("a", Outcome::Passed),
            ("b", Outcome::Failed),
            ("c", Outcome::Ignored),
        ],
    );
    if let Some(a) = bug_423.tests.get_mut("a") {
        a.evidence = Some(Evidence::from_json(r#"{"workers": 8, "overlaps": 0}"#));
    }
    if let Some(b) = bug_423.tests.get_mut("b") {
        b.message = Some("boom".into());
    }
    Outcomes {
        targets: vec![
            bug_423,
            target("twice", "p1", &[("x", Outcome::Passed)]),
            target("twice", "p2", &[("x", Outcome::Passed)]),
        ],
        doc_tests: DocTests {
            ok: true,
            ..DocTests::default()
        },
        pre_fix: BTreeMap::new(),
    }
}

fn criterion(tests: &[&str], against_pre_fix: &[(&str, &str)]) -> Criterion {
    Criterion {
        id: "AC-1".into(),
        summary: "s".into(),
        tests: tests.iter().map(|it| it.to_string()).collect(),
        against_pre_fix: against_pre_fix
            .iter()
            .map(|(test, symptom)| PreFixCheck {
                test: test.to_string(),
                symptom: symptom.to_string(),
            })
            .collect(),
    }
}

fn assert_fails_saying(report: &CriterionReport, want: &str) {
    assert_eq!(report.status, Status::Fail, "{:?}", report.reasons);
    assert!(
        report.reasons.iter().any(|it| it.contains(want)),
        "{:?} lacks {want:?}",
        report.reasons
    );
}

#[test]
fn a_criterion_passes_when_its_tests_pass_and_carries_their_evidence() {
    let report = super::criterion(&criterion(&["bug_423::a"], &[]), &outcomes());
    assert_eq!(report.status, Status::Pass, "{:?}", report.reasons);
    let evidence = report.tests[0].evidence.as_ref().map(|it| &it.0);
    assert_eq!(
        evidence.map(|it| it.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["workers".to_owned(), "overlaps".to_owned()])
    );
}

#[test]
fn a_criterion_fails_when_a_test_is_missing_failing_ignored_or_ambiguous() {
    for (tests, want) in [
        (&[][..], "names no test"),
        (&["bug_423::b"], "bug_423::b failed"),
        (&["bug_423::c"], "bug_423::c ignored"),
        (&["bug_423::nope"], "has no test nope"),
        (&["nowhere::a"], "no test binary is called nowhere"),
        (&["twice::x"], "ambiguous, 2 test binaries"),
        (&["just_a_name"], "is not a test id"),
    ] {
        let report = super::criterion(&criterion(tests, &[]), &outcomes());
        assert_fails_saying(&report, want);
    }
    let report = super::criterion(&criterion(&["bug_423::b"], &[]), &outcomes());
    assert_eq!(report.tests[0].message.as_deref(), Some("boom"));
    assert_eq!(report.tests[0].outcome, Some(Outcome::Failed));
}

fn with_pre_fix_run(outcome: Outcome, output: &str) -> Outcomes {
    let mut outcomes = outcomes();
    let mut result = TestResult::new(outcome);
    result.message = Some("first line".into());
    result.evidence = Some(Evidence::from_json(r#"{"overlaps": 3}"#));
    outcomes.pre_fix.insert(
        "bug_423::a".into(),
        PreFixRun {
            result,
            output: output.into(),
        },
    );
    outcomes
}

#[test]
fn a_pre_fix_check_passes_only_when_the_port_fails_with_the_symptom() {
    let check = criterion(&[], &[("bug_423::a", "two holders")]);
    let report = super::criterion(
        &check,
        &with_pre_fix_run(Outcome::Failed, "panicked: two holders at once"),
    );
    assert_eq!(report.status, Status::Pass, "{:?}", report.reasons);
    let pre_fix = &report.against_pre_fix[0];
    assert!(pre_fix.symptom_found);
    assert_eq!(
        (pre_fix.outcome, pre_fix.fixed_outcome),
        (Some(Outcome::Failed), Some(Outcome::Passed))
    );
    assert!(pre_fix.evidence.is_some());

    for (outcome, output, want) in [
        (Outcome::Passed, "", "passed on the pre-fix port"),
        (Outcome::DidNotRun, "", "did not run on the pre-fix port"),
        (
            Outcome::Failed,
            "assertion failed: NotFound",
            "its output never says \"two holders\"",
        ),
    ] {
        let report = super::criterion(&check, &with_pre_fix_run(outcome, output));
        assert_fails_saying(&report, want);
    }
    // Case-sensitive, as documented.
    let report = super::criterion(&check, &with_pre_fix_run(Outcome::Failed, "Two Holders"));
    assert_fails_saying(&report, "never says");
    // Never run there at all.
    assert_fails_saying(
        &super::criterion(&check, &outcomes()),
        "was not run on the pre-fix port",
    );
}

#[test]
fn a_pre_fix_check_fails_when_the_test_fails_on_the_fix_too() {
    let mut outcomes = with_pre_fix_run(Outcome::Failed, "two holders");
    let moved = outcomes.pre_fix.remove("bug_423::a");
    outcomes
        .pre_fix
        .extend(moved.map(|it| ("bug_423::b".to_owned(), it)));
    let check = criterion(&[], &[("bug_423::b", "two holders")]);
    let report = super::criterion(&check, &outcomes);
    assert_fails_saying(&report, "failed on the fix too");
    let empty = criterion(&[], &[("bug_423::a", "")]);
    let report = super::criterion(&empty, &with_pre_fix_run(Outcome::Failed, "x"));
    assert_fails_saying(&report, "the symptom is empty");
}

#[test]
fn crashed_binaries_and_unreported_tests_are_workspace_failures() {
    let mut crashed = target(
        "bug_423",
        "regression",
        &[("a", Outcome::Passed), ("b", Outcome::DidNotReport)],
    );
    crashed.problem = Some("exited with signal 6".into());
    let outcomes = Outcomes {
        targets: vec![crashed],
        doc_tests: DocTests {
            ok: true,
            ..DocTests::default()
        },
        pre_fix: BTreeMap::new(),
    };
    let workspace = workspace(&outcomes);
    assert_eq!((workspace.passed, workspace.failed), (1, 1));
    let failed: Vec<&str> = workspace
        .failures
        .iter()
        .map(|it| it.test.as_str())
        .collect();
    assert_eq!(failed, ["bug_423::b", "bug_423 (regression test)"]);
    assert_eq!(workspace.binaries[0].tests, 2);
}

fn file(stem: &str, record: Result<Record, String>) -> RecordFile {
    RecordFile {
        path: PathBuf::from(format!("issues/{stem}.md")),
        stem: stem.into(),
        record,
    }
}

#[test]
fn the_verdict_needs_every_criterion_every_test_and_the_doc_tests() {
    let context = Context {
        issues_dir: "issues".into(),
        soak: false,
        stale_paths: Vec::new(),
    };
    let good = || {
        file(
            "BUG-1",
            Ok(Record {
                id: "BUG-1".into(),
                title: "t".into(),
                criteria: vec![criterion(&["bug_423::a"], &[])],
            }),
        )
    };
    let only_good = Outcomes {
        targets: vec![target("bug_423", "regression", &[("a", Outcome::Passed)])],
        doc_tests: DocTests {
            ok: true,
            passed: 1,
            ..DocTests::default()
        },
        pre_fix: BTreeMap::new(),
    };
    let report = judge(&context, &[good()], &only_good);
    assert!(report.passed);
    assert_eq!((report.criteria_passed, report.criteria_failed), (1, 0));

    // A failing test no criterion names still fails the gate.
    let report = judge(&context, &[good()], &outcomes());
    assert!(!report.passed);
    assert_eq!(report.criteria_failed, 0);

    let mut doc_failed = Outcomes {
        targets: only_good.targets.clone(),
        ..Outcomes::default()
    };
    doc_failed.doc_tests.ok = false;
    assert!(!judge(&context, &[good()], &doc_failed).passed);

    let unreadable = judge(
        &context,
        &[file("BUG-2", Err("no front matter".into()))],
        &only_good,
    );
    assert!(!unreadable.passed);
    assert_eq!(
        unreadable.records[0].problem.as_deref(),
        Some("no front matter")
    );

    let unknown = unknown_issues(&context, vec!["BUG-9".into()]);
    assert!(!unknown.passed && unknown.workspace.is_none());

    // A record or doc that names a file the repository does not have fails the gate too.
    let stale = Context {
        stale_paths: vec![crate::doc_paths::StalePath {
            file: "issues/BUG-1.md".into(),
            line: 3,
            path: "src/gone.rs".into(),
        }],
        ..context
    };
    let report = judge(&stale, &[good()], &only_good);
    assert!(!report.passed);
    assert_eq!(report.stale_paths, stale.stale_paths);
}
