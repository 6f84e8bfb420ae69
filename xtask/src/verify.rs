//! `cargo xtask verify`: the release gate.
//!
//! 1. build every workspace test binary (`cargo test --workspace --no-run`);
//! 2. list each binary's tests and run each binary, reading libtest's output;
//! 3. run the doc tests;
//! 4. judge every acceptance criterion of every issue record against those outcomes,
//!    re-running each `against_prefix` test on the pre-fix port;
//! 5. print the table and write `target/verify/report.{json,md}`.

use std::{
    collections::HashMap,
    env,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::Context;
use xshell::{Cmd, Shell, cmd};

use crate::{
    VerifyFlags,
    libtest::{self, Outcome, TestBinary},
    project_root,
    records::{self, Criterion, RecordFile},
    report::{
        BinaryReport, CriterionReport, DocTests, Evidence, FailedTest, PrefixReport, RecordReport,
        Report, TestReport, Workspace,
    },
    target_dir, without_cargo_package_env,
};

pub(crate) fn run(sh: &Shell, flags: &VerifyFlags) -> anyhow::Result<bool> {
    let cwd = env::current_dir()?;
    let verify_dir = target_dir(sh).join("verify");
    let evidence = EvidenceDirs {
        fixed: verify_dir.join("evidence").join("fixed"),
        prefix: verify_dir.join("evidence").join("prefix"),
    };
    // Nothing from an earlier run may be mistaken for this one's.
    for stale in ["evidence", "report.json", "report.md"] {
        sh.remove_path(verify_dir.join(stale))?;
    }
    sh.create_dir(&evidence.fixed)?;
    sh.create_dir(&evidence.prefix)?;

    let issues_dir = match sh.var_os("XTASK_ISSUES_DIR") {
        Some(dir) if !dir.is_empty() => cwd.join(dir),
        _ => project_root().join("issues"),
    };
    let all_files = if issues_dir.is_dir() {
        records::read_dir(sh, &issues_dir)?
    } else {
        Vec::new()
    };
    let (files, unknown_issues) = select(all_files, &flags.issues);
    let mut report = Report {
        passed: false,
        soak: flags.soak,
        issues_dir: display_path(&issues_dir),
        unknown_issues,
        criteria_passed: 0,
        criteria_failed: 0,
        workspace: None,
        records: Vec::new(),
    };
    if !report.unknown_issues.is_empty() {
        eprintln!(
            "error: no record for {} in {} (records there: {})",
            report.unknown_issues.join(", "),
            report.issues_dir,
            known_ids(sh, &issues_dir)
        );
        finish(
            sh,
            &report,
            &verify_dir,
            flags.json.as_ref().map(|it| cwd.join(it)),
        )?;
        return Ok(false);
    }
    if files.is_empty() {
        eprintln!(
            "warning: no issue records in {}; only the workspace tests will be checked",
            report.issues_dir
        );
    }

    let binaries = build_test_binaries(sh)?;
    let runs = run_test_binaries(sh, binaries, &evidence, flags.soak)?;
    let doc_tests = run_doc_tests(sh, &evidence, flags.soak)?;
    let workspace = summarize(&runs, doc_tests);

    let judge = Judge {
        sh,
        runs: &runs,
        index: index(&runs),
        evidence: &evidence,
        soak: flags.soak,
    };
    let mut prefix_runs = HashMap::new();
    for file in &files {
        report.records.push(judge.record(file, &mut prefix_runs)?);
    }
    for criterion in report.records.iter().flat_map(|it| &it.criteria) {
        if criterion.status == "PASS" {
            report.criteria_passed += 1;
        } else {
            report.criteria_failed += 1;
        }
    }
    report.passed = report.records.iter().all(|it| it.passed)
        && workspace.failures.is_empty()
        && workspace.failed == 0
        && workspace.doc_tests.ok;
    report.workspace = Some(workspace);
    finish(
        sh,
        &report,
        &verify_dir,
        flags.json.as_ref().map(|it| cwd.join(it)),
    )?;
    Ok(report.passed)
}

struct EvidenceDirs {
    fixed: PathBuf,
    prefix: PathBuf,
}

/// The records named on the command line (by id or file name, ignoring case), or all of
/// them; and the names that matched no record.
fn select(files: Vec<RecordFile>, wanted: &[String]) -> (Vec<RecordFile>, Vec<String>) {
    if wanted.is_empty() {
        return (files, Vec::new());
    }
    let matches = |file: &RecordFile, name: &str| {
        file.id().eq_ignore_ascii_case(name)
            || file.stem.eq_ignore_ascii_case(name.trim_end_matches(".md"))
    };
    let unknown = wanted
        .iter()
        .filter(|name| !files.iter().any(|f| matches(f, name)))
        .cloned()
        .collect();
    let selected = files
        .into_iter()
        .filter(|f| wanted.iter().any(|name| matches(f, name)))
        .collect();
    (selected, unknown)
}

fn known_ids(sh: &Shell, dir: &Path) -> String {
    let ids: Vec<String> = records::read_dir(sh, dir)
        .map(|files| files.iter().map(|it| it.id().to_owned()).collect())
        .unwrap_or_default();
    if ids.is_empty() {
        "none".to_owned()
    } else {
        ids.join(", ")
    }
}

fn display_path(path: &Path) -> String {
    path.strip_prefix(project_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn cargo(sh: &Shell) -> Cmd<'_> {
    without_cargo_package_env(cmd!(sh, "cargo"))
}

fn build_test_binaries(sh: &Shell) -> anyhow::Result<Vec<TestBinary>> {
    eprintln!("building the workspace's test binaries ...");
    let messages = cargo(sh)
        .args([
            "test",
            "--workspace",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .read()
        .context("building the test binaries failed")?;
    let binaries = libtest::test_binaries(&messages)?;
    anyhow::ensure!(!binaries.is_empty(), "cargo built no test binaries");
    Ok(binaries)
}

/// A test binary's listing and run.
struct BinaryRun {
    binary: TestBinary,
    tests: Vec<String>,
    run: libtest::RunReport,
    seconds: f64,
    problem: Option<String>,
}

impl BinaryRun {
    /// `None` when the test was listed but its outcome never reported (the binary crashed).
    fn outcome(&self, name: &str) -> Option<Outcome> {
        self.run.outcomes.get(name).copied()
    }

    fn message(&self, name: &str) -> Option<String> {
        self.run
            .failures
            .get(name)
            .and_then(|it| libtest::first_failure_line(it))
    }
}

/// A command running a test binary from its package directory, in the given mode.
fn test_cmd<'a>(
    sh: &'a Shell,
    binary: &TestBinary,
    evidence_dir: &Path,
    prefix: bool,
    soak: bool,
) -> Cmd<'a> {
    let exe = &binary.executable;
    let mut cmd = without_cargo_package_env(cmd!(sh, "{exe}"))
        .env("INSTA_UPDATE", "no")
        .env("SCOPE_LOCK_EVIDENCE_DIR", evidence_dir)
        // As `cargo test` does for the binaries it runs.
        .env("CARGO_MANIFEST_DIR", &binary.package_dir);
    cmd = if prefix {
        cmd.env("SCOPE_LOCK_IMPL", "prefix")
    } else {
        cmd.env_remove("SCOPE_LOCK_IMPL")
    };
    cmd = if soak {
        cmd.env("SCOPE_LOCK_SOAK", "1")
    } else {
        cmd.env_remove("SCOPE_LOCK_SOAK")
    };
    cmd
}

fn run_test_binaries(
    sh: &Shell,
    binaries: Vec<TestBinary>,
    evidence: &EvidenceDirs,
    soak: bool,
) -> anyhow::Result<Vec<BinaryRun>> {
    let mut names: HashMap<String, usize> = HashMap::new();
    for binary in &binaries {
        *names.entry(binary.id_name()).or_default() += 1;
    }
    let mut runs = Vec::new();
    for binary in binaries {
        let _dir = sh.push_dir(&binary.package_dir);
        let label = if names[&binary.id_name()] > 1 {
            format!("{} ({} {})", binary.target, binary.package, binary.kind)
        } else {
            binary.target.clone()
        };
        let mut problem = None;
        let listing = test_cmd(sh, &binary, &evidence.fixed, false, soak)
            .args(["--list", "--format", "terse"])
            .ignore_status()
            .output()?;
        let tests = libtest::parse_list(&String::from_utf8_lossy(&listing.stdout));
        if !listing.status.success() {
            let stderr = String::from_utf8_lossy(&listing.stderr);
            problem = Some(format!(
                "`--list` failed ({}): {}",
                listing.status,
                stderr.lines().next().unwrap_or_default()
            ));
        }
        eprintln!("running {label}: {} tests ...", tests.len());
        let start = Instant::now();
        let output = test_cmd(sh, &binary, &evidence.fixed, false, soak)
            .ignore_status()
            .output()?;
        let seconds = start.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let run = libtest::parse_run(&stdout);
        let failed = run
            .outcomes
            .values()
            .filter(|it| **it == Outcome::Failed)
            .count();
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
        let passed = run
            .outcomes
            .values()
            .filter(|it| **it == Outcome::Passed)
            .count();
        let missing = tests
            .iter()
            .filter(|it| !run.outcomes.contains_key(*it))
            .count();
        let mut line = format!("{label}: {passed} passed, {failed} failed in {seconds:.1}s");
        if missing > 0 {
            line.push_str(&format!(" ({missing} did not report)"));
        }
        if let Some(problem) = &problem {
            line.push_str(&format!(" -- {problem}"));
        }
        eprintln!("{line}");
        runs.push(BinaryRun {
            binary,
            tests,
            run,
            seconds,
            problem,
        });
    }
    Ok(runs)
}

fn run_doc_tests(sh: &Shell, evidence: &EvidenceDirs, soak: bool) -> anyhow::Result<DocTests> {
    eprintln!("running the doc tests (cargo test --workspace --doc) ...");
    let start = Instant::now();
    let mut cmd = cargo(sh)
        .args(["test", "--workspace", "--doc"])
        .env("INSTA_UPDATE", "no")
        .env("SCOPE_LOCK_EVIDENCE_DIR", &evidence.fixed)
        .env_remove("SCOPE_LOCK_IMPL");
    cmd = if soak {
        cmd.env("SCOPE_LOCK_SOAK", "1")
    } else {
        cmd.env_remove("SCOPE_LOCK_SOAK")
    };
    let output = cmd.ignore_status().output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let run = libtest::parse_run(&stdout);
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

fn summarize(runs: &[BinaryRun], doc_tests: DocTests) -> Workspace {
    let mut workspace = Workspace {
        doc_tests,
        ..Workspace::default()
    };
    for run in runs {
        let id = run.binary.id_name();
        let count = |want| run.run.outcomes.values().filter(|it| **it == want).count();
        let (passed, failed, ignored) = (
            count(Outcome::Passed),
            count(Outcome::Failed),
            count(Outcome::Ignored),
        );
        let mut did_not_report = 0;
        for test in &run.tests {
            match run.outcome(test) {
                Some(Outcome::Failed) => workspace.failures.push(FailedTest {
                    test: format!("{id}::{test}"),
                    message: run.message(test).unwrap_or_default(),
                }),
                None => {
                    did_not_report += 1;
                    workspace.failures.push(FailedTest {
                        test: format!("{id}::{test}"),
                        message: "did not report an outcome (did the binary crash?)".into(),
                    });
                }
                Some(_) => {}
            }
        }
        // Failed tests that the listing did not show (should not happen, but count them).
        for (test, outcome) in &run.run.outcomes {
            if *outcome == Outcome::Failed && !run.tests.contains(test) {
                workspace.failures.push(FailedTest {
                    test: format!("{id}::{test}"),
                    message: run.message(test).unwrap_or_default(),
                });
            }
        }
        if let Some(problem) = &run.problem {
            workspace.failures.push(FailedTest {
                test: format!("{id} ({} {})", run.binary.package, run.binary.kind),
                message: problem.clone(),
            });
        }
        workspace.passed += passed;
        workspace.failed += failed + did_not_report;
        workspace.ignored += ignored;
        workspace.binaries.push(BinaryReport {
            package: run.binary.package.clone(),
            target: run.binary.target.clone(),
            kind: run.binary.kind.clone(),
            executable: run.binary.executable.display().to_string(),
            tests: run.tests.len(),
            passed,
            failed: failed + did_not_report,
            ignored,
            seconds: (run.seconds * 10.0).round() / 10.0,
            problem: run.problem.clone(),
        });
    }
    workspace
}

/// Test-id target name -> the runs of the binaries with that name.
fn index(runs: &[BinaryRun]) -> HashMap<String, Vec<usize>> {
    let mut index: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, run) in runs.iter().enumerate() {
        index.entry(run.binary.id_name()).or_default().push(i);
    }
    index
}

/// The outcome of running one test on the pre-fix port.
#[derive(Clone)]
struct PrefixRun {
    outcome: String,
    /// The failed test's captured output and the binary's stderr: where the symptom is looked for.
    output: String,
    message: Option<String>,
    evidence: Option<Result<Evidence, String>>,
}

struct Judge<'a> {
    sh: &'a Shell,
    runs: &'a [BinaryRun],
    index: HashMap<String, Vec<usize>>,
    evidence: &'a EvidenceDirs,
    soak: bool,
}

impl Judge<'_> {
    /// Finds the binary and libtest name of a test id, or says why it cannot.
    fn resolve<'t>(&self, test_id: &'t str) -> Result<(&BinaryRun, &'t str), String> {
        let Some((target, name)) = records::split_test_id(test_id) else {
            return Err(format!(
                "{test_id:?} is not a test id (<cargo target>::<libtest name>)"
            ));
        };
        let key = target.replace('-', "_");
        match self.index.get(&key).map(Vec::as_slice) {
            None | Some([]) => Err(format!("{test_id}: no test binary is called {target}")),
            Some([one]) => {
                let run = &self.runs[*one];
                if run.tests.iter().any(|it| it == name) {
                    Ok((run, name))
                } else {
                    Err(format!("{test_id}: {target} has no test {name}"))
                }
            }
            Some(many) => {
                let which: Vec<String> = many
                    .iter()
                    .map(|i| {
                        format!(
                            "{} of {}",
                            self.runs[*i].binary.kind, self.runs[*i].binary.package
                        )
                    })
                    .collect();
                Err(format!(
                    "{test_id}: ambiguous, {} test binaries are called {target} ({})",
                    many.len(),
                    which.join(", ")
                ))
            }
        }
    }

    fn record(
        &self,
        file: &RecordFile,
        prefix_runs: &mut HashMap<String, PrefixRun>,
    ) -> anyhow::Result<RecordReport> {
        let path = display_path(&file.path);
        let record = match &file.record {
            Ok(record) => record,
            Err(problem) => {
                return Ok(RecordReport {
                    id: file.stem.clone(),
                    title: None,
                    file: path,
                    passed: false,
                    problem: Some(problem.clone()),
                    criteria: Vec::new(),
                });
            }
        };
        let mut criteria = Vec::new();
        for criterion in &record.criteria {
            criteria.push(self.criterion(&record.id, criterion, prefix_runs)?);
        }
        Ok(RecordReport {
            id: record.id.clone(),
            title: Some(record.title.clone()),
            file: path,
            passed: criteria.iter().all(|it| it.status == "PASS"),
            problem: None,
            criteria,
        })
    }

    fn criterion(
        &self,
        record_id: &str,
        criterion: &Criterion,
        prefix_runs: &mut HashMap<String, PrefixRun>,
    ) -> anyhow::Result<CriterionReport> {
        let mut reasons = Vec::new();
        if criterion.tests.is_empty() && criterion.against_prefix.is_empty() {
            reasons.push("names no test: nothing proves it".to_owned());
        }
        if criterion.summary.trim().is_empty() {
            reasons.push("has an empty summary".to_owned());
        }
        let mut tests = Vec::new();
        for test in &criterion.tests {
            let mut report = TestReport {
                test: test.clone(),
                outcome: "unknown".into(),
                message: None,
                evidence: None,
                evidence_error: None,
            };
            match self.resolve(test) {
                Err(why) => reasons.push(why),
                Ok((run, name)) => {
                    let outcome = run.outcome(name).map_or("did not report", Outcome::as_str);
                    report.outcome = outcome.into();
                    report.message = run.message(name);
                    if outcome != "passed" {
                        reasons.push(format!("{test} {outcome}"));
                    }
                    match read_evidence(self.sh, &self.evidence.fixed, name) {
                        Some(Ok(evidence)) => report.evidence = Some(evidence),
                        Some(Err(err)) => report.evidence_error = Some(err),
                        None => {}
                    }
                }
            }
            tests.push(report);
        }
        let mut against_prefix = Vec::new();
        for check in &criterion.against_prefix {
            let mut report = PrefixReport {
                test: check.test.clone(),
                symptom: check.symptom.clone(),
                outcome: "unknown".into(),
                symptom_found: false,
                fixed_outcome: "unknown".into(),
                message: None,
                evidence: None,
                evidence_error: None,
            };
            if check.symptom.is_empty() {
                reasons.push(format!("{}: the symptom is empty", check.test));
            }
            match self.resolve(&check.test) {
                Err(why) => reasons.push(why),
                Ok((run, name)) => {
                    report.fixed_outcome = run
                        .outcome(name)
                        .map_or("did not report", Outcome::as_str)
                        .into();
                    let prefix = match prefix_runs.get(&check.test) {
                        Some(prefix) => prefix.clone(),
                        None => {
                            let label = format!("{record_id} {}", criterion.id);
                            let prefix = self.run_on_prefix(&label, run, name)?;
                            prefix_runs.insert(check.test.clone(), prefix.clone());
                            prefix
                        }
                    };
                    report.outcome = prefix.outcome.clone();
                    report.symptom_found =
                        !check.symptom.is_empty() && prefix.output.contains(&check.symptom);
                    report.message = prefix.message.clone();
                    match prefix.evidence {
                        Some(Ok(evidence)) => report.evidence = Some(evidence),
                        Some(Err(err)) => report.evidence_error = Some(err),
                        None => {}
                    }
                    if report.outcome != "failed" {
                        reasons.push(format!(
                            "{}: {} on the pre-fix port: the suite would not catch the bug's return",
                            check.test, report.outcome
                        ));
                    } else if !report.symptom_found {
                        reasons.push(format!(
                            "{}: failed on the pre-fix port, but its output never says {:?}: the suite would not catch the bug's return",
                            check.test, check.symptom
                        ));
                    }
                    if report.fixed_outcome != "passed" {
                        reasons.push(format!(
                            "{}: {} on the fix too, so its failing on the pre-fix port proves nothing",
                            check.test, report.fixed_outcome
                        ));
                    }
                }
            }
            against_prefix.push(report);
        }
        Ok(CriterionReport {
            id: criterion.id.clone(),
            summary: criterion.summary.clone(),
            status: if reasons.is_empty() { "PASS" } else { "FAIL" },
            reasons,
            tests,
            against_prefix,
        })
    }

    fn run_on_prefix(&self, label: &str, run: &BinaryRun, name: &str) -> anyhow::Result<PrefixRun> {
        let sh = self.sh;
        let _dir = sh.push_dir(&run.binary.package_dir);
        eprint!("pre-fix {label}: {}::{name} ... ", run.binary.id_name());
        let start = Instant::now();
        let output = test_cmd(sh, &run.binary, &self.evidence.prefix, true, self.soak)
            .args([name, "--exact"])
            .ignore_status()
            .output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let report = libtest::parse_run(&stdout);
        let outcome = match report.outcomes.get(name) {
            Some(outcome) => outcome.as_str(),
            // The process died before libtest could report: that is a failure, of a kind.
            None if !output.status.success() => "failed",
            None => "did not run",
        };
        let failure = report.failures.get(name).cloned();
        let message = failure.as_deref().and_then(libtest::first_failure_line);
        // Look for the symptom in what the test printed and panicked with (not in the
        // `test name ... FAILED` lines, which would match a symptom in the test's name).
        let output_text = match &failure {
            Some(failure) => format!("{failure}\n{stderr}"),
            None => format!("{}\n{stderr}", without_result_lines(&stdout)),
        };
        eprintln!("{outcome} in {:.1}s", start.elapsed().as_secs_f64());
        Ok(PrefixRun {
            outcome: outcome.to_owned(),
            output: output_text,
            message,
            evidence: read_evidence(sh, &self.evidence.prefix, name),
        })
    }
}

