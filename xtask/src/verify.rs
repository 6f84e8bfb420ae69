//! `cargo xtask verify`: the release gate. What it checks, and why, is described once, in
//! issues/README.md ("What `cargo xtask verify` does"). This module wires the three steps:
//!
//! - [`collect`]: build and run everything, into [`outcomes::Outcomes`] keyed by test id;
//! - [`judge`]: a pure function from the records and those outcomes to a [`report::Report`];
//! - [`render`]: the terminal table, `report.md` and `report.json`.

mod cargo_test;
mod collect;
mod judge;
mod libtest;
mod outcomes;
mod pytest;
mod render;
mod report;

use std::{env, path::Path};

use xshell::Shell;
use xtask_contract::env::ISSUES_DIR;

use crate::{cargo, doc_paths, flags, mutants, project_root, records};

impl flags::Verify {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<bool> {
        let cwd = env::current_dir()?;
        let target_dir = cargo::target_dir(sh)?;
        let verify_dir = target_dir.join("verify");
        let settings = collect::Settings {
            soak: self.soak,
            evidence_fixed: verify_dir.join("evidence").join("fixed"),
            evidence_pre_fix: verify_dir.join("evidence").join("pre-fix"),
            python_venv: verify_dir.join("python"),
        };
        // Nothing from an earlier run may be mistaken for this one's.
        for stale in ["evidence", "report.json", "report.md"] {
            sh.remove_path(verify_dir.join(stale))?;
        }
        sh.create_dir(&settings.evidence_fixed)?;
        sh.create_dir(&settings.evidence_pre_fix)?;

        let issues_dir = match sh.var_os(ISSUES_DIR) {
            Some(dir) if !dir.is_empty() => cwd.join(dir),
            _ => project_root().join("issues"),
        };
        let all_files = if issues_dir.is_dir() {
            records::read_dir(sh, &issues_dir)?
        } else {
            Vec::new()
        };
        let known: Vec<String> = all_files.iter().map(|it| it.id().to_owned()).collect();
        let (files, unknown) = records::select(all_files, &self.issues);
        let context = judge::Context {
            issues_dir: display_path(&issues_dir),
            soak: self.soak,
            stale_paths: doc_paths::stale_paths(&project_root())?,
        };
        let report = if unknown.is_empty() {
            if files.is_empty() {
                eprintln!(
                    "warning: no issue records in {}; only the workspace tests will be checked",
                    context.issues_dir
                );
            }
            let outcomes = collect::collect(sh, &settings, &files)?;
            judge::judge(&context, &files, &outcomes)
        } else {
            eprintln!(
                "error: no record for {} in {} (records there: {})",
                unknown.join(", "),
                context.issues_dir,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            );
            judge::unknown_issues(&context, unknown)
        };

        let report = report::Report {
            mutants: mutants::latest_summary(&target_dir),
            ..report
        };
        let width = sh
            .var("COLUMNS")
            .ok()
            .and_then(|it| it.parse().ok())
            .unwrap_or(100usize)
            .clamp(80, 200);
        print!("{}", render::terminal(&report, width));
        let json = render::json(&report)?;
        let json_file = verify_dir.join("report.json");
        let md_file = verify_dir.join("report.md");
        sh.write_file(&json_file, &json)?;
        sh.write_file(&md_file, render::markdown(&report))?;
        let mut written = vec![display_path(&md_file), display_path(&json_file)];
        if let Some(path) = &self.json {
            let path = cwd.join(path);
            sh.write_file(&path, &json)?;
            written.push(path.display().to_string());
        }
        println!("report: {}", written.join(", "));
        println!("{}", render::verdict(&report));
        Ok(report.passed)
    }
}

/// A path as shown to people: relative to the workspace root when it is inside it.
fn display_path(path: &Path) -> String {
    path.strip_prefix(project_root())
        .unwrap_or(path)
        .display()
        .to_string()
}
