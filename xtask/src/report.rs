//! `verify`'s report: what it found, as JSON (serde), as a terminal table and as Markdown.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize, de, ser::SerializeMap};

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
    pub(crate) workspace: Option<Workspace>,
    pub(crate) records: Vec<RecordReport>,
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
pub(crate) struct FailedTest {
    pub(crate) test: String,
    pub(crate) message: String,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct DocTests {
    pub(crate) ok: bool,
    pub(crate) passed: usize,
    pub(crate) failed: usize,
    pub(crate) ignored: usize,
    pub(crate) failures: Vec<FailedTest>,
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
    /// "PASS" or "FAIL".
    pub(crate) status: &'static str,
    /// Why it failed, one sentence each.
    pub(crate) reasons: Vec<String>,
    pub(crate) tests: Vec<TestReport>,
    pub(crate) against_prefix: Vec<PrefixReport>,
}

#[derive(Debug, Serialize)]
pub(crate) struct TestReport {
    pub(crate) test: String,
    /// "passed", "failed", "ignored", "did not report", or "unknown" (no such test, ambiguous).
    pub(crate) outcome: String,
    /// First line of the panic message when it failed.
    pub(crate) message: Option<String>,
    pub(crate) evidence: Option<Evidence>,
    /// Set when the evidence file exists but is not a JSON object.
    pub(crate) evidence_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct PrefixReport {
    pub(crate) test: String,
    pub(crate) symptom: String,
    /// Outcome of the run with `SCOPE_LOCK_IMPL=prefix` (should be "failed").
    pub(crate) outcome: String,
    pub(crate) symptom_found: bool,
    /// Outcome of the same test in the ordinary run on the fix (should be "passed").
    pub(crate) fixed_outcome: String,
    pub(crate) message: Option<String>,
    pub(crate) evidence: Option<Evidence>,
    pub(crate) evidence_error: Option<String>,
}

/// An evidence file: a flat JSON object, its keys kept in the file's order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Evidence(pub(crate) Vec<(String, serde_json::Value)>);

impl Evidence {
    pub(crate) fn from_json(text: &str) -> Result<Evidence, String> {
        serde_json::from_str(text).map_err(|err| err.to_string())
    }

    /// `workers=8 cycles=24000 overlaps=0`: nulls left out, long strings shortened.
    pub(crate) fn compact(&self) -> String {
        let mut out = String::new();
        for (key, value) in &self.0 {
            let value = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s)
                    if !s.is_empty() && !s.contains(char::is_whitespace) =>
                {
                    shorten(s, 60)
                }
                serde_json::Value::String(s) => format!("{:?}", shorten(s, 60)),
                other => shorten(&other.to_string(), 60),
            };
            if !out.is_empty() {
                out.push(' ');
            }
            let _ = write!(out, "{key}={value}");
        }
        out
    }
}

/// `s` cut to `max` characters, with `...` when cut.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

impl<'de> Deserialize<'de> for Evidence {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Evidence;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Evidence, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    entries.push(entry);
                }
                Ok(Evidence(entries))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