fn without_result_lines(stdout: &str) -> String {
    stdout
        .lines()
        .filter(|line| {
            !line.starts_with("test ") && !line.starts_with("---- ") && !line.starts_with("    ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `<dir>/<function name>.json`, if the test wrote one.
fn read_evidence(sh: &Shell, dir: &Path, libtest_name: &str) -> Option<Result<Evidence, String>> {
    let path = dir.join(format!("{}.json", records::function_name(libtest_name)));
    if !path.is_file() {
        return None;
    }
    Some(
        sh.read_file(&path)
            .map_err(|err| err.to_string())
            .and_then(|text| Evidence::from_json(&text)),
    )
}

fn finish(
    sh: &Shell,
    report: &Report,
    verify_dir: &Path,
    json_path: Option<PathBuf>,
) -> anyhow::Result<()> {
    let width = sh
        .var("COLUMNS")
        .ok()
        .and_then(|it| it.parse().ok())
        .unwrap_or(100usize)
        .clamp(80, 200);
    println!();
    print!("{}", crate::report::text_table(report, width));
    if let Some(workspace) = &report.workspace {
        let failures: Vec<&FailedTest> = workspace
            .failures
            .iter()
            .chain(&workspace.doc_tests.failures)
            .collect();
        if !failures.is_empty() {
            println!("failing workspace tests:");
            for failure in failures {
                println!("    {}: {}", failure.test, failure.message);
            }
            println!();
        }
    }
    println!("{}", crate::report::totals(report));

    let json = serde_json::to_string_pretty(report)? + "\n";
    let json_file = verify_dir.join("report.json");
    let md_file = verify_dir.join("report.md");
    sh.write_file(&json_file, &json)?;
    sh.write_file(&md_file, crate::report::markdown(report))?;
    let mut written = vec![display_path(&md_file), display_path(&json_file)];
    if let Some(path) = json_path {
        sh.write_file(&path, &json)?;
        written.push(path.display().to_string());
    }
    println!("report: {}", written.join(", "));

    let mut why = Vec::new();
    if report.criteria_failed > 0 {
        why.push(format!("{} criteria failed", report.criteria_failed));
    }
    let unreadable = report
        .records
        .iter()
        .filter(|it| it.problem.is_some())
        .count();
    if unreadable > 0 {
        why.push(format!("{unreadable} records unreadable"));
    }
    if !report.unknown_issues.is_empty() {
        why.push(format!(
            "unknown issues: {}",
            report.unknown_issues.join(", ")
        ));
    }
    if let Some(ws) = &report.workspace {
        let broken = ws.failures.len();
        if broken > 0 {
            why.push(format!("{broken} workspace tests failed"));
        }
        if !ws.doc_tests.ok {
            why.push("doc tests failed".into());
        }
    }
    if report.passed {
        println!("verify: PASSED");
    } else {
        println!("verify: FAILED ({})", why.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn file(stem: &str) -> RecordFile {
        RecordFile {
            path: PathBuf::from(format!("issues/{stem}.md")),
            stem: stem.into(),
            record: Err("x".into()),
        }
    }

    #[test]
    fn selects_named_records_and_reports_unknown_ones() {
        let files = vec![file("BUG-1"), file("BUG-423")];
        let (selected, unknown) = select(files, &["bug-423".into(), "BUG-7".into()]);
        assert_eq!(
            selected
                .iter()
                .map(|it| it.stem.as_str())
                .collect::<Vec<_>>(),
            ["BUG-423"]
        );
        assert_eq!(unknown, ["BUG-7"]);
        let (selected, unknown) = select(vec![file("BUG-1")], &[]);
        assert_eq!((selected.len(), unknown.len()), (1, 0));
    }

    fn binary_run(
        target: &str,
        package: &str,
        tests: &[&str],
        outcomes: &[(&str, Outcome)],
    ) -> BinaryRun {
        BinaryRun {
            binary: TestBinary {
                package: package.into(),
                target: target.into(),
                kind: "test".into(),
                executable: PathBuf::from("/nonexistent"),
                package_dir: PathBuf::from("/nonexistent"),
            },
            tests: tests.iter().map(|it| it.to_string()).collect(),
            run: libtest::RunReport {
                outcomes: outcomes
                    .iter()
                    .map(|(n, o)| (n.to_string(), *o))
                    .collect::<BTreeMap<_, _>>(),
                failures: BTreeMap::from([(
                    "b".to_owned(),
                    "thread 't' panicked at x.rs:1:1:\nboom".to_owned(),
                )]),
            },
            seconds: 0.0,
            problem: None,
        }
    }

    #[test]
    fn judges_criteria_from_outcomes() -> anyhow::Result<()> {
        let sh = Shell::new()?;
        let tmp = sh.create_temp_dir()?;
        let evidence = EvidenceDirs {
            fixed: tmp.path().join("fixed"),
            prefix: tmp.path().join("prefix"),
        };
        sh.write_file(
            evidence.fixed.join("a.json"),
            r#"{"workers": 8, "overlaps": 0}"#,
        )?;
        let runs = vec![
            binary_run(
                "bug_423",
                "regression",
                &["a", "b", "c"],
                &[
                    ("a", Outcome::Passed),
                    ("b", Outcome::Failed),
                    ("c", Outcome::Ignored),
                ],
            ),
            binary_run("twice", "p1", &["x"], &[("x", Outcome::Passed)]),
            binary_run("twice", "p2", &["x"], &[("x", Outcome::Passed)]),
        ];
        let judge = Judge {
            sh: &sh,
            runs: &runs,
            index: index(&runs),
            evidence: &evidence,
            soak: false,
        };
        let criterion = |tests: &[&str]| Criterion {
            id: "AC-1".into(),
            summary: "s".into(),
            tests: tests.iter().map(|it| it.to_string()).collect(),
            against_prefix: Vec::new(),
        };
        let mut prefix_runs = HashMap::new();
        let mut judge_one =
            |tests: &[&str]| judge.criterion("BUG-1", &criterion(tests), &mut prefix_runs);

        let pass = judge_one(&["bug_423::a"])?;
        assert_eq!(pass.status, "PASS", "{:?}", pass.reasons);
        assert_eq!(
            pass.tests[0]
                .evidence
                .as_ref()
                .map(Evidence::compact)
                .as_deref(),
            Some("workers=8 overlaps=0")
        );

        for (tests, want) in [
            (&[][..], "names no test"),
            (&["bug_423::b"], "bug_423::b failed"),
            (&["bug_423::c"], "bug_423::c ignored"),
            (&["bug_423::nope"], "has no test nope"),
            (&["nowhere::a"], "no test binary is called nowhere"),
            (&["twice::x"], "ambiguous, 2 test binaries"),
            (&["just_a_name"], "is not a test id"),
        ] {
            let fail = judge_one(tests)?;
            assert_eq!(fail.status, "FAIL", "{tests:?}");
            assert!(
                fail.reasons.iter().any(|it| it.contains(want)),
                "{tests:?}: {:?} lacks {want:?}",
                fail.reasons
            );
        }
        let failed = judge_one(&["bug_423::b"])?;
        assert_eq!(failed.tests[0].message.as_deref(), Some("boom"));
        Ok(())
    }

    #[test]
    fn counts_crashed_binaries_as_failures() {
        let mut crashed = binary_run(
            "bug_423",
            "regression",
            &["a", "b"],
            &[("a", Outcome::Passed)],
        );
        crashed.problem = Some("exited with signal 6".into());
        let workspace = summarize(
            &[crashed],
            DocTests {
                ok: true,
                ..DocTests::default()
            },
        );
        assert_eq!((workspace.passed, workspace.failed), (1, 1));
        assert_eq!(workspace.failures.len(), 2);
        assert_eq!(workspace.failures[0].test, "bug_423::b");
    }

    #[test]
    fn the_symptom_is_not_looked_for_in_result_lines() {
        let stdout = "running 1 test\ntest two_holders ... FAILED\n\nfailures:\n    two_holders\n";
        assert!(!without_result_lines(stdout).contains("two_holders"));
    }
}
