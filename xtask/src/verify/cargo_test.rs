//! The workspace's test binaries as a suite: finding them (cargo's build messages, with
//! `cargo metadata` to name their packages), running each one and the doc tests, and running
//! one test again on the pre-fix port.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    time::Instant,
};

use anyhow::Context;
use cargo_metadata::{Message, PackageId};
use xshell::{Cmd, Shell, cmd};
use xtask_contract::env;

use super::{
    collect::{Settings, read_evidence},
    libtest,
    outcomes::{DocTests, FailedTest, Outcome, PreFixRun, TargetRun, TestResult},
};
use crate::{
    cargo::{cargo, metadata, without_cargo_package_env},
    records,
};

/// A test binary that `cargo test --no-run` built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TestBinary {
    pub(crate) package: String,
    pub(crate) target: String,
    pub(crate) kind: String,
    pub(crate) executable: PathBuf,
    pub(crate) package_dir: PathBuf,
}

impl TestBinary {
    pub(super) fn id_name(&self) -> String {
        self.target.replace('-', "_")
    }

    pub(super) fn is(&self, target: &TargetRun) -> bool {
        (&self.package, &self.target, &self.kind) == (&target.package, &target.target, &target.kind)
    }
}

pub(super) fn build_test_binaries(sh: &Shell) -> anyhow::Result<Vec<TestBinary>> {
    eprintln!("building the workspace's test binaries ...");
    let names = metadata(sh)?
        .packages
        .into_iter()
        .map(|it| (it.id, it.name.to_string()))
        .collect();
    let messages = cargo(sh)
        .args([
            "test",
            "--workspace",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .read()
        .context("building the test binaries failed")?;
    let binaries = test_binaries(&messages, &names)?;
    anyhow::ensure!(!binaries.is_empty(), "cargo built no test binaries");
    Ok(binaries)
}

/// The test binaries in cargo's JSON messages. Package ids are opaque: `names` (from
/// `cargo metadata`) says whose they are.
fn test_binaries(
    messages: &str,
    names: &HashMap<PackageId, String>,
) -> anyhow::Result<Vec<TestBinary>> {
    let mut binaries = Vec::new();
    for message in Message::parse_stream(messages.as_bytes()) {
        let Message::CompilerArtifact(artifact) = message.context("reading cargo's messages")?
        else {
            continue;
        };
        let Some(executable) = artifact.executable.filter(|_| artifact.profile.test) else {
            continue;
        };
        let package = names.get(&artifact.package_id).with_context(|| {
            format!(
                "cargo built {executable} for package {}, which cargo metadata does not list",
                artifact.package_id
            )
        })?;
        binaries.push(TestBinary {
            package: package.clone(),
            target: artifact.target.name,
            kind: artifact
                .target
                .kind
                .first()
                .map(ToString::to_string)
                .unwrap_or_default(),
            executable: executable.into_std_path_buf(),
            package_dir: artifact
                .manifest_path
                .parent()
                .map(|it| it.as_std_path().to_owned())
                .unwrap_or_default(),
        });
    }
    Ok(binaries)
}

/// Sets what every test run gets: insta never writes snapshots, the evidence directory, the
/// implementation (the fix unless `pre-fix`), and soaking on or off.
fn test_env<'a>(mut cmd: Cmd<'a>, settings: &Settings, pre_fix: bool) -> Cmd<'a> {
    let evidence = if pre_fix {
        &settings.evidence_pre_fix
    } else {
        &settings.evidence_fixed
    };
    cmd = without_cargo_package_env(cmd)
        .env("INSTA_UPDATE", "no")
        .env(env::EVIDENCE_DIR, evidence)
        // The gate runs the hostile and etcd tests or fails; it never lets them skip.
        .env_remove(env::SKIP_HOSTILE)
        .env(env::REQUIRE_ETCD, "1");
    cmd = if pre_fix {
        cmd.env(env::IMPL, env::IMPL_PRE_FIX)
    } else {
        cmd.env_remove(env::IMPL)
    };
    if settings.soak {
        cmd.env(env::SOAK, env::SOAK_ON)
    } else {
        cmd.env_remove(env::SOAK)
    }
}

/// A test binary, run from its package directory as `cargo test` runs it.
fn test_cmd<'a>(sh: &'a Shell, binary: &TestBinary, settings: &Settings, pre_fix: bool) -> Cmd<'a> {
    let exe = &binary.executable;
    test_env(cmd!(sh, "{exe}"), settings, pre_fix).env("CARGO_MANIFEST_DIR", &binary.package_dir)
}

