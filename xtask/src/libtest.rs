//! Test binaries: finding them in cargo's JSON messages, listing their tests, and
//! reading libtest's standard (`pretty`) output.

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::Context;
use serde::Deserialize;

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
    /// The name a test id uses for this binary: the cargo target name, with `-` read as `_`
    /// (that is how rustc names the crate).
    pub(crate) fn id_name(&self) -> String {
        self.target.replace('-', "_")
    }
}

/// Reads `cargo test --no-run --message-format=json...` stdout.
pub(crate) fn test_binaries(cargo_stdout: &str) -> anyhow::Result<Vec<TestBinary>> {
    #[derive(Deserialize)]
    struct Message {
        reason: String,
        #[serde(default)]
        package_id: String,
        manifest_path: Option<PathBuf>,
        target: Option<Target>,
        profile: Option<Profile>,
        executable: Option<PathBuf>,
    }
    #[derive(Deserialize)]
    struct Target {
        name: String,
        #[serde(default)]
        kind: Vec<String>,
    }
    #[derive(Deserialize)]
    struct Profile {
        test: bool,
    }

    let mut binaries = Vec::new();
    for line in cargo_stdout.lines().filter(|line| line.starts_with('{')) {
        let message: Message = serde_json::from_str(line)
            .with_context(|| format!("reading cargo's message {line}"))?;
        if message.reason != "compiler-artifact" || !message.profile.is_some_and(|it| it.test) {
            continue;
        }
        let (Some(executable), Some(target), Some(manifest_path)) =
            (message.executable, message.target, message.manifest_path)
        else {
            continue;
        };
        let package_dir = manifest_path
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default();
        binaries.push(TestBinary {
            package: package_name(&message.package_id, &package_dir),
            target: target.name,
            kind: target.kind.first().cloned().unwrap_or_default(),
            executable,
            package_dir,
        });
    }
    Ok(binaries)
}

