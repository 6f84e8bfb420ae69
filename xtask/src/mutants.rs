//! `cargo xtask mutants`: mutation testing of the library with cargo-mutants.
//!
//! 1. install cargo-mutants at [`CARGO_MUTANTS_VERSION`] unless that version is on PATH;
//! 2. run it over the library (`crates/scope-lock`), or the files named, or the lines changed
//!    since the merge base with a branch, testing each mutant with the workspace's tests, one
//!    at a time by default;
//! 3. read what it wrote (`mutants.out/mutants.json`, every mutant generated, and
//!    `outcomes.json`, what became of each);
//! 4. judge: a surviving mutant must be listed in [`ACCEPTED_FILE`] with its reason, and a
//!    listed one must still be generated and still survive;
//! 5. print the counts per file and write `<target>/mutants/report.json`, which
//!    `cargo xtask verify` summarises when it exists.
//!
//! This module runs those steps in order (`run` below: stage 1, then stage 2 for stage 1's
//! survivors); each job has its own module:
//!
//! - [`cargo_mutants`]: installing and running cargo-mutants (steps 1 and 2);
//! - [`etcd`]: the etcd server the copied tree's tests start, found on the real tree;
//! - [`outcomes`]: what it wrote, read, and the two stages' results combined (step 3);
//! - [`accepted`]: the accepted-survivors file;
//! - [`mod@judge`]: a pure function from the results and that file to a verdict (step 4), tested
//!   without running cargo-mutants;
//! - [`report`]: the table, `report.json` and the summary line `verify` prints (step 5).

mod accepted;
mod cargo_mutants;
mod etcd;
#[cfg(test)]
mod fixtures;
mod judge;
mod outcomes;
mod report;

use std::{collections::BTreeSet, path::Path, time::Instant};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::{cargo, flags, project_root};

use self::{
    accepted::parse_accepted,
    cargo_mutants::{
        commit, common_args, ensure_installed, exact_name_regex, run_cargo_mutants, tree_state,
    },
    judge::{Coverage, judge},
    outcomes::{combine, to_retest},
    report::Report,
};

pub(crate) use self::report::latest_summary;

/// The cargo-mutants release the gate is known to work with: its `outcomes.json` shape and its
/// mutant names (which the accepted-survivors file quotes) are taken from it. Bump on purpose,
/// in its own commit, and re-run the whole library: new releases generate new mutants.
/// It stays in this file: the CI workflow keys its cache of the installed binary on this
/// file's hash (`.github/workflows/ci.yml`).
pub(crate) const CARGO_MUTANTS_VERSION: &str = "27.1.0";

/// Survivors accepted on review, each with its reason; relative to the workspace root.
pub(crate) const ACCEPTED_FILE: &str = "mutants-accepted.toml";

/// The package whose code is mutated, and where its sources are.
const PACKAGE: &str = "scope-lock";
const LIBRARY_SRC: &str = "crates/scope-lock/src";

impl flags::Mutants {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<bool> {
        let target_dir = cargo::target_dir(sh)?;
        run(sh, &target_dir, &self)
    }
}