pub(super) fn run_test_binary(
    sh: &Shell,
    settings: &Settings,
    binary: &TestBinary,
    label: &str,
) -> anyhow::Result<TargetRun> {
    let _dir = sh.push_dir(&binary.package_dir);
    let mut problem = None;
    let listing = test_cmd(sh, binary, settings, false)
        .args(["--list", "--format", "terse"])
        .ignore_status()
        .output()?;
    let listed = libtest::parse_list(&String::from_utf8_lossy(&listing.stdout));
    if !listing.status.success() {
        let stderr = String::from_utf8_lossy(&listing.stderr);
        problem = Some(format!(
            "`--list` failed ({}): {}",
            listing.status,
            stderr.lines().next().unwrap_or_default()
        ));
    }
    eprintln!("running {label}: {} tests ...", listed.len());
    let start = Instant::now();
    let output = test_cmd(sh, binary, settings, false)
        .ignore_status()
        .output()?;
    let seconds = start.elapsed().as_secs_f64();
    let run = libtest::parse_run(&String::from_utf8_lossy(&output.stdout));

    let mut tests: BTreeMap<String, TestResult> = listed
        .into_iter()
        .map(|name| (name, TestResult::new(Outcome::DidNotReport)))
        .collect();
    for (name, outcome) in &run.outcomes {
        let mut result = TestResult::new(*outcome);
        result.message = run
            .failures
            .get(name)
            .and_then(|it| libtest::first_failure_line(it));
        tests.insert(name.clone(), result);
    }
    let count = |want| tests.values().filter(|it| it.outcome == want).count();
    let (passed, failed, missing) = (
        count(Outcome::Passed),
        count(Outcome::Failed),
        count(Outcome::DidNotReport),
    );
    if !output.status.success() && failed == 0 && problem.is_none() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|it| !it.trim().is_empty())
            .unwrap_or_default();
        problem = Some(format!(
            "exited with {} without naming a failed test: {last}",
            output.status
        ));
    }
    let mut line = format!("{label}: {passed} passed, {failed} failed in {seconds:.1}s");
    if missing > 0 {
        line.push_str(&format!(" ({missing} did not report)"));
    }
    if let Some(problem) = &problem {
        line.push_str(&format!(" -- {problem}"));
    }
    eprintln!("{line}");
    Ok(TargetRun {
        package: binary.package.clone(),
        target: binary.target.clone(),
        kind: binary.kind.clone(),
        executable: binary.executable.display().to_string(),
        seconds,
        problem,
        tests,
    })
}

pub(super) fn run_doc_tests(sh: &Shell, settings: &Settings) -> anyhow::Result<DocTests> {
    eprintln!("running the doc tests (cargo test --workspace --doc) ...");
    let start = Instant::now();
    let output = test_env(cargo(sh), settings, false)
        .args(["test", "--workspace", "--doc"])
        .ignore_status()
        .output()?;
    let run = libtest::parse_run(&String::from_utf8_lossy(&output.stdout));
    let count = |want| run.outcomes.values().filter(|it| **it == want).count();
    let mut doc = DocTests {
        ok: output.status.success(),
        passed: count(Outcome::Passed),
        failed: count(Outcome::Failed),
        ignored: count(Outcome::Ignored),
        failures: Vec::new(),
    };
    for (name, outcome) in &run.outcomes {
        if *outcome == Outcome::Failed {
            let message = run
                .failures
                .get(name)
                .and_then(|it| libtest::first_failure_line(it));
            doc.failures.push(FailedTest {
                test: name.clone(),
                message: message.unwrap_or_default(),
            });
        }
    }
    eprintln!(
        "doc tests: {} passed, {} failed in {:.1}s",
        doc.passed,
        doc.failed,
        start.elapsed().as_secs_f64()
    );
    if !doc.ok {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        eprintln!(
            "cargo test --doc failed ({}); the end of its stderr:",
            output.status
        );
        for line in &lines[lines.len().saturating_sub(30)..] {
            eprintln!("    {line}");
        }
        if doc.failures.is_empty() {
            let error = lines
                .iter()
                .find(|it| it.starts_with("error"))
                .copied()
                .unwrap_or_default();
            doc.failures.push(FailedTest {
                test: "cargo test --workspace --doc".into(),
                message: format!("exited with {}: {error}", output.status),
            });
        }
    }
    Ok(doc)
}

