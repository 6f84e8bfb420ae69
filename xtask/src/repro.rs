//! `cargo xtask repro [BUG-423] [--soak]`: BUG-423 happening on the pre-fix port and not
//! on the fix, in numbers.
//!
//! `regression-worker repro --impl prefix|fixed [--soak]` drives many processes acquiring and
//! releasing one scope and prints one JSON object, its last line on stdout, with what it saw.

use std::{fmt::Write as _, path::PathBuf};

use anyhow::{Context, bail};
use serde_json::{Map, Value};
use xshell::{Shell, cmd};

use crate::{ReproFlags, target_dir, without_cargo_package_env};

const KNOWN: &str = "BUG-423";

/// The counts the worker reports, in the order shown.
const FIELDS: &[&str] = &[
    "workers",
    "cycles",
    "holds",
    "conflicts",
    "not_found_on_release",
    "other_errors",
    "overlaps",
    "max_holders",
    "probes",
    "unheld_probes",
    "scans",
    "partial_reads",
    "elapsed_ms",
];

pub(crate) fn run(sh: &Shell, flags: &ReproFlags) -> anyhow::Result<bool> {
    if let Some(issue) = &flags.issue
        && !issue.eq_ignore_ascii_case(KNOWN)
    {
        bail!("repro knows only {KNOWN}, not {issue}");
    }
    let worker = build_worker(sh)?;
    let soak: &[&str] = if flags.soak { &["--soak"] } else { &[] };
    let mut results = Vec::new();
    for which in ["prefix", "fixed"] {
        eprintln!(
            "running regression-worker repro --impl {which}{} ...",
            if flags.soak { " --soak" } else { "" }
        );
        let output = without_cargo_package_env(cmd!(sh, "{worker} repro --impl {which} {soak...}"))
            .env_remove("SCOPE_LOCK_IMPL")
            .ignore_status()
            .output()?;
        // The worker's own diagnostics go to stderr: pass them on.
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut result = WorkerResult::from_stdout(&stdout).with_context(|| {
            format!("the {which} run (exit {}) printed no result", output.status)
        })?;
        if !output.status.success() {
            result.exit = Some(output.status.to_string());
        }
        results.push(result);
    }
    let [prefix, fixed] = <[WorkerResult; 2]>::try_from(results)
        .map_err(|_| anyhow::anyhow!("expected two worker results"))?;
    print!("{}", render(&prefix, &fixed));
    let verdict = verdict(&prefix, &fixed);
    println!("{}", verdict.message);
    Ok(verdict.ok)
}

fn build_worker(sh: &Shell) -> anyhow::Result<PathBuf> {
    eprintln!("building regression-worker ...");
    let messages = without_cargo_package_env(cmd!(
        sh,
        "cargo build -p regression --bin regression-worker --message-format=json-render-diagnostics"
    ))
    .read()
    .context("building regression-worker failed")?;
    // Where cargo says it put the binary; else where it normally is.
    let from_cargo = messages
        .lines()
        .filter(|line| line.starts_with('{'))
        .find_map(|line| {
            let message: Value = serde_json::from_str(line).ok()?;
            (message["reason"] == "compiler-artifact"
                && message["target"]["name"] == "regression-worker")
                .then(|| message["executable"].as_str().map(PathBuf::from))
                .flatten()
        });
    Ok(from_cargo.unwrap_or_else(|| target_dir(sh).join("debug").join("regression-worker")))
}

/// One run's report, as the worker printed it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WorkerResult {
    pub(crate) implementation: String,
    counts: Map<String, Value>,
    /// Fields the worker did not report (shown as 0, and said so).
    pub(crate) missing: Vec<&'static str>,
    /// Set when the worker exited unsuccessfully.
    pub(crate) exit: Option<String>,
}

impl WorkerResult {
    /// The last non-empty stdout line must be a JSON object.
    pub(crate) fn from_stdout(stdout: &str) -> anyhow::Result<WorkerResult> {
        let last = stdout
            .lines()
            .rev()
            .find(|it| !it.trim().is_empty())
            .context("stdout is empty")?;
        let value: Value = serde_json::from_str(last)
            .with_context(|| format!("its last line is not JSON: {last}"))?;
        let Value::Object(counts) = value else {
            bail!("its last line is not a JSON object: {last}")
        };
        let implementation = counts
            .get("impl")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let missing = FIELDS
            .iter()
            .copied()
            .filter(|field| !counts.contains_key(*field))
            .collect();
        Ok(WorkerResult {
            implementation,
            counts,
            missing,
            exit: None,
        })
    }

    pub(crate) fn get(&self, field: &str) -> u64 {
        match self.counts.get(field) {
            Some(Value::Number(n)) => n
                .as_u64()
                .or_else(|| n.as_f64().map(|f| f.max(0.0) as u64))
                .unwrap_or(0),
            _ => 0,
        }
    }