impl Serialize for Evidence {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// One row of the table: a criterion (or a record that could not be judged).
struct Row {
    criterion: Vec<String>,
    status: &'static str,
    evidence: Vec<String>,
}

fn rows(report: &Report) -> Vec<Row> {
    let mut rows = Vec::new();
    for id in &report.unknown_issues {
        rows.push(Row {
            criterion: vec![id.clone()],
            status: "FAIL",
            evidence: vec![format!("no record {id}.md in {}", report.issues_dir)],
        });
    }
    for record in &report.records {
        if let Some(problem) = &record.problem {
            rows.push(Row {
                criterion: vec![record.id.clone(), format!("({})", record.file)],
                status: "FAIL",
                evidence: vec![format!("unreadable record: {problem}")],
            });
        }
        for criterion in &record.criteria {
            rows.push(Row {
                criterion: vec![
                    format!("{} {}", record.id, criterion.id),
                    criterion.summary.clone(),
                ],
                status: criterion.status,
                evidence: evidence_lines(criterion),
            });
        }
    }
    rows
}

fn evidence_lines(criterion: &CriterionReport) -> Vec<String> {
    let mut lines: Vec<String> = criterion
        .reasons
        .iter()
        .map(|it| format!("! {it}"))
        .collect();
    for test in &criterion.tests {
        let name = crate::records::function_name(&test.test);
        let mut line = match (test.outcome.as_str(), &test.message) {
            ("passed", _) if test.evidence.is_some() => format!("{name}:"),
            (outcome, Some(message)) => format!("{name}: {outcome}: {}", shorten(message, 160)),
            (outcome, None) => format!("{name}: {outcome}"),
        };
        push_evidence(
            &mut line,
            test.evidence.as_ref(),
            test.evidence_error.as_deref(),
        );
        lines.push(line);
    }
    for check in &criterion.against_prefix {
        let name = crate::records::function_name(&check.test);
        let verdict = match (check.outcome.as_str(), check.symptom_found) {
            ("failed", true) => format!("failed with {:?}", check.symptom),
            ("failed", false) => match &check.message {
                Some(message) => format!(
                    "failed without {:?}: {}",
                    check.symptom,
                    shorten(message, 160)
                ),
                None => format!("failed without {:?}", check.symptom),
            },
            (outcome, _) => outcome.to_owned(),
        };
        let mut line = format!("pre-fix: {name}: {verdict}");
        push_evidence(
            &mut line,
            check.evidence.as_ref(),
            check.evidence_error.as_deref(),
        );
        lines.push(line);
    }
    lines
}

fn push_evidence(line: &mut String, evidence: Option<&Evidence>, error: Option<&str>) {
    let sep = if line.ends_with(':') { " " } else { "; " };
    if let Some(evidence) = evidence {
        line.push_str(sep);
        line.push_str(&evidence.compact());
    } else if let Some(error) = error {
        let _ = write!(line, "{sep}evidence file unreadable: {error}");
    }
}

/// Greedy word wrap; continuation lines of one logical line are indented by two spaces,
/// and words longer than the width are cut.
fn wrap(lines: &[String], width: usize, indent_continuations: bool) -> Vec<String> {
    let width = width.max(8);
    let mut out = Vec::new();
    for line in lines {
        let mut current = String::new();
        let mut first = true;
        for word in line.split_whitespace() {
            let mut word = word.to_owned();
            loop {
                let prefix = if first || !indent_continuations {
                    ""
                } else {
                    "  "
                };
                let sep = if current.is_empty() { prefix } else { " " };
                let room = width.saturating_sub(current.chars().count() + sep.chars().count());
                if word.chars().count() <= room {
                    current.push_str(sep);
                    current.push_str(&word);
                    break;
                }
                if current.is_empty() || current.trim().is_empty() {
                    // The word alone is too long: cut it.
                    let head: String = word.chars().take(room.max(1)).collect();
                    let tail: String = word.chars().skip(room.max(1)).collect();
                    current.push_str(sep);
                    current.push_str(&head);
                    out.push(std::mem::take(&mut current));
                    first = false;
                    word = tail;
                    if word.is_empty() {
                        break;
                    }
                    continue;
                }
                out.push(std::mem::take(&mut current));
                first = false;
            }
        }
        if !current.is_empty() || first {
            out.push(current);
        }
    }
    out
}

/// The terminal table, `width` columns wide.
pub(crate) fn text_table(report: &Report, width: usize) -> String {
    let criterion_width = 34;
    let status_width = 6;
    let evidence_width = width
        .saturating_sub(criterion_width + status_width + 2)
        .max(30);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<criterion_width$} {:<status_width$} evidence",
        "criterion", "status"
    );
    let _ = writeln!(
        out,
        "{} {} {}",
        "-".repeat(criterion_width),
        "-".repeat(status_width),
        "-".repeat(evidence_width)
    );
    for row in rows(report) {
        let left = wrap(&row.criterion, criterion_width, false);
        let right = wrap(&row.evidence, evidence_width, true);
        for i in 0..left.len().max(right.len()).max(1) {
            let l = left.get(i).map_or("", String::as_str);
            let s = if i == 0 { row.status } else { "" };
            let r = right.get(i).map_or("", String::as_str);
            let line = format!("{l:<criterion_width$} {s:<status_width$} {r}");
            let _ = writeln!(out, "{}", line.trim_end());
        }
        let _ = writeln!(out);
    }
    out
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The same table in Markdown, with a heading and the totals.
pub(crate) fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let verdict = if report.passed { "PASSED" } else { "FAILED" };
    let _ = writeln!(out, "# cargo xtask verify: {verdict}\n");
    let _ = writeln!(out, "| criterion | status | evidence |");
    let _ = writeln!(out, "| --- | --- | --- |");
    for row in rows(report) {
        let criterion = match row.criterion.as_slice() {
            [id, rest @ ..] => {
                let mut cell = format!("**{}**", md_escape(id));
                for line in rest {
                    cell.push_str("<br>");
                    cell.push_str(&md_escape(line));
                }
                cell
            }
            [] => String::new(),
        };
        let evidence: Vec<String> = row.evidence.iter().map(|it| md_escape(it)).collect();
        let _ = writeln!(
            out,
            "| {criterion} | {} | {} |",
            row.status,
            evidence.join("<br>")
        );
    }
    let _ = writeln!(out, "\n{}", totals(report));
    if let Some(workspace) = &report.workspace {
        let failures = workspace
            .failures
            .iter()
            .chain(&workspace.doc_tests.failures);
        let mut first = true;
        for failure in failures {
            if first {
                let _ = writeln!(out, "\n## Failing workspace tests\n");
                first = false;
            }
            let _ = writeln!(out, "- `{}`: {}", failure.test, md_escape(&failure.message));
        }
    }
    out
}