/// The package name in a package id: `path+file:///w/tests#regression@0.0.0`,
/// `path+file:///w/xtask#0.0.0` (name = directory), or the old `name 0.0.0 (source)`.
fn package_name(package_id: &str, package_dir: &std::path::Path) -> String {
    if let Some((url, fragment)) = package_id.split_once('#') {
        return match fragment.split_once('@') {
            Some((name, _)) => name.to_owned(),
            None => url.rsplit('/').next().unwrap_or(url).to_owned(),
        };
    }
    match package_id.split_whitespace().next() {
        Some(name) => name.to_owned(),
        None => package_dir
            .file_name()
            .map(|it| it.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

/// The tests in `<exe> --list --format terse` output (`name: test` lines; benches are skipped).
pub(crate) fn parse_list(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Outcome {
    Passed,
    Failed,
    Ignored,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Ignored => "ignored",
        }
    }
}

/// What a run of a test binary reported.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct RunReport {
    /// Each test's outcome, by libtest name.
    pub(crate) outcomes: BTreeMap<String, Outcome>,
    /// The captured output of each failed test (its `---- name stdout ----` section).
    pub(crate) failures: BTreeMap<String, String>,
}

/// Parses libtest's standard output: `test <name> ... ok|FAILED|ignored` lines and the
/// `---- <name> stdout ----` sections under `failures:`.
pub(crate) fn parse_run(stdout: &str) -> RunReport {
    let mut report = RunReport::default();
    let mut section: Option<(String, Vec<&str>)> = None;
    for line in stdout.lines() {
        if let Some(name) = failure_header(line) {
            if let Some((name, lines)) = section.take() {
                report.failures.insert(name, join_section(&lines));
            }
            section = Some((name.to_owned(), Vec::new()));
            continue;
        }
        if let Some((_, lines)) = &mut section {
            if line == "failures:" || line == "successes:" || line.starts_with("test result: ") {
                if let Some((name, lines)) = section.take() {
                    report.failures.insert(name, join_section(&lines));
                }
            } else {
                lines.push(line);
            }
            continue;
        }
        if let Some((name, outcome)) = result_line(line) {
            report.outcomes.insert(name.to_owned(), outcome);
        }
    }
    if let Some((name, lines)) = section.take() {
        report.failures.insert(name, join_section(&lines));
    }
    report
}

fn failure_header(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("---- ")?;
    let name = rest
        .strip_suffix(" stdout ----")
        .or_else(|| rest.strip_suffix(" stderr ----"))?;
    Some(strip_should_panic(name))
}

fn result_line(line: &str) -> Option<(&str, Outcome)> {
    let rest = line.strip_prefix("test ")?;
    let (name, result) = rest.rsplit_once(" ... ")?;
    let outcome = match result.trim_end() {
        "ok" => Outcome::Passed,
        "FAILED" => Outcome::Failed,
        r if r == "ignored" || r.starts_with("ignored, ") => Outcome::Ignored,
        _ => return None,
    };
    Some((strip_should_panic(name), outcome))
}

fn strip_should_panic(name: &str) -> &str {
    name.strip_suffix(" - should panic").unwrap_or(name)
}

fn join_section(lines: &[&str]) -> String {
    let mut lines = lines;
    while let [first, rest @ ..] = lines
        && first.trim().is_empty()
    {
        lines = rest;
    }
    while let [rest @ .., last] = lines
        && last.trim().is_empty()
    {
        lines = rest;
    }
    lines.join("\n")
}

/// The first line of a failed test's panic message (or of its `Error: ...` when it returned
/// `Err`), else the first line of its output.
pub(crate) fn first_failure_line(failure: &str) -> Option<String> {
    let lines: Vec<&str> = failure.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        // "thread 'name' panicked at ..." or, lately, "thread 'name' (1234) panicked at ...".
        if !line.starts_with("thread '") {
            continue;
        }
        let Some(at) = line.find(" panicked at ") else {
            continue;
        };
        let rest = &line[at + " panicked at ".len()..];
        // Since Rust 1.73: "thread 'x' panicked at src/a.rs:1:2:" then the message.
        if rest.ends_with(':')
            && let Some(message) = lines[i + 1..].iter().find(|it| !it.trim().is_empty())
        {
            return Some(message.trim().to_owned());
        }
        return Some(rest.trim().to_owned());
    }
    if let Some(error) = lines.iter().find(|it| it.starts_with("Error: ")) {
        return Some(error.trim().to_owned());
    }
    lines
        .iter()
        .find(|it| !it.trim().is_empty())
        .map(|it| it.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "
running 5 tests
test record::tests::a ... ok
test record::tests::b ... FAILED
test record::tests::slow has been running for over 60 seconds
test record::tests::c ... ignored
test record::tests::d ... ignored, needs root
test record::tests::e - should panic ... ok
some stray output from a child
test record::tests::slow ... FAILED

failures:

---- record::tests::b stdout ----

thread 'record::tests::b' panicked at crates/scope-lock/src/record.rs:12:5:
assertion `left == right` failed: counts differ
  left: 1
 right: 2
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

---- record::tests::slow stdout ----
Error: NotFound while releasing

failures:
    record::tests::b
    record::tests::slow

test result: FAILED. 2 passed; 2 failed; 2 ignored; 0 measured; 0 filtered out; finished in 61.00s

";

    #[test]
    fn reads_outcomes_and_failure_sections() {
        let report = parse_run(RUN);
        let outcomes: Vec<(&str, Outcome)> = report
            .outcomes
            .iter()
            .map(|(name, outcome)| (name.as_str(), *outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("record::tests::a", Outcome::Passed),
                ("record::tests::b", Outcome::Failed),
                ("record::tests::c", Outcome::Ignored),
                ("record::tests::d", Outcome::Ignored),
                ("record::tests::e", Outcome::Passed),
                ("record::tests::slow", Outcome::Failed),
            ]
        );
        assert_eq!(report.failures.len(), 2);
        let b = &report.failures["record::tests::b"];
        assert!(b.starts_with("thread 'record::tests::b' panicked"), "{b}");
        assert!(b.ends_with("to display a backtrace"), "{b}");
        assert_eq!(
            first_failure_line(b).as_deref(),
            Some("assertion `left == right` failed: counts differ")
        );
        let slow = &report.failures["record::tests::slow"];
        assert_eq!(slow, "Error: NotFound while releasing");
        assert_eq!(
            first_failure_line(slow).as_deref(),
            Some("Error: NotFound while releasing")
        );
    }

    #[test]
    fn first_failure_line_reads_panics_with_thread_ids() {
        let failure = "thread 'ac4' (12087) panicked at tests/bug_423.rs:5:9:\ntwo holders at once: 3\nnote: ...";
        assert_eq!(
            first_failure_line(failure).as_deref(),
            Some("two holders at once: 3")
        );
    }

    #[test]
    fn first_failure_line_falls_back_sensibly() {
        assert_eq!(
            first_failure_line("thread 'x' panicked at 'old style', src/lib.rs:1:1").as_deref(),
            Some("'old style', src/lib.rs:1:1")
        );
        assert_eq!(
            first_failure_line("\n  worker 3 crashed\nmore").as_deref(),
            Some("worker 3 crashed")
        );
        assert_eq!(first_failure_line(""), None);
    }

    #[test]
    fn lists_tests_and_skips_benches() {
        let list = "bug_423::a: test\nrecord::tests::b: test\nbench_x: bench\n\n";
        assert_eq!(parse_list(list), ["bug_423::a", "record::tests::b"]);
    }

    #[test]
    fn finds_test_binaries_in_cargo_messages() -> anyhow::Result<()> {
        let messages = r#"{"reason":"compiler-artifact","package_id":"path+file:///w/crates/scope-lock#0.1.0","manifest_path":"/w/crates/scope-lock/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"scope_lock","src_path":"/w/crates/scope-lock/src/lib.rs","edition":"2024","doc":true,"doctest":true,"test":true},"profile":{"opt_level":"0","debuginfo":2,"debug_assertions":true,"overflow_checks":true,"test":true},"features":[],"filenames":["/w/target/debug/deps/scope_lock-1"],"executable":"/w/target/debug/deps/scope_lock-1","fresh":true}
{"reason":"compiler-artifact","package_id":"path+file:///w/crates/scope-lock#0.1.0","manifest_path":"/w/crates/scope-lock/Cargo.toml","target":{"kind":["lib"],"name":"scope_lock"},"profile":{"test":false},"filenames":["/w/target/debug/deps/libscope_lock-2.rlib"],"executable":null,"fresh":true}
{"reason":"compiler-artifact","package_id":"path+file:///w/tests#regression@0.0.0","manifest_path":"/w/tests/Cargo.toml","target":{"kind":["test"],"name":"bug_423"},"profile":{"test":true},"filenames":["/w/target/debug/deps/bug_423-3"],"executable":"/w/target/debug/deps/bug_423-3","fresh":false}
{"reason":"compiler-artifact","package_id":"path+file:///w/tests#regression@0.0.0","manifest_path":"/w/tests/Cargo.toml","target":{"kind":["bin"],"name":"regression-worker"},"profile":{"test":false},"filenames":["/w/target/debug/regression-worker"],"executable":"/w/target/debug/regression-worker","fresh":false}
{"reason":"compiler-artifact","package_id":"xtask 0.0.0 (path+file:///w/xtask)","manifest_path":"/w/xtask/Cargo.toml","target":{"kind":["bin"],"name":"xtask"},"profile":{"test":true},"filenames":[],"executable":"/w/target/debug/deps/xtask-4","fresh":true}
{"reason":"build-finished","success":true}"#;
        let binaries = test_binaries(messages)?;
        let summary: Vec<_> = binaries
            .iter()
            .map(|it| {
                (
                    it.package.as_str(),
                    it.target.as_str(),
                    it.kind.as_str(),
                    it.executable.to_string_lossy().into_owned(),
                    it.package_dir.to_string_lossy().into_owned(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "scope-lock",
                    "scope_lock",
                    "lib",
                    "/w/target/debug/deps/scope_lock-1".to_owned(),
                    "/w/crates/scope-lock".to_owned()
                ),
                (
                    "regression",
                    "bug_423",
                    "test",
                    "/w/target/debug/deps/bug_423-3".to_owned(),
                    "/w/tests".to_owned()
                ),
                (
                    "xtask",
                    "xtask",
                    "bin",
                    "/w/target/debug/deps/xtask-4".to_owned(),
                    "/w/xtask".to_owned()
                ),
            ]
        );
        Ok(())
    }
}