    /// What shows the bug: the counts that must be zero on a correct implementation.
    fn symptoms(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (field, what) in [
            ("not_found_on_release", "NotFound on release"),
            ("overlaps", "moments with two holders"),
            (
                "unheld_probes",
                "probes finding the lock file not flocked while held",
            ),
            ("partial_reads", "partial/empty lock file reads"),
        ] {
            let n = self.get(field);
            if n > 0 {
                out.push(format!("{n} {what}"));
            }
        }
        out
    }
}

fn percent_of(part: u64, whole: u64) -> String {
    if whole == 0 {
        return format!("{part} of 0");
    }
    format!("{:.1}% of {whole}", part as f64 * 100.0 / whole as f64)
}

pub(crate) fn render(prefix: &WorkerResult, fixed: &WorkerResult) -> String {
    type Show = fn(&WorkerResult) -> String;
    let rows: [(&str, Show); 12] = [
        ("worker processes", |r| r.get("workers").to_string()),
        ("acquire attempts", |r| r.get("attempts").to_string()),
        ("acquire/release cycles", |r| r.get("cycles").to_string()),
        ("successful holds", |r| r.get("holds").to_string()),
        ("refused: scope busy (conflicts)", |r| {
            r.get("conflicts").to_string()
        }),
        ("NotFound on release", |r| {
            r.get("not_found_on_release").to_string()
        }),
        ("other errors", |r| r.get("other_errors").to_string()),
        ("moments with two holders", |r| {
            r.get("overlaps").to_string()
        }),
        ("most holders at once", |r| r.get("max_holders").to_string()),
        ("lock file not flocked while held", |r| {
            percent_of(r.get("unheld_probes"), r.get("probes"))
        }),
        ("partial/empty lock file reads", |r| {
            format!("{} of {}", r.get("partial_reads"), r.get("scans"))
        }),
        ("elapsed", |r| {
            format!("{:.1} s", r.get("elapsed_ms") as f64 / 1000.0)
        }),
    ];
    let mut out = String::new();
    let workers = prefix.get("workers").max(fixed.get("workers"));
    let _ = writeln!(
        out,
        "{KNOWN} steps to reproduce: {workers} processes rapidly acquiring and releasing the same scope"
    );
    let _ = writeln!(out, "{:<35}{:<20}fix", "", "pre-fix port");
    let has_attempts = [prefix, fixed]
        .iter()
        .any(|r| r.counts.contains_key("attempts"));
    for (label, value) in &rows {
        if *label == "acquire attempts" && !has_attempts {
            continue;
        }
        let _ = writeln!(out, "{label:<35}{:<20}{}", value(prefix), value(fixed));
    }
    for (name, result, want) in [("pre-fix", prefix, "prefix"), ("fix", fixed, "fixed")] {
        if result.implementation != want {
            let _ = writeln!(
                out,
                "note: the {name} run says impl={:?}, expected {want:?}",
                result.implementation
            );
        }
        if !result.missing.is_empty() {
            let _ = writeln!(
                out,
                "note: the {name} run did not report {}; shown as 0",
                result.missing.join(", ")
            );
        }
        if let Some(exit) = &result.exit {
            let _ = writeln!(
                out,
                "note: the {name} worker exited unsuccessfully ({exit})"
            );
        }
    }
    out
}

pub(crate) struct Verdict {
    pub(crate) ok: bool,
    pub(crate) message: String,
}

