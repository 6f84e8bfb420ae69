//! What collect found and judge reads: every test's outcome, keyed by test id.
//!
//! A test id is `<target>::<name>` (issues/README.md, "Test ids"): `target` names a
//! [`TargetRun`], `name` one of its tests. The workspace's test binaries are one target each.
//! Another suite plugs in by adding its own `TargetRun`s to [`Outcomes::targets`], one per
//! target name its ids use (a pytest run would add `pytest`, with its tests by name, for ids
//! like `pytest::test_release_twice`); judge then treats them exactly like a test binary's.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// How one test went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Outcome {
    Passed,
    Failed,
    Ignored,
    /// Listed, but the run never said how it went (the binary crashed first).
    #[serde(rename = "did not report")]
    DidNotReport,
    /// A run of just this test that neither passed nor failed it (it was filtered out).
    #[serde(rename = "did not run")]
    DidNotRun,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Ignored => "ignored",
            Outcome::DidNotReport => "did not report",
            Outcome::DidNotRun => "did not run",
        }
    }
}

/// A test's counts for the report: a flat JSON object, its keys in the order the test wrote
/// them (issues/README.md, "Evidence").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Evidence(pub(crate) IndexMap<String, serde_json::Value>);

impl Evidence {
    pub(crate) fn from_json(text: &str) -> Result<Evidence, String> {
        serde_json::from_str(text).map_err(|err| err.to_string())
    }
}

/// One test's result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TestResult {
    pub(crate) outcome: Outcome,
    /// The first line of its panic message (or of what it printed) when it failed.
    pub(crate) message: Option<String>,
    /// Its evidence file, or why that could not be read; `None` when it wrote none.
    pub(crate) evidence: Option<Result<Evidence, String>>,
}

impl TestResult {
    pub(crate) fn new(outcome: Outcome) -> TestResult {
        TestResult {
            outcome,
            message: None,
            evidence: None,
        }
    }
}

/// One target's run: a test binary, or another suite's group of tests.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TargetRun {
    /// The package it belongs to.
    pub(crate) package: String,
    /// Its name as cargo (or the suite) spells it; test ids may write `-` as `_`.
    pub(crate) target: String,
    /// `lib`, `test`, `bin`, ... (a suite's own word for others).
    pub(crate) kind: String,
    /// What ran, for the report.
    pub(crate) executable: String,
    pub(crate) seconds: f64,
    /// Set when it could not be listed, or exited badly without naming a failed test.
    pub(crate) problem: Option<String>,
    /// Every test it listed or reported, by name.
    pub(crate) tests: BTreeMap<String, TestResult>,
}

impl TargetRun {
    /// The name test ids use: the target name with `-` read as `_` (as rustc names crates).
    pub(crate) fn id_name(&self) -> String {
        self.target.replace('-', "_")
    }
}

#[cfg(test)]
impl TargetRun {
    /// A test binary `name` of `package` whose tests went as `tests` says.
    pub(crate) fn sample(name: &str, package: &str, tests: &[(&str, Outcome)]) -> TargetRun {
        TargetRun {
            package: package.into(),
            target: name.into(),
            kind: "test".into(),
            executable: "/nonexistent".into(),
            seconds: 0.0,
            problem: None,
            tests: tests
                .iter()
                .map(|(name, outcome)| (name.to_string(), TestResult::new(*outcome)))
                .collect(),
        }
    }
}

/// The doc tests' run (`cargo test --workspace --doc`), reported as a whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct DocTests {
    /// cargo's exit status was success.
    pub(crate) ok: bool,
    pub(crate) passed: usize,
    pub(crate) failed: usize,
    pub(crate) ignored: usize,
    pub(crate) failures: Vec<FailedTest>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct FailedTest {
    pub(crate) test: String,
    pub(crate) message: String,
}

/// One test run again on the pre-fix port (`SCOPE_LOCK_IMPL=pre-fix`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PreFixRun {
    pub(crate) result: TestResult,
    /// Where the symptom is looked for: the failed test's captured output and panic message,
    /// and the process's stderr; never the `test <name> ... FAILED` lines, which would match
    /// a symptom that is part of the test's name.
    pub(crate) output: String,
}

/// Everything collect found.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    pub(crate) targets: Vec<TargetRun>,
    pub(crate) doc_tests: DocTests,
    /// The `against_pre_fix` runs, by test id as the record spells it.
    pub(crate) pre_fix: BTreeMap<String, PreFixRun>,
}

/// A test id resolved: the target it names and the test's result there.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resolved<'a> {
    pub(crate) target: &'a TargetRun,
    /// The test's name within the target.
    pub(crate) name: &'a str,
    pub(crate) result: &'a TestResult,
}

impl Outcomes {
    /// The target and test a test id names, or why it names none.
    pub(crate) fn resolve<'a>(&'a self, test_id: &'a str) -> Result<Resolved<'a>, String> {
        let Some((target, name)) = crate::records::split_test_id(test_id) else {
            return Err(format!(
                "{test_id:?} is not a test id (<cargo target>::<libtest name>)"
            ));
        };
        let key = target.replace('-', "_");
        let found: Vec<&TargetRun> = self
            .targets
            .iter()
            .filter(|it| it.id_name() == key)
            .collect();
        match found[..] {
            [] => Err(format!("{test_id}: no test binary is called {target}")),
            [one] => match one.tests.get(name) {
                Some(result) => Ok(Resolved {
                    target: one,
                    name,
                    result,
                }),
                None => Err(format!("{test_id}: {target} has no test {name}")),
            },
            ref many => {
                let which: Vec<String> = many
                    .iter()
                    .map(|it| format!("{} of {}", it.kind, it.package))
                    .collect();
                Err(format!(
                    "{test_id}: ambiguous, {} test binaries are called {target} ({})",
                    many.len(),
                    which.join(", ")
                ))
            }
        }
    }
}
