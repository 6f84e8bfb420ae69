//! Showing the report: the terminal table, Markdown (report.md) and JSON (report.json).

use std::fmt::Write as _;

use textwrap::{Options, WrapAlgorithm, core::display_width};

use super::{
    outcomes::{Evidence, FailedTest, Outcome},
    report::{CriterionReport, Report, Status, outcome_name},
};
use crate::records::function_name;

/// The report as pretty JSON, ending in a newline.
pub(crate) fn json(report: &Report) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(report)? + "\n")
}

/// What verify prints: the table, the failing workspace tests, the totals.
pub(crate) fn terminal(report: &Report, width: usize) -> String {
    let mut out = format!("\n{}", table(report, width));
    let failures = failing_tests(report);
    if !failures.is_empty() {
        out.push_str("failing workspace tests:\n");
        for failure in failures {
            let _ = writeln!(out, "    {}: {}", failure.test, failure.message);
        }
        out.push('\n');
    }
    if !report.stale_paths.is_empty() {
        out.push_str("stale paths in records and docs:\n");
        for stale in &report.stale_paths {
            let _ = writeln!(out, "    {stale}");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{}", totals(report));
    if let Some(mutants) = &report.mutants {
        let _ = writeln!(out, "{mutants}");
    }
    out
}

/// `verify: PASSED`, or `verify: FAILED (why)`.
pub(crate) fn verdict(report: &Report) -> String {
    if report.passed {
        return "verify: PASSED".to_owned();
    }
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
        if !ws.failures.is_empty() {
            why.push(format!("{} workspace tests failed", ws.failures.len()));
        }
        if !ws.doc_tests.ok {
            why.push("doc tests failed".into());
        }
    }
    if !report.stale_paths.is_empty() {
        why.push(format!(
            "{} stale paths in records and docs",
            report.stale_paths.len()
        ));
    }
    format!("verify: FAILED ({})", why.join("; "))
}

fn failing_tests(report: &Report) -> Vec<&FailedTest> {
    match &report.workspace {
        Some(ws) => ws.failures.iter().chain(&ws.doc_tests.failures).collect(),
        None => Vec::new(),
    }
}

/// One row of the table: a criterion (or a record that could not be judged).
struct Row {
    criterion: Vec<String>,
    status: Status,
    evidence: Vec<String>,
}

fn rows(report: &Report) -> Vec<Row> {
    let mut rows = Vec::new();
    for id in &report.unknown_issues {
        rows.push(Row {
            criterion: vec![id.clone()],
            status: Status::Fail,
            evidence: vec![format!("no record {id}.md in {}", report.issues_dir)],
        });
    }
    for record in &report.records {
        if let Some(problem) = &record.problem {
            rows.push(Row {
                criterion: vec![record.id.clone(), format!("({})", record.file)],
                status: Status::Fail,
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
        let name = function_name(&test.test);
        let outcome = outcome_name(test.outcome);
        let mut line = match (test.outcome, &test.message) {
            (Some(Outcome::Passed), _) if test.evidence.is_some() => format!("{name}:"),
            (_, Some(message)) => format!("{name}: {outcome}: {}", shorten(message, 160)),
            (_, None) => format!("{name}: {outcome}"),
        };
        push_evidence(
            &mut line,
            test.evidence.as_ref(),
            test.evidence_error.as_deref(),
        );
        lines.push(line);
    }
    for check in &criterion.against_pre_fix {
        let name = function_name(&check.test);
        let verdict = match (check.outcome, check.symptom_found, &check.message) {
            (Some(Outcome::Failed), true, _) => format!("failed with {:?}", check.symptom),
            (Some(Outcome::Failed), false, Some(message)) => format!(
                "failed without {:?}: {}",
                check.symptom,
                shorten(message, 160)
            ),
            (Some(Outcome::Failed), false, None) => format!("failed without {:?}", check.symptom),
            (outcome, _, _) => outcome_name(outcome).to_owned(),
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
        line.push_str(&compact(evidence));
    } else if let Some(error) = error {
        let _ = write!(line, "{sep}evidence file unreadable: {error}");
    }
}

/// `workers=8 cycles=24000 overlaps=0`: nulls left out, long values shortened.
fn compact(evidence: &Evidence) -> String {
    let mut out = String::new();
    for (key, value) in &evidence.0 {
        let value = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) if !s.is_empty() && !s.contains(char::is_whitespace) => {
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

/// `s` cut to `max` characters, with `...` when cut.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

/// Each line wrapped to `width` columns of display width, first fit, cutting words longer
/// than that; continuation lines indented by two spaces when `indent_continuations`.
fn wrap(lines: &[String], width: usize, indent_continuations: bool) -> Vec<String> {
    let indent = if indent_continuations { "  " } else { "" };
    let options = Options::new(width.max(8))
        .subsequent_indent(indent)
        .break_words(true)
        .wrap_algorithm(WrapAlgorithm::FirstFit);
    lines
        .iter()
        .flat_map(|line| textwrap::wrap(line, &options))
        .map(|it| it.into_owned())
        .collect()
}

/// `s` padded with spaces to `width` columns of display width.
fn pad(s: &str, width: usize) -> String {
    let mut out = s.to_owned();
    out.push_str(&" ".repeat(width.saturating_sub(display_width(s))));
    out
}

/// The terminal table, `width` columns wide.
fn table(report: &Report, width: usize) -> String {
    let criterion_width = 34;
    let status_width = 6;
    let evidence_width = width
        .saturating_sub(criterion_width + status_width + 2)
        .max(30);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} evidence",
        pad("criterion", criterion_width),
        pad("status", status_width)
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
            let s = if i == 0 { row.status.as_str() } else { "" };
            let r = right.get(i).map_or("", String::as_str);
            let line = format!("{} {} {r}", pad(l, criterion_width), pad(s, status_width));
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

/// The same table in Markdown, with a heading, the totals and the failing workspace tests.
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
            row.status.as_str(),
            evidence.join("<br>")
        );
    }
    let _ = writeln!(out, "\n{}", totals(report));
    if let Some(mutants) = &report.mutants {
        let _ = writeln!(out, "\n{}", md_escape(mutants));
    }
    let failures = failing_tests(report);
    if !failures.is_empty() {
        let _ = writeln!(out, "\n## Failing workspace tests\n");
        for failure in failures {
            let _ = writeln!(out, "- `{}`: {}", failure.test, md_escape(&failure.message));
        }
    }
    if !report.stale_paths.is_empty() {
        let _ = writeln!(out, "\n## Stale paths in records and docs\n");
        for stale in &report.stale_paths {
            let _ = writeln!(out, "- {}", md_escape(&stale.to_string()));
        }
    }
    out
}

/// `criteria: 7 passed, 1 failed; workspace tests: 120 passed, 0 failed, 2 ignored; doc tests: ...`
fn totals(report: &Report) -> String {
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
    use crate::verify::report::sample;

    #[test]
    fn evidence_keeps_its_order_and_reads_compactly() -> Result<(), String> {
        let json = r#"{"workers": 8, "cycles": 24000, "mode": "fast", "note": "a b", "e": null}"#;
        let evidence = Evidence::from_json(json)?;
        assert_eq!(
            compact(&evidence),
            r#"workers=8 cycles=24000 mode=fast note="a b""#
        );
        assert_eq!(
            serde_json::to_string(&evidence).map_err(|e| e.to_string())?,
            r#"{"workers":8,"cycles":24000,"mode":"fast","note":"a b","e":null}"#
        );
        let long = Evidence::from_json(&format!(r#"{{"e": "{}"}}"#, "x".repeat(100)))?;
        assert_eq!(compact(&long), format!("e={}...", "x".repeat(57)));
        assert!(Evidence::from_json("[1, 2]").is_err());
        assert!(Evidence::from_json("{").is_err());
        Ok(())
    }

    #[test]
    fn wraps_words_by_display_width_and_cuts_long_ones() {
        let lines = vec!["aaa bbb ccc ddd".to_owned(), "x".repeat(12)];
        assert_eq!(
            wrap(&lines, 8, true),
            ["aaa bbb", "  ccc", "  ddd", "xxxxxx", "  xxxxxx"]
        );
        assert_eq!(
            wrap(&lines, 8, false),
            ["aaa bbb", "ccc ddd", "xxxxxxxx", "xxxx"]
        );
        assert_eq!(wrap(&[String::new()], 8, true), [""]);
        // Each of these takes two columns: three of them fill six.
        let wide = vec!["日本語 日本語 x".to_owned()];
        assert_eq!(wrap(&wide, 8, false), ["日本語", "日本語 x"]);
        assert_eq!(display_width(&pad("日本", 6)), 6);
    }

    #[test]
    fn the_verdict_says_why_it_failed() {
        let report = sample();
        assert_eq!(
            verdict(&report),
            "verify: FAILED (1 criteria failed; unknown issues: BUG-9; 1 workspace tests failed; \
             1 stale paths in records and docs)"
        );
        let text = terminal(&report, 100);
        assert!(
            text.contains("failing workspace tests:\n    bug_423::x: boom | bang\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "stale paths in records and docs:\n    issues/SL-1.md:51: \
                 `crates/scope-lock/src/protocol.rs` names no file"
            ),
            "{text}"
        );
        assert!(
            text.ends_with(
                "doc tests: 2 passed, 0 failed\nmutants: PASSED (the whole library, at abc1234): 9 caught\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_table_shows_each_criterion_with_its_evidence() {
        let table = table(&sample(), 100);
        for want in [
            "BUG-423 AC-4",
            "PASS",
            "eight_processes_never_hold_at_once: workers=8 cycles=24000",
            "  holds=5000 overlaps=0 not_found=0 errors=0",
            "pre-fix: eight_processes_never_hold_at_once: failed with",
            "  \"two holders\"; overlaps=1203",
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
        assert!(md.contains("\nmutants: PASSED (the whole library"), "{md}");
        assert!(
            md.contains("## Stale paths in records and docs\n\n- issues/SL-1.md:51: `crates/"),
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
        assert_eq!(
            criterion["against_pre_fix"][0]["evidence"]["overlaps"],
            1203
        );
        assert_eq!(json["workspace"]["doc_tests"]["passed"], 2);
        Ok(())
    }
}
