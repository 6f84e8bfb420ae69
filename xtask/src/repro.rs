//! `cargo xtask repro [BUG-423] [--soak]`: BUG-423 happening on the pre-fix port and not
//! on the fix, in numbers.
//!
//! `regression-worker repro --impl pre-fix|fixed [--soak]` drives many processes acquiring and
//! releasing one scope and prints one JSON object, its last line on stdout, with what it saw.
//! [`timeline`] draws both runs' holds from the witness logs the worker leaves.

mod timeline;

use std::{fmt::Write as _, path::PathBuf};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};
use xtask_contract::{FleetSummary, env};

use crate::{
    cargo::{build_bin, target_dir, without_cargo_package_env},
    flags,
};

const KNOWN: &str = "BUG-423";

impl flags::Repro {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<bool> {
        run(sh, &self)
    }
}

fn run(sh: &Shell, flags: &flags::Repro) -> anyhow::Result<bool> {
    if let Some(issue) = &flags.issue
        && !issue.eq_ignore_ascii_case(KNOWN)
    {
        bail!("repro knows only {KNOWN}, not {issue}");
    }
    let worker = build_worker(sh)?;
    let soak: &[&str] = if flags.soak { &["--soak"] } else { &[] };
    let out_dir = target_dir(sh)?.join("repro");
    sh.create_dir(&out_dir)?;
    let mut results = Vec::new();
    for which in ["pre-fix", "fixed"] {
        eprintln!(
            "running regression-worker repro --impl {which}{} ...",
            if flags.soak { " --soak" } else { "" }
        );
        let log = out_dir.join(format!("{which}-witness.log"));
        let output = without_cargo_package_env(cmd!(
            sh,
            "{worker} repro --impl {which} {soak...} --witness-copy {log}"
        ))
        .env_remove(env::IMPL)
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
    let [pre_fix, fixed] = <[WorkerResult; 2]>::try_from(results)
        .map_err(|_| anyhow::anyhow!("expected two worker results"))?;
    print!("{}", render(&pre_fix, &fixed));
    draw_timeline(sh, &out_dir);
    let verdict = verdict(&pre_fix, &fixed);
    println!("{}", verdict.message);
    Ok(verdict.ok)
}

/// Draws both runs' holds from their witness logs into `timeline.svg`; a log that cannot be
/// read is reported and drawn as nothing (the verdict rests on the counts, not the picture).
fn draw_timeline(sh: &Shell, out_dir: &std::path::Path) {
    let run = |which: &str| {
        let path = out_dir.join(format!("{which}-witness.log"));
        sh.read_file(&path)
            .map_err(anyhow::Error::from)
            .and_then(|log| timeline::Run::parse(&log))
            .unwrap_or_else(|err| {
                eprintln!("note: cannot draw {}: {err:#}", path.display());
                timeline::Run::default()
            })
    };
    let svg = timeline::svg(&run("pre-fix"), &run("fixed"));
    let path = out_dir.join("timeline.svg");
    match sh.write_file(&path, svg) {
        Ok(()) => println!("timeline of both runs' holds: {}", path.display()),
        Err(err) => eprintln!("note: cannot write {}: {err}", path.display()),
    }
}

fn build_worker(sh: &Shell) -> anyhow::Result<PathBuf> {
    build_bin(sh, "regression", "regression-worker", false)
}

/// One run's report, as the worker printed it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WorkerResult {
    pub(crate) counts: FleetSummary,
    /// Set when the worker exited unsuccessfully.
    pub(crate) exit: Option<String>,
}

impl WorkerResult {
    /// The last non-empty stdout line must be the worker's [`FleetSummary`].
    pub(crate) fn from_stdout(stdout: &str) -> anyhow::Result<WorkerResult> {
        let last = stdout
            .lines()
            .rev()
            .find(|it| !it.trim().is_empty())
            .context("stdout is empty")?;
        let counts = serde_json::from_str(last)
            .with_context(|| format!("its last line is not a fleet summary: {last}"))?;
        Ok(WorkerResult { counts, exit: None })
    }

    fn implementation(&self) -> &str {
        self.counts.implementation.as_deref().unwrap_or("?")
    }