fn run(sh: &Shell, target_dir: &Path, options: &flags::Mutants) -> anyhow::Result<bool> {
    let started = Instant::now();
    let accepted_text = sh
        .read_file(project_root().join(ACCEPTED_FILE))
        .with_context(|| format!("cannot read {ACCEPTED_FILE}"))?;
    let accepted =
        parse_accepted(&accepted_text).with_context(|| format!("{ACCEPTED_FILE} is invalid"))?;
    let (coverage, files) = coverage(options)?;

    let out_dir = target_dir.join("mutants");
    let workspace_dir = out_dir.join(WORKSPACE_STAGE_DIR);
    // Nothing from an earlier run may be read as this one's.
    sh.remove_path(out_dir.join("mutants.out"))?;
    sh.remove_path(&workspace_dir)?;
    sh.remove_path(out_dir.join("report.json"))?;
    sh.create_dir(&out_dir)?;

    ensure_installed(sh)?;
    let test_env = etcd::test_env(&project_root())?;
    let tree_before = tree_state(sh)?;

    // Stage 1: every mutant, with the library's own tests.
    let mut args = common_args(options);
    args.push("--test-workspace=false".into());
    if let Some(timeout) = options.timeout {
        args.extend(["--timeout".into(), timeout.to_string()]);
    }
    args.extend(["--output".into(), out_dir.display().to_string()]);
    for file in &files {
        args.extend(["--file".into(), file.clone()]);
    }
    if let Some(base) = &options.in_diff {
        let diff_file = out_dir.join("in.diff");
        let merge_base = cmd!(sh, "git merge-base {base} HEAD")
            .read()
            .with_context(|| format!("no merge base of HEAD and {base}"))?;
        // Against the working tree, so that uncommitted edits count as changed too.
        let diff = cmd!(sh, "git diff --no-color --no-ext-diff {merge_base}").read()?;
        sh.write_file(&diff_file, diff + "\n")?;
        args.extend(["--in-diff".into(), diff_file.display().to_string()]);
    }
    eprintln!(
        "stage 1: every mutant, with the library's tests (a line for each that is not caught)"
    );
    let (generated, first, version) = match run_cargo_mutants(sh, &args, &test_env, &out_dir)? {
        Some(output) => output,
        // cargo-mutants exits 0 without output when the diff touches no mutable code.
        None if options.in_diff.is_some() => {
            (Vec::new(), Vec::new(), CARGO_MUTANTS_VERSION.to_owned())
        }
        // Also when every file named is left out by `exclude_globs` in .cargo/mutants.toml.
        None => bail!(
            "cargo mutants generated no mutants, or wrote no outcomes to {} (a file left out \
             by exclude_globs in .cargo/mutants.toml has no mutants)",
            out_dir.display()
        ),
    };

    // Stage 2: the survivors of stage 1 again, with the workspace's tests.
    let retest = to_retest(&first);
    let second = if options.lib_tests || retest.is_empty() {
        None
    } else {
        // Stage 2 copies the tree anew and selects mutants by name, line and column: the
        // tree must be the one stage 1 tested.
        if tree_state(sh)? != tree_before {
            bail!(
                "the working tree changed while stage 1 ran: stage 2 would test other code \
                 (and mutants at other lines); run again without editing meanwhile"
            );
        }
        let mut args = common_args(options);
        args.push("--test-workspace=true".into());
        // Its baseline builds and runs only the library's tests (cargo-mutants 27.1.0 tests
        // the mutated package there), so the timeout it would derive is too short for the
        // workspace's.
        let timeout = options.timeout.unwrap_or(WORKSPACE_TIMEOUT_SECS);
        args.extend(["--timeout".into(), timeout.to_string()]);
        args.extend(["--output".into(), workspace_dir.display().to_string()]);
        let retest_files: BTreeSet<&str> = retest.iter().map(|m| m.file.as_str()).collect();
        for file in retest_files {
            args.extend(["--file".into(), file.to_owned()]);
        }
        for mutant in &retest {
            args.extend(["--re".into(), exact_name_regex(&mutant.name)]);
        }
        eprintln!(
            "stage 2: the {} survivors of stage 1, with the workspace's tests",
            retest.len()
        );
        let Some((_, results, _)) = run_cargo_mutants(sh, &args, &test_env, &workspace_dir)? else {
            bail!(
                "cargo mutants wrote no outcomes to {}",
                workspace_dir.display()
            );
        };
        Some(results)
    };

    let combined = combine(first, second);
    let mut verdict = judge(&generated, &combined.results, &accepted, &coverage);
    verdict.not_run.extend(combined.not_retested);
    let report = Report {
        passed: verdict.passed(),
        cargo_mutants: version,
        scope: coverage.describe(),
        tests: if options.lib_tests {
            "library"
        } else {
            "library, then workspace for its survivors"
        }
        .to_owned(),
        commit: commit(sh),
        seconds: started.elapsed().as_secs_f64(),
        totals: verdict.totals(),
        verdict,
    };
    print!("{}", report.text());
    let json = serde_json::to_string_pretty(&report)? + "\n";
    let report_file = out_dir.join("report.json");
    sh.write_file(&report_file, json)?;
    println!("report: {}", report_file.display());
    Ok(report.passed)
}

/// Seconds the workspace's tests may take on one mutant in stage 2, unless `--timeout` says
/// otherwise: several times what they take on a loaded 2-core machine (docs/contributing.md,
/// "Mutation testing", says how long).
const WORKSPACE_TIMEOUT_SECS: u32 = 240;

/// Where, under `<target>/mutants/`, stage 2 writes its `mutants.out/`.
const WORKSPACE_STAGE_DIR: &str = "workspace";

/// Which files the run covers: the accepted entries of those files must match a generated
/// mutant, and the `--file` globs to pass.
fn coverage(options: &flags::Mutants) -> anyhow::Result<(Coverage, Vec<String>)> {
    if options.in_diff.is_some() {
        if !options.paths.is_empty() {
            bail!("give either PATHs or --in-diff, not both");
        }
        return Ok((
            Coverage::Diff(options.in_diff.clone().unwrap_or_default()),
            Vec::new(),
        ));
    }
    if options.paths.is_empty() {
        return Ok((Coverage::Paths(vec![LIBRARY_SRC.to_owned()]), Vec::new()));
    }
    let root = project_root();
    // Relative to where the command was typed: `cargo run` keeps that directory, and the
    // shell's own directory (the root) is not the process's.
    let cwd = std::env::current_dir()?;
    let mut paths = Vec::new();
    let mut globs = Vec::new();
    for path in &options.paths {
        let full = cwd
            .join(path)
            .canonicalize()
            .with_context(|| format!("cannot find {}", path.display()))?;
        let relative = full
            .strip_prefix(&root)
            .ok()
            .and_then(|it| it.to_str())
            .map(|it| it.replace('\\', "/"))
            .filter(|it| it == LIBRARY_SRC || it.starts_with(&format!("{LIBRARY_SRC}/")))
            .with_context(|| {
                format!(
                    "{}: not in the library's sources ({LIBRARY_SRC}/)",
                    path.display()
                )
            })?;
        if full.is_dir() {
            globs.push(format!("{relative}/**/*.rs"));
        } else {
            globs.push(relative.clone());
        }
        paths.push(relative);
    }
    Ok((Coverage::Paths(paths), globs))
}