/// `criteria: 7 passed, 1 failed; workspace tests: 120 passed, 0 failed, 2 ignored; doc tests: ...`
pub(crate) fn totals(report: &Report) -> String {
    let mut out = format!(
        "criteria: {} passed, {} failed",
        report.criteria_passed, report.criteria_failed
    );
    if !report.unknown_issues.is_empty() {
        let _ = write!(
            out,
            "; unknown issues: {}",
            report.unknown_issues.join(", ")
        );
    }
    match &report.workspace {
        Some(ws) => {
            let _ = write!(
                out,
                "; workspace tests: {} passed, {} failed, {} ignored; doc tests: {} passed, {} failed{}",
                ws.passed,
                ws.failed,
                ws.ignored,
                ws.doc_tests.passed,
                ws.doc_tests.failed,
                if ws.doc_tests.ok {
                    ""
                } else {
                    " (cargo test --doc failed)"
                },
            );
        }
        None => out.push_str("; workspace tests: not run"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
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
                        status: "PASS",
                        reasons: vec![],
                        tests: vec![TestReport {
                            test: "bug_423::ac4_eight_processes_never_hold_at_once".into(),
                            outcome: "passed".into(),
                            message: None,
                            evidence: evidence.clone(),
                            evidence_error: None,
                        }],
                        against_prefix: vec![PrefixReport {
                            test: "bug_423::ac4_eight_processes_never_hold_at_once".into(),
                            symptom: "two holders".into(),
                            outcome: "failed".into(),
                            symptom_found: true,
                            fixed_outcome: "passed".into(),
                            message: Some("two holders at once".into()),
                            evidence: Evidence::from_json(r#"{"overlaps": 1203}"#).ok(),
                            evidence_error: None,
                        }],
                    },
                    CriterionReport {
                        id: "AC-9".into(),
                        summary: "bogus".into(),
                        status: "FAIL",
                        reasons: vec!["no test `nope` in scope_lock".into()],
                        tests: vec![
                            TestReport {
                                test: "scope_lock::nope".into(),
                                outcome: "unknown".into(),
                                message: None,
                                evidence: None,
                                evidence_error: None,
                            },
                            TestReport {
                                test: "scope_lock::record::tests::b".into(),
                                outcome: "failed".into(),
                                message: Some("assertion failed".into()),
                                evidence: None,
                                evidence_error: Some("expected value at line 1 column 1".into()),
                            },
                        ],
                        against_prefix: vec![],
                    },
                ],
            }],
        }
    }

    #[test]
    fn evidence_keeps_its_order_and_reads_compactly() -> Result<(), String> {
        let json = r#"{"workers": 8, "cycles": 24000, "mode": "fast", "note": "a b", "e": null}"#;
        let evidence = Evidence::from_json(json)?;
        assert_eq!(
            evidence.compact(),
            r#"workers=8 cycles=24000 mode=fast note="a b""#
        );
        assert_eq!(
            serde_json::to_string(&evidence).map_err(|e| e.to_string())?,
            r#"{"workers":8,"cycles":24000,"mode":"fast","note":"a b","e":null}"#
        );
        let long = Evidence::from_json(&format!(r#"{{"e": "{}"}}"#, "x".repeat(100)))?;
        assert_eq!(long.compact(), format!("e={}...", "x".repeat(57)));
        assert!(Evidence::from_json("[1, 2]").is_err());
        assert!(Evidence::from_json("{").is_err());
        Ok(())
    }

    #[test]
    fn wraps_words_and_cuts_long_ones() {
        let lines = vec!["aaa bbb ccc ddd".to_owned(), "x".repeat(12)];
        assert_eq!(
            wrap(&lines, 8, true),
            ["aaa bbb", "  ccc", "  ddd", "xxxxxxxx", "  xxxx"]
        );
        assert_eq!(
            wrap(&lines, 8, false),
            ["aaa bbb", "ccc ddd", "xxxxxxxx", "xxxx"]
        );
        assert_eq!(wrap(&[String::new()], 8, true), [""]);
    }

    #[test]
    fn the_table_shows_each_criterion_with_its_evidence() {
        let table = text_table(&sample(), 100);
        for want in [
            "BUG-423 AC-4",
            "PASS",
            "ac4_eight_processes_never_hold_at_once: workers=8",
            "  cycles=24000 holds=5000 overlaps=0",
            "pre-fix: ac4_eight_processes_never_hold_at_once: failed",
            "  with \"two holders\"; overlaps=1203",
            "! no test `nope` in scope_lock",
            "b: failed: assertion failed; evidence file unreadable",
            "BUG-9",
            "no record BUG-9.md in issues",
        ] {
            assert!(table.contains(want), "table lacks {want:?}:\n{table}");
        }
        assert!(
            table.lines().all(|line| line.chars().count() <= 100),
            "{table}"
        );
    }

    #[test]
    fn markdown_escapes_pipes_and_lists_failures() {
        let md = markdown(&sample());
        assert!(md.starts_with("# cargo xtask verify: FAILED"));
        assert!(
            md.contains(
                "| **BUG-423 AC-4**<br>eight processes never hold the same scope at once | PASS |"
            ),
            "{md}"
        );
        assert!(md.contains("boom \\| bang"), "{md}");
        assert!(
            md.contains("workspace tests: 10 passed, 1 failed, 0 ignored"),
            "{md}"
        );
    }

    #[test]
    fn the_json_report_has_the_verdict_and_per_test_evidence() -> Result<(), serde_json::Error> {
        let json: serde_json::Value = serde_json::to_value(sample())?;
        assert_eq!(json["passed"], false);
        let criterion = &json["records"][0]["criteria"][0];
        assert_eq!(criterion["status"], "PASS");
        assert_eq!(criterion["tests"][0]["evidence"]["cycles"], 24000);
        assert_eq!(criterion["against_prefix"][0]["evidence"]["overlaps"], 1203);
        assert_eq!(json["workspace"]["doc_tests"]["passed"], 2);
        Ok(())
    }
}
