//! The Python package's pytest suite (`crates/scope-lock-py/tests`) as one more target, named
//! `pytest`: a record names its tests `pytest::<test function>` (with pytest's `[...]` suffix
//! for a parametrized case). pytest writes a JUnit XML report, which is read here.
//!
//! The interpreter is [`env::PYTHON`] when set (one that already has the package and the
//! suite's requirements installed, as `.ci/run` prepares). Otherwise verify makes its own
//! virtual environment under the target directory and installs the suite's requirements
//! (`tests/requirements.txt`: pytest, mypy) and the package built from this tree into it, with
//! the versions pinned in `crates/scope-lock-py/ci-constraints.txt`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};

use xshell::{Shell, cmd};
use xtask_contract::env;

use super::{
    collect::Settings,
    outcomes::{Outcome, TargetRun, TestResult},
};
use crate::{cargo::without_cargo_package_env, project_root};

/// The target name of the suite's test ids.
pub(super) const TARGET: &str = "pytest";

/// Prepares an interpreter, runs the suite, and reads its report.
pub(super) fn run(sh: &Shell, settings: &Settings) -> anyhow::Result<TargetRun> {
    let package = project_root().join("crates").join("scope-lock-py");
    let mut run = TargetRun {
        package: "scope-lock-py".to_owned(),
        target: TARGET.to_owned(),
        kind: "pytest".to_owned(),
        executable: String::new(),
        seconds: 0.0,
        problem: None,
        tests: BTreeMap::new(),
    };
    let python = match sh.var(env::PYTHON) {
        Ok(python) if !python.is_empty() => PathBuf::from(python),
        _ => match prepare_venv(sh, &package, &settings.python_venv) {
            Ok(python) => python,
            Err(problem) => {
                run.problem = Some(problem);
                return Ok(run);
            }
        },
    };
    run.executable = python.display().to_string();

    let report = settings.python_venv.with_extension("junit.xml");
    sh.remove_path(&report)?;
    let tests = package.join("tests");
    eprintln!("running pytest ({}) ...", python.display());
    let start = Instant::now();
    let mut pytest = cmd!(
        sh,
        "{python} -m pytest {tests} -p no:cacheprovider -q -rfE --junitxml={report}"
    )
    .env(env::EVIDENCE_DIR, &settings.evidence_fixed)
    .env_remove(env::IMPL)
    .env_remove(env::SKIP_HOSTILE);
    pytest = if settings.soak {
        pytest.env(env::SOAK, env::SOAK_ON)
    } else {
        pytest.env_remove(env::SOAK)
    };
    let output = without_cargo_package_env(pytest).ignore_status().output()?;
    run.seconds = start.elapsed().as_secs_f64();
    // pytest's own lines, its summary line last: what a reader of the log looks for.
    eprint!("{}", String::from_utf8_lossy(&output.stdout));

    match sh.read_file(&report) {
        Ok(xml) => match parse_junit(&xml) {
            Ok(tests) => run.tests = tests,
            Err(err) => run.problem = Some(format!("cannot read {}: {err}", report.display())),
        },
        Err(_) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr.lines().rev().find(|it| !it.trim().is_empty());
            run.problem = Some(format!(
                "pytest ({}) wrote no report: {}",
                output.status,
                last.unwrap_or_default()
            ));
            return Ok(run);
        }
    }
    let failed = run.tests.values().any(|it| it.outcome == Outcome::Failed);
    if run.problem.is_none() && run.tests.is_empty() {
        run.problem = Some("pytest ran no test".to_owned());
    } else if run.problem.is_none() && !output.status.success() && !failed {
        run.problem = Some(format!(
            "pytest exited with {} without naming a failed test",
            output.status
        ));
    }
    Ok(run)
}

