//! The report of a run: the table printed at its end, `<target>/mutants/report.json`, and
//! the summary line `cargo xtask verify` prints from that file.

use std::{fmt::Write as _, path::Path};

use serde::{Deserialize, Serialize};

use super::{
    ACCEPTED_FILE,
    judge::{Counts, Verdict},
};

/// `<target>/mutants/report.json`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Report {
    pub(crate) passed: bool,
    pub(crate) cargo_mutants: String,
    /// What was mutated.
    pub(crate) scope: String,
    /// Whose tests judged the mutants: "library" (`--lib-tests`: stage 1 only), or the
    /// library's and then the workspace's for the survivors (both stages).
    pub(crate) tests: String,
    /// The commit the run was made on.
    pub(crate) commit: String,
    pub(crate) seconds: f64,
    pub(crate) totals: Counts,
    #[serde(flatten)]
    pub(crate) verdict: Verdict,
}

impl Report {
    /// The table of counts per file, then what failed.
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        let width = self
            .verdict
            .files
            .iter()
            .map(|it| it.file.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let _ = writeln!(
            out,
            "\n{:<width$} {:>6} {:>9} {:>6} {:>8} {:>7} {:>8}",
            "file", "caught", "stage 2", "missed", "accepted", "timeout", "unviable"
        );
        for counts in self.verdict.files.iter().chain([&self.totals]) {
            let _ = writeln!(
                out,
                "{:<width$} {:>6} {:>9} {:>6} {:>8} {:>7} {:>8}",
                counts.file,
                counts.caught,
                counts.caught_by_workspace,
                counts.missed,
                counts.accepted,
                counts.timeout,
                counts.unviable
            );
        }
        let _ = writeln!(
            out,
            "(stage 2: of the caught, those only the workspace's tests caught, after the library's missed them)"
        );
        let sections = [
            (
                "caught only by the workspace's tests (stage 2), not by the library's own:"
                    .to_owned(),
                &self.verdict.caught_by_workspace,
            ),
            (
                format!(
                    "survivors not listed in {ACCEPTED_FILE} (add a test that kills each, or list it with its reason):"
                ),
                &self.verdict.unlisted_survivors,
            ),
            (
                "generated but not tested (was the run interrupted?):".to_owned(),
                &self.verdict.not_run,
            ),
            (
                "not classified by cargo-mutants:".to_owned(),
                &self.verdict.unclassified,
            ),
        ];
        for (title, names) in sections {
            if !names.is_empty() {
                let _ = writeln!(out, "\n{title}");
                for name in names {
                    let _ = writeln!(out, "    {name}");
                }
            }
        }
        if !self.verdict.stale_entries.is_empty() {
            let _ = writeln!(out, "\nentries of {ACCEPTED_FILE} that are not survivors:");
            for entry in &self.verdict.stale_entries {
                let _ = writeln!(out, "    {}: {}: {}", entry.file, entry.mutant, entry.why);
            }
        }
        let _ = writeln!(out, "\n{}", self.summary_line());
        out
    }

    /// `mutants: PASSED (the whole library (...), at abc1234): 120 caught, 0 missed, ...`
    pub(crate) fn summary_line(&self) -> String {
        let t = &self.totals;
        format!(
            "mutants: {} ({}, tests: {}, at {}, cargo-mutants {}, {:.0} min): {} caught ({} by stage 2), {} missed, {} accepted, {} timeout, {} unviable{}",
            if self.passed { "PASSED" } else { "FAILED" },
            self.scope,
            self.tests,
            self.commit,
            self.cargo_mutants,
            self.seconds / 60.0,
            t.caught,
            t.caught_by_workspace,
            t.missed,
            t.accepted,
            t.timeout,
            t.unviable,
            if self.verdict.stale_entries.is_empty() {
                String::new()
            } else {
                format!(
                    ", {} stale accepted entries",
                    self.verdict.stale_entries.len()
                )
            },
        )
    }
}

/// The summary line of the last `cargo xtask mutants` run, if it left a report in
/// `target_dir`; a report that cannot be read says so instead.
pub(crate) fn latest_summary(target_dir: &Path) -> Option<String> {
    let path = target_dir.join("mutants").join("report.json");
    let text = std::fs::read_to_string(&path).ok()?;
    Some(match serde_json::from_str::<Report>(&text) {
        Ok(report) => report.summary_line(),
        Err(err) => format!("mutants: {} is unreadable ({err})", path.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutants::{
        CARGO_MUTANTS_VERSION,
        fixtures::*,
        judge::judge,
        outcomes::{Fate, Stage, Tested},
    };

    #[test]
    fn the_report_round_trips_and_summarises() -> anyhow::Result<()> {
        let m = mutant(A, 1, "replace f -> bool with true");
        let late = mutant(A, 2, "replace f -> bool with false");
        let results = [
            lib(&m, Fate::Caught),
            Tested {
                mutant: late.clone(),
                fate: Fate::Caught,
                stage: Stage::Workspace,
            },
        ];
        let verdict = judge(&[m, late.clone()], &results, &[], &library());
        let report = Report {
            passed: verdict.passed(),
            cargo_mutants: CARGO_MUTANTS_VERSION.to_owned(),
            scope: library().describe(),
            tests: "library, then workspace for its survivors".to_owned(),
            commit: "abc1234".to_owned(),
            seconds: 600.0,
            totals: verdict.totals(),
            verdict,
        };
        let dir = std::env::temp_dir().join(format!("xtask-mutants-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("mutants"))?;
        std::fs::write(
            dir.join("mutants").join("report.json"),
            serde_json::to_string(&report)?,
        )?;
        let line = latest_summary(&dir);
        std::fs::remove_dir_all(&dir)?;
        let line = line.unwrap_or_default();
        assert!(
            line.starts_with("mutants: PASSED (the whole library"),
            "{line}"
        );
        assert!(line.contains("at abc1234"), "{line}");
        assert!(
            line.contains("2 caught (1 by stage 2), 0 missed, 0 accepted"),
            "{line}"
        );
        let text = report.text();
        assert!(text.contains(A), "{text}");
        assert!(
            text.contains("caught only by the workspace's tests (stage 2)")
                && text.contains(&late.name),
            "{text}"
        );
        assert_eq!(latest_summary(Path::new("/nonexistent-target")), None);
        Ok(())
    }
}