pub(super) fn run_on_pre_fix(
    sh: &Shell,
    settings: &Settings,
    label: &str,
    binary: &TestBinary,
    name: &str,
) -> anyhow::Result<PreFixRun> {
    let _dir = sh.push_dir(&binary.package_dir);
    eprint!("pre-fix {label}: {}::{name} ... ", binary.id_name());
    let start = Instant::now();
    let output = test_cmd(sh, binary, settings, true)
        .args([name, "--exact"])
        .ignore_status()
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let run = libtest::parse_run(&stdout);
    let outcome = match run.outcomes.get(name) {
        Some(outcome) => *outcome,
        // The process died before libtest could report: that is a failure, of a kind.
        None if !output.status.success() => Outcome::Failed,
        None => Outcome::DidNotRun,
    };
    let failure = run.failures.get(name);
    let output_text = match failure {
        Some(failure) => format!("{failure}\n{stderr}"),
        None => format!("{}\n{stderr}", libtest::without_result_lines(&stdout)),
    };
    eprintln!(
        "{} in {:.1}s",
        outcome.as_str(),
        start.elapsed().as_secs_f64()
    );
    let evidence_file = settings
        .evidence_pre_fix
        .join(format!("{}.json", records::function_name(name)));
    Ok(PreFixRun {
        result: TestResult {
            outcome,
            message: failure.and_then(|it| libtest::first_failure_line(it)),
            evidence: read_evidence(sh, &evidence_file),
        },
        output: output_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = r#""profile":{"opt_level":"0","debuginfo":2,"debug_assertions":true,"overflow_checks":true,"test":"#;

    fn artifact(id: &str, manifest: &str, kind: &str, name: &str, test: bool, exe: &str) -> String {
        format!(
            r#"{{"reason":"compiler-artifact","package_id":"{id}","manifest_path":"{manifest}","target":{{"kind":["{kind}"],"crate_types":["{kind}"],"name":"{name}","src_path":"/w/src/x.rs","edition":"2024","doc":true,"doctest":true,"test":true}},{PROFILE}{test}}},"features":[],"filenames":["{exe}"],"executable":{},"fresh":true}}"#,
            if exe.is_empty() {
                "null".to_owned()
            } else {
                format!("{exe:?}")
            }
        )
    }

    #[test]
    fn finds_test_binaries_by_opaque_package_id() -> anyhow::Result<()> {
        let lib = "path+file:///w/crates/scope-lock#0.1.0";
        let tests = "path+file:///w/tests#regression@0.0.0";
        let messages = [
            artifact(
                lib,
                "/w/crates/scope-lock/Cargo.toml",
                "lib",
                "scope_lock",
                true,
                "/w/t/scope_lock-1",
            ),
            artifact(
                lib,
                "/w/crates/scope-lock/Cargo.toml",
                "lib",
                "scope_lock",
                false,
                "",
            ),
            artifact(
                tests,
                "/w/tests/Cargo.toml",
                "test",
                "bug_423",
                true,
                "/w/t/bug_423-3",
            ),
            artifact(
                tests,
                "/w/tests/Cargo.toml",
                "bin",
                "regression-worker",
                false,
                "/w/t/regression-worker",
            ),
            "   Compiling something (a stray text line)".to_owned(),
            r#"{"reason":"build-finished","success":true}"#.to_owned(),
        ]
        .join("\n");
        let names = HashMap::from([
            (PackageId { repr: lib.into() }, "scope-lock".to_owned()),
            (PackageId { repr: tests.into() }, "regression".to_owned()),
        ]);
        let found: Vec<(String, String, String, PathBuf, PathBuf)> =
            test_binaries(&messages, &names)?
                .into_iter()
                .map(|it| {
                    (
                        it.package,
                        it.target,
                        it.kind,
                        it.executable,
                        it.package_dir,
                    )
                })
                .collect();
        assert_eq!(
            found,
            [
                (
                    "scope-lock".into(),
                    "scope_lock".into(),
                    "lib".into(),
                    "/w/t/scope_lock-1".into(),
                    "/w/crates/scope-lock".into()
                ),
                (
                    "regression".into(),
                    "bug_423".into(),
                    "test".into(),
                    "/w/t/bug_423-3".into(),
                    "/w/tests".into()
                ),
            ]
        );

        let unknown = HashMap::new();
        let err = test_binaries(&messages, &unknown)
            .err()
            .map(|it| it.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|it| it.contains("cargo metadata does not list")),
            "{err:?}"
        );
        Ok(())
    }
}