/// A virtual environment at `venv` with the suite's requirements and the package built from
/// this tree; its interpreter, or why it could not be made.
fn prepare_venv(sh: &Shell, package: &Path, venv: &Path) -> Result<PathBuf, String> {
    let python = venv.join("bin").join("python");
    let constraints = package.join("ci-constraints.txt");
    let step = |what: &str, cmd: xshell::Cmd<'_>| -> Result<(), String> {
        let output = cmd
            .env("PIP_CONSTRAINT", &constraints)
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .ignore_status()
            .output()
            .map_err(|err| format!("{what}: {err}"))?;
        if output.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr.lines().rev().find(|it| !it.trim().is_empty());
            Err(format!(
                "{what} failed ({}): {}",
                output.status,
                last.unwrap_or_default()
            ))
        }
    };
    eprintln!(
        "preparing {} (the test suite's requirements and the Python package) ...",
        venv.display()
    );
    if !python.is_file() {
        step("python3 -m venv", cmd!(sh, "python3 -m venv {venv}"))?;
    }
    // The suite's own needs (pytest, and mypy for the type tests) are listed with it.
    let requirements = package.join("tests").join("requirements.txt");
    step(
        "pip install -r tests/requirements.txt",
        cmd!(sh, "{python} -m pip install --quiet -r {requirements}"),
    )?;
    // Reinstalled every time: the suite must test the package as this tree builds it.
    step(
        "pip install ./crates/scope-lock-py",
        cmd!(
            sh,
            "{python} -m pip install --quiet --force-reinstall --no-deps {package}"
        ),
    )?;
    Ok(python)
}

/// Every test case of a JUnit XML report as pytest writes it, by test name. A case with a
/// `failure` or an `error` (a failed setup or teardown) failed, with its message's first line;
/// one with `skipped` is ignored.
fn parse_junit(xml: &str) -> Result<BTreeMap<String, TestResult>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|err| err.to_string())?;
    let mut tests = BTreeMap::new();
    let mut modules: BTreeMap<String, String> = BTreeMap::new();
    for case in doc.descendants().filter(|it| it.has_tag_name("testcase")) {
        let name = case
            .attribute("name")
            .ok_or("a testcase without a name")?
            .to_owned();
        let module = case.attribute("classname").unwrap_or_default().to_owned();
        if let Some(other) = modules.insert(name.clone(), module.clone())
            && other != module
        {
            return Err(format!(
                "test {name} is in both {other} and {module}; ids need unique names"
            ));
        }
        let mut result = TestResult::new(Outcome::Passed);
        for child in case.children().filter(|it| it.is_element()) {
            match child.tag_name().name() {
                "failure" | "error" => {
                    result.outcome = Outcome::Failed;
                    let message = child.attribute("message").unwrap_or("failed");
                    result.message = result
                        .message
                        .or_else(|| message.lines().next().map(str::to_owned));
                }
                "skipped" if result.outcome == Outcome::Passed => {
                    result.outcome = Outcome::Ignored;
                }
                _ => {}
            }
        }
        tests.insert(name, result);
    }
    Ok(tests)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5">
<testcase classname="tests.test_api" name="test_ok" time="0.001" />
<testcase classname="tests.test_api" name="test_paths_overlap[/a-/a/b-True]" time="0.001" />
<testcase classname="tests.test_api" name="test_bad" time="0.002"><failure message="AssertionError: two holders at once&#10;assert 1 == 0">trace</failure></testcase>
<testcase classname="tests.test_processes" name="test_root" time="0"><skipped type="pytest.skip" message="needs root">skip</skipped></testcase>
<testcase classname="tests.test_processes" name="test_setup" time="0"><error message="failed on setup with &quot;boom&quot;">trace</error></testcase>
</testsuite></testsuites>"#;

    #[test]
    fn reads_every_case_with_its_outcome_and_first_message_line() {
        let tests = parse_junit(REPORT).unwrap();
        let outcome = |name: &str| tests[name].outcome;
        assert_eq!(tests.len(), 5);
        assert_eq!(outcome("test_ok"), Outcome::Passed);
        assert_eq!(outcome("test_paths_overlap[/a-/a/b-True]"), Outcome::Passed);
        assert_eq!(outcome("test_bad"), Outcome::Failed);
        assert_eq!(
            tests["test_bad"].message.as_deref(),
            Some("AssertionError: two holders at once")
        );
        assert_eq!(outcome("test_root"), Outcome::Ignored);
        assert_eq!(outcome("test_setup"), Outcome::Failed);
        assert_eq!(
            tests["test_setup"].message.as_deref(),
            Some("failed on setup with \"boom\"")
        );
    }

    #[test]
    fn a_name_in_two_modules_is_an_error_and_bad_xml_says_why() {
        let twice = r#"<testsuite><testcase classname="a" name="t"/><testcase classname="b" name="t"/></testsuite>"#;
        assert!(parse_junit(twice).unwrap_err().contains("in both a and b"));
        assert!(parse_junit("<testsuite>").is_err());
    }
}
