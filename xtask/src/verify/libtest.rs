//! Reading libtest's output: `--list --format terse` listings and the standard (`pretty`)
//! report of a run.
//!
//! Parsing text is kept here, and only here, because libtest has no stable machine-readable
//! alternative: `--format json` (and `--report-time`) still need `-Z unstable-options`, which
//! stable toolchains refuse. `--list --format terse` is stable. When json output is
//! stabilised, this module is what to replace.

use std::collections::BTreeMap;

use super::outcomes::Outcome;

/// The tests in `<exe> --list --format terse` output (`name: test` lines; benches are skipped).
pub(crate) fn parse_list(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
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

/// stdout without libtest's own lines (`test <name> ... FAILED`, `---- <name> stdout ----`,
/// the indented list of failures): what the tests themselves printed.
pub(crate) fn without_result_lines(stdout: &str) -> String {
    stdout
        .lines()
        .filter(|line| {
            !line.starts_with("test ") && !line.starts_with("---- ") && !line.starts_with("    ")
        })
        .collect::<Vec<_>>()
        .join("\n")
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
    fn the_symptom_is_not_looked_for_in_result_lines() {
        let stdout = "running 1 test\ntest two_holders ... FAILED\n\nfailures:\n    two_holders\n";
        assert!(!without_result_lines(stdout).contains("two_holders"));
    }
}