pub(crate) fn verdict(prefix: &WorkerResult, fixed: &WorkerResult) -> Verdict {
    let shown = prefix.symptoms();
    let mut left = fixed.symptoms();
    let other_errors = fixed.get("other_errors");
    if other_errors > 0 {
        left.push(format!("{other_errors} other errors"));
    }
    if let Some(exit) = &fixed.exit {
        left.push(format!("the worker exited unsuccessfully ({exit})"));
    }
    if fixed.get("cycles") == 0 {
        left.push("no acquire attempts at all, so it proves nothing".to_owned());
    }
    match (shown.is_empty(), left.is_empty()) {
        (false, true) => Verdict {
            ok: true,
            message: format!(
                "verdict: {KNOWN} reproduced on the pre-fix port ({}); the fix shows none of it.",
                shown.join(", ")
            ),
        },
        (true, true) => Verdict {
            ok: false,
            message: "verdict: NOT reproduced: the pre-fix port showed no NotFound, no two holders, \
                      no unflocked lock file and no partial read this time (the fix was clean too). \
                      Try --soak."
                .to_owned(),
        },
        (shown_empty, false) => Verdict {
            ok: false,
            message: format!(
                "verdict: FAILED: the fix still shows {}{}.",
                left.join(", "),
                if shown_empty {
                    "; and the pre-fix port showed nothing"
                } else {
                    ""
                }
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = r#"{"impl":"prefix","workers":8,"cycles":24000,"holds":5012,"conflicts":18951,"not_found_on_release":37,"other_errors":0,"overlaps":1203,"max_holders":3,"probes":5012,"unheld_probes":5012,"scans":90000,"partial_reads":55,"elapsed_ms":4210}"#;
    const FIXED: &str = r#"{"impl":"fixed","workers":8,"cycles":24000,"holds":4933,"conflicts":19067,"not_found_on_release":0,"other_errors":0,"overlaps":0,"max_holders":1,"probes":4933,"unheld_probes":0,"scans":88000,"partial_reads":0,"elapsed_ms":3980}"#;

    fn result(json: &str) -> WorkerResult {
        match WorkerResult::from_stdout(&format!("worker 1 started\n{json}\n\n")) {
            Ok(result) => result,
            Err(err) => panic!("{err:#}"),
        }
    }

    #[test]
    fn reads_the_last_stdout_line() {
        let prefix = result(PREFIX);
        assert_eq!(prefix.implementation, "prefix");
        assert_eq!(prefix.get("overlaps"), 1203);
        assert!(prefix.missing.is_empty());
        assert!(WorkerResult::from_stdout("").is_err());
        assert!(WorkerResult::from_stdout("{\"a\":1}\nnot json\n").is_err());
        assert!(WorkerResult::from_stdout("[1]\n").is_err());
    }

    #[test]
    fn missing_fields_read_as_zero_and_are_named() {
        let partial = result(r#"{"impl":"fixed","cycles":10,"holds":4}"#);
        assert_eq!(partial.get("overlaps"), 0);
        assert!(partial.missing.contains(&"overlaps") && !partial.missing.contains(&"cycles"));
        let table = render(&result(PREFIX), &partial);
        assert!(
            table.contains("note: the fix run did not report workers, conflicts,"),
            "{table}"
        );
    }

    #[test]
    fn renders_side_by_side() {
        let table = render(&result(PREFIX), &result(FIXED));
        let expected = [
            "BUG-423 steps to reproduce: 8 processes rapidly acquiring and releasing the same scope",
            "                                   pre-fix port        fix",
        ];
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[..2], expected);
        for want in [
            "acquire/release cycles             24000               24000",
            "NotFound on release                37                  0",
            "moments with two holders           1203                0",
            "lock file not flocked while held   100.0% of 5012      0.0% of 4933",
            "partial/empty lock file reads      55 of 90000         0 of 88000",
            "elapsed                            4.2 s               4.0 s",
        ] {
            assert!(lines.contains(&want), "missing {want:?} in\n{table}");
        }
        assert!(!table.contains("note:"));
        assert!(!table.contains("acquire attempts"), "attempts are optional");
        let mut with_attempts = result(PREFIX);
        with_attempts.counts.insert("attempts".into(), 25201.into());
        let table = render(&with_attempts, &result(FIXED));
        assert!(
            table.contains("acquire attempts                   25201               0\n"),
            "{table}"
        );
    }

    #[test]
    fn passes_only_when_the_bug_shows_before_and_not_after() {
        let v = verdict(&result(PREFIX), &result(FIXED));
        assert!(v.ok, "{}", v.message);
        assert!(
            v.message
                .contains("37 NotFound on release, 1203 moments with two holders"),
            "{}",
            v.message
        );

        let v = verdict(&result(FIXED), &result(FIXED));
        assert!(
            !v.ok && v.message.contains("NOT reproduced"),
            "{}",
            v.message
        );

        let v = verdict(&result(PREFIX), &result(PREFIX));
        assert!(
            !v.ok && v.message.contains("the fix still shows 37 NotFound"),
            "{}",
            v.message
        );

        let mut erring = result(FIXED);
        erring.counts.insert("other_errors".into(), 2.into());
        let v = verdict(&result(PREFIX), &erring);
        assert!(
            !v.ok && v.message.contains("2 other errors"),
            "{}",
            v.message
        );

        let mut crashed = result(FIXED);
        crashed.exit = Some("exit status: 101".into());
        assert!(!verdict(&result(PREFIX), &crashed).ok);

        let only_partial = result(r#"{"impl":"prefix","cycles":5,"partial_reads":1}"#);
        assert!(verdict(&only_partial, &result(FIXED)).ok);
    }

    #[test]
    fn unknown_issues_are_refused() -> anyhow::Result<()> {
        let sh = Shell::new()?;
        let err = run(
            &sh,
            &ReproFlags {
                issue: Some("BUG-1".into()),
                soak: false,
            },
        )
        .err()
        .map(|it| it.to_string())
        .unwrap_or_default();
        assert!(err.contains("only BUG-423"), "{err}");
        Ok(())
    }
}