    /// What shows the bug: the counts that must be zero on a correct implementation.
    fn symptoms(&self) -> Vec<String> {
        let c = &self.counts;
        [
            (c.not_found_on_release, "NotFound on release"),
            (c.overlaps, "moments with two holders"),
            (
                c.unheld_probes,
                "probes finding the lock file not flocked while held",
            ),
            (c.partial_reads, "partial/empty lock file reads"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect()
    }
}

fn percent_of(part: u64, whole: u64) -> String {
    if whole == 0 {
        return format!("{part} of 0");
    }
    format!("{:.1}% of {whole}", part as f64 * 100.0 / whole as f64)
}

pub(crate) fn render(pre_fix: &WorkerResult, fixed: &WorkerResult) -> String {
    type Show = fn(&FleetSummary) -> String;
    let rows: [(&str, Show); 12] = [
        ("worker processes", |c| c.workers.to_string()),
        ("acquire attempts", |c| c.attempts.to_string()),
        ("acquire/release cycles", |c| c.cycles.to_string()),
        ("successful holds", |c| c.holds.to_string()),
        ("refused: scope busy (conflicts)", |c| {
            c.conflicts.to_string()
        }),
        ("NotFound on release", |c| {
            c.not_found_on_release.to_string()
        }),
        ("other errors", |c| c.other_errors.to_string()),
        ("moments with two holders", |c| c.overlaps.to_string()),
        ("most holders at once", |c| c.max_holders.to_string()),
        ("lock file not flocked while held", |c| {
            percent_of(c.unheld_probes, c.probes)
        }),
        ("partial/empty lock file reads", |c| {
            format!("{} of {}", c.partial_reads, c.scans)
        }),
        ("elapsed", |c| {
            format!("{:.1} s", c.elapsed_ms as f64 / 1000.0)
        }),
    ];
    let mut out = String::new();
    let workers = pre_fix.counts.workers.max(fixed.counts.workers);
    let _ = writeln!(
        out,
        "{KNOWN} steps to reproduce: {workers} processes rapidly acquiring and releasing the same scope"
    );
    let _ = writeln!(out, "{:<35}{:<20}fix", "", "pre-fix port");
    for (label, value) in &rows {
        let _ = writeln!(
            out,
            "{label:<35}{:<20}{}",
            value(&pre_fix.counts),
            value(&fixed.counts)
        );
    }
    for (name, result, want) in [("pre-fix", pre_fix, "pre-fix"), ("fix", fixed, "fixed")] {
        if result.implementation() != want {
            let _ = writeln!(
                out,
                "note: the {name} run says impl={:?}, expected {want:?}",
                result.implementation()
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

pub(crate) fn verdict(pre_fix: &WorkerResult, fixed: &WorkerResult) -> Verdict {
    let shown = pre_fix.symptoms();
    let mut left = fixed.symptoms();
    let other_errors = fixed.counts.other_errors;
    if other_errors > 0 {
        left.push(format!("{other_errors} other errors"));
    }
    if let Some(exit) = &fixed.exit {
        left.push(format!("the worker exited unsuccessfully ({exit})"));
    }
    if fixed.counts.cycles == 0 {
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

    fn summary(which: &str) -> FleetSummary {
        FleetSummary {
            implementation: Some(which.into()),
            workers: 8,
            cycles: 24000,
            attempts: 25201,
            ..FleetSummary::default()
        }
    }

    fn pre_fix() -> WorkerResult {
        WorkerResult {
            counts: FleetSummary {
                holds: 5012,
                conflicts: 18951,
                not_found_on_release: 37,
                overlaps: 1203,
                max_holders: 3,
                probes: 5012,
                unheld_probes: 5012,
                scans: 90000,
                partial_reads: 55,
                elapsed_ms: 4210,
                ..summary("pre-fix")
            },
            exit: None,
        }
    }

    fn fixed() -> WorkerResult {
        WorkerResult {
            counts: FleetSummary {
                holds: 4933,
                conflicts: 19067,
                max_holders: 1,
                probes: 4933,
                scans: 88000,
                elapsed_ms: 3980,
                ..summary("fixed")
            },
            exit: None,
        }
    }

    #[test]
    fn reads_the_last_stdout_line() -> anyhow::Result<()> {
        let json = serde_json::to_string(&pre_fix().counts)?;
        let read = WorkerResult::from_stdout(&format!("worker 1 started\n{json}\n\n"))?;
        assert_eq!(read, pre_fix());
        assert!(WorkerResult::from_stdout("").is_err());
        assert!(WorkerResult::from_stdout("{\"impl\":\"fixed\"}\nnot json\n").is_err());
        assert!(WorkerResult::from_stdout("[1]\n").is_err());
        Ok(())
    }

    #[test]
    fn renders_side_by_side() {
        let table = render(&pre_fix(), &fixed());
        let expected = [
            "BUG-423 steps to reproduce: 8 processes rapidly acquiring and releasing the same scope",
            "                                   pre-fix port        fix",
        ];
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[..2], expected);
        for want in [
            "acquire attempts                   25201               25201",
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
        let mut swapped = fixed();
        swapped.counts.implementation = Some("pre-fix".into());
        swapped.exit = Some("exit status: 101".into());
        let table = render(&pre_fix(), &swapped);
        assert!(
            table.contains("note: the fix run says impl=\"pre-fix\", expected \"fixed\""),
            "{table}"
        );
        assert!(
            table.contains("note: the fix worker exited unsuccessfully (exit status: 101)"),
            "{table}"
        );
    }

    #[test]
    fn passes_only_when_the_bug_shows_before_and_not_after() {
        let v = verdict(&pre_fix(), &fixed());
        assert!(v.ok, "{}", v.message);
        assert!(
            v.message
                .contains("37 NotFound on release, 1203 moments with two holders"),
            "{}",
            v.message
        );

        let v = verdict(&fixed(), &fixed());
        assert!(
            !v.ok && v.message.contains("NOT reproduced"),
            "{}",
            v.message
        );

        let v = verdict(&pre_fix(), &pre_fix());
        assert!(
            !v.ok && v.message.contains("the fix still shows 37 NotFound"),
            "{}",
            v.message
        );

        let mut erring = fixed();
        erring.counts.other_errors = 2;
        let v = verdict(&pre_fix(), &erring);
        assert!(
            !v.ok && v.message.contains("2 other errors"),
            "{}",
            v.message
        );

        let mut crashed = fixed();
        crashed.exit = Some("exit status: 101".into());
        assert!(!verdict(&pre_fix(), &crashed).ok);

        let mut idle = fixed();
        idle.counts.cycles = 0;
        assert!(!verdict(&pre_fix(), &idle).ok);

        let only_partial = WorkerResult {
            counts: FleetSummary {
                partial_reads: 1,
                ..summary("pre-fix")
            },
            exit: None,
        };
        assert!(verdict(&only_partial, &fixed()).ok);
    }

    #[test]
    fn unknown_issues_are_refused() -> anyhow::Result<()> {
        let sh = Shell::new()?;
        let err = run(
            &sh,
            &flags::Repro {
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
