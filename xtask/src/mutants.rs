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
//! The judging (step 4) is a pure function, tested below without running cargo-mutants.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    path::Path,
    process::Command,
    time::Instant,
};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use xshell::{Shell, cmd};

use crate::{
    cargo::{self, without_cargo_package_env},
    flags, project_root,
};

/// The cargo-mutants release the gate is known to work with: its `outcomes.json` shape and its
/// mutant names (which the accepted-survivors file quotes) are taken from it. Bump on purpose,
/// in its own commit, and re-run the whole library: new releases generate new mutants.
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
    let (generated, first, version) = match run_cargo_mutants(sh, &args, &out_dir)? {
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
        let Some((_, results, _)) = run_cargo_mutants(sh, &args, &workspace_dir)? else {
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

/// Mutants tested at once unless `--jobs` says otherwise.
const DEFAULT_JOBS: u32 = 1;

/// Seconds the workspace's tests may take on one mutant in stage 2, unless `--timeout` says
/// otherwise: they took 20 to 45 s on 2 loaded cores (README, "Mutation testing").
const WORKSPACE_TIMEOUT_SECS: u32 = 240;

/// Where, under `<target>/mutants/`, stage 2 writes its `mutants.out/`.
const WORKSPACE_STAGE_DIR: &str = "workspace";

/// The arguments both stages share. Without `--no-fail-fast`: the test binaries after the
/// first that fails do not run, so a mutant the unit tests catch costs their run, not the
/// integration tests' (one binary per package) nor the doc tests', and one that makes the
/// integration tests' waits hang is caught before it times out. The log still names every test
/// of that binary that fails.
fn common_args(options: &flags::Mutants) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "mutants".into(),
        "--package".into(),
        PACKAGE.into(),
        // `[profile.mutants]` in Cargo.toml: no debug info, for quick relinks.
        "--profile=mutants".into(),
        "--jobs".into(),
        options.jobs.unwrap_or(DEFAULT_JOBS).to_string(),
    ];
    if let Some(timeout) = options.build_timeout {
        args.extend(["--build-timeout".into(), timeout.to_string()]);
    }
    args
}

/// What one cargo-mutants run wrote: every mutant generated, the fate of each tested, and
/// its version.
type Output = (Vec<Mutant>, Vec<(Mutant, Fate)>, String);

/// Runs `cargo <args>` (cargo-mutants, writing to `<output>/mutants.out/`) and reads what it
/// wrote. `None` when it wrote no outcomes.
fn run_cargo_mutants(sh: &Shell, args: &[String], output: &Path) -> anyhow::Result<Option<Output>> {
    eprintln!("running cargo {}", args.join(" "));
    let mut command = Command::from(without_cargo_package_env(cmd!(sh, "cargo {args...}")));
    let status = command.status().context("cannot run cargo mutants")?;
    // 0: all caught; 2: missed mutants; 3: timeouts. Those are judged from its output.
    // 4 is a failing baseline; the rest are usage or diff errors, explained above by it.
    match status.code() {
        Some(0 | 2 | 3) => {}
        Some(4) => bail!("the tests fail without any mutation; fix them first"),
        _ => bail!("cargo mutants failed ({status})"),
    }
    let results_dir = output.join("mutants.out");
    let outcomes_file = results_dir.join("outcomes.json");
    if !outcomes_file.exists() {
        return Ok(None);
    }
    let generated = read_generated(&sh.read_file(results_dir.join("mutants.json"))?)?;
    let (results, version) = read_outcomes(&sh.read_file(&outcomes_file)?)?;
    Ok(Some((generated, results, version)))
}

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

/// Installs the pinned cargo-mutants unless `cargo mutants --version` already says it.
fn ensure_installed(sh: &Shell) -> anyhow::Result<()> {
    let installed = without_cargo_package_env(cmd!(sh, "cargo mutants --version"))
        .quiet()
        .ignore_stderr()
        .read()
        .ok();
    let want = format!("cargo-mutants {CARGO_MUTANTS_VERSION}");
    if installed.as_deref().map(str::trim) == Some(want.as_str()) {
        return Ok(());
    }
    eprintln!(
        "installing {want} (found: {})",
        installed.as_deref().map_or("none", str::trim)
    );
    without_cargo_package_env(cmd!(
        sh,
        "cargo install --locked cargo-mutants --version {CARGO_MUTANTS_VERSION}"
    ))
    .run()
    .with_context(|| format!("cannot install {want}"))?;
    Ok(())
}

/// What cargo-mutants copies of the tree, as git sees it: the commit, the uncommitted changes
/// and the untracked files' names (not ignored ones).
fn tree_state(sh: &Shell) -> anyhow::Result<String> {
    let head = cmd!(sh, "git rev-parse HEAD").quiet().read()?;
    let changes = cmd!(sh, "git diff HEAD --no-color --no-ext-diff")
        .quiet()
        .read()?;
    let untracked = cmd!(sh, "git ls-files --others --exclude-standard")
        .quiet()
        .read()?;
    Ok(format!("{head}\n{changes}\n{untracked}"))
}

/// `abc1234`, with ` + uncommitted changes` when the library's sources differ from it.
fn commit(sh: &Shell) -> String {
    let Ok(head) = cmd!(sh, "git rev-parse --short HEAD").quiet().read() else {
        return "unknown".to_owned();
    };
    let dirty = cmd!(sh, "git status --porcelain -- {LIBRARY_SRC}")
        .quiet()
        .read()
        .is_ok_and(|it| !it.trim().is_empty());
    if dirty {
        format!("{head} + uncommitted changes")
    } else {
        head
    }
}

/// One mutant, as cargo-mutants names it: `<file>:<line>:<column>: <description>`. The
/// description (`replace < with <= in validate_name`) is what the accepted file quotes: line
/// numbers move with every edit above the mutant, the description does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mutant {
    pub(crate) file: String,
    pub(crate) name: String,
}

impl Mutant {
    /// The name without `<file>:<line>:<column>: `.
    pub(crate) fn description(&self) -> &str {
        let rest = self.name.strip_prefix(&self.file).unwrap_or(&self.name);
        let mut parts = rest.splitn(4, ':');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(""), Some(line), Some(column), Some(description))
                if line.bytes().all(|b| b.is_ascii_digit())
                    && column.bytes().all(|b| b.is_ascii_digit()) =>
            {
                description.trim_start()
            }
            _ => rest,
        }
    }

    fn key(&self) -> (&str, &str) {
        (&self.file, self.description())
    }
}

/// What became of a mutant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Fate {
    /// A test failed: the mutant was caught.
    Caught,
    /// Every test passed: the mutant survived.
    Missed,
    /// The tests ran past the timeout (most often a mutant that makes a loop endless).
    Timeout,
    /// It did not build.
    Unviable,
    /// Anything else cargo-mutants reports (it should not happen).
    Unclassified,
}

impl Fate {
    fn from_summary(summary: &str) -> Fate {
        match summary {
            "CaughtMutant" => Fate::Caught,
            "MissedMutant" => Fate::Missed,
            "Timeout" => Fate::Timeout,
            "Unviable" => Fate::Unviable,
            _ => Fate::Unclassified,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Fate::Caught => "caught",
            Fate::Missed => "missed",
            Fate::Timeout => "timeout",
            Fate::Unviable => "unviable",
            Fate::Unclassified => "unclassified",
        }
    }
}

#[derive(Deserialize)]
struct RawMutant {
    name: String,
    file: String,
}

impl From<RawMutant> for Mutant {
    fn from(raw: RawMutant) -> Mutant {
        Mutant {
            file: raw.file,
            name: raw.name,
        }
    }
}

/// `mutants.out/mutants.json`: every mutant generated, written before testing starts.
pub(crate) fn read_generated(json: &str) -> anyhow::Result<Vec<Mutant>> {
    let raw: Vec<RawMutant> =
        serde_json::from_str(json).context("mutants.json is not a list of mutants")?;
    Ok(raw.into_iter().map(Mutant::from).collect())
}

/// `mutants.out/outcomes.json`: the fate of each mutant tested, and the cargo-mutants version.
/// A baseline that did not succeed is an error: no mutant's fate means anything then.
pub(crate) fn read_outcomes(json: &str) -> anyhow::Result<(Vec<(Mutant, Fate)>, String)> {
    #[derive(Deserialize)]
    struct Outcomes {
        outcomes: Vec<Outcome>,
        cargo_mutants_version: String,
    }
    #[derive(Deserialize)]
    struct Outcome {
        scenario: Scenario,
        summary: String,
    }
    #[derive(Deserialize)]
    enum Scenario {
        Baseline,
        Mutant(RawMutant),
    }
    let parsed: Outcomes =
        serde_json::from_str(json).context("outcomes.json is not cargo-mutants' outcomes")?;
    let mut results = Vec::new();
    for outcome in parsed.outcomes {
        match outcome.scenario {
            Scenario::Baseline if outcome.summary != "Success" => {
                bail!(
                    "the baseline (no mutation) ended in {}: the tests must pass first",
                    outcome.summary
                )
            }
            Scenario::Baseline => {}
            Scenario::Mutant(raw) => {
                results.push((Mutant::from(raw), Fate::from_summary(&outcome.summary)));
            }
        }
    }
    Ok((results, parsed.cargo_mutants_version))
}

/// Whose tests decided a mutant's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Stage {
    /// Stage 1: the library's own tests (unit, integration and doc tests of scope-lock).
    Library,
    /// Stage 2: the workspace's tests, for the survivors of stage 1.
    Workspace,
}

/// A mutant, its fate, and the stage that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tested {
    pub(crate) mutant: Mutant,
    pub(crate) fate: Fate,
    pub(crate) stage: Stage,
}

/// Which mutants of stage 1 stage 2 tests again: the survivors. A timeout is not one (the
/// library's tests already hang on it, and the workspace's would only take longer to), nor is
/// a mutant that does not build.
pub(crate) fn to_retest(first: &[(Mutant, Fate)]) -> Vec<Mutant> {
    first
        .iter()
        .filter(|(_, fate)| *fate == Fate::Missed)
        .map(|(mutant, _)| mutant.clone())
        .collect()
}

/// Both stages' results as one.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Combined {
    pub(crate) results: Vec<Tested>,
    /// Survivors of stage 1 that stage 2 should have tested and did not (an interrupted run).
    pub(crate) not_retested: Vec<String>,
}

/// Combines stage 1's results with stage 2's (`None` when stage 2 did not run): a survivor of
/// stage 1 takes its fate from stage 2, every other mutant keeps its fate from stage 1.
///
/// Stage 2's results may hold mutants it was not asked for: cargo-mutants 27.1.0 applies no
/// `--re` to struct-field deletions (sourcefrog/cargo-mutants#632), so it tests those of the
/// survivors' files again. They are ignored here; stage 1 already judged them.
pub(crate) fn combine(first: Vec<(Mutant, Fate)>, second: Option<Vec<(Mutant, Fate)>>) -> Combined {
    let mut combined = Combined {
        results: Vec::with_capacity(first.len()),
        not_retested: Vec::new(),
    };
    for (mutant, fate) in first {
        let retested = match &second {
            Some(second) if fate == Fate::Missed => {
                let found = second.iter().find(|(m, _)| m.name == mutant.name);
                if found.is_none() {
                    combined.not_retested.push(mutant.name.clone());
                }
                found.map(|(_, fate)| *fate)
            }
            _ => None,
        };
        combined.results.push(match retested {
            Some(fate) => Tested {
                mutant,
                fate,
                stage: Stage::Workspace,
            },
            None => Tested {
                mutant,
                fate,
                stage: Stage::Library,
            },
        });
    }
    combined
}

/// A regex (for cargo-mutants' `--re`) that matches exactly this mutant's name as `--list`
/// shows it, with file, line and column, and nothing else.
pub(crate) fn exact_name_regex(name: &str) -> String {
    let mut regex = String::with_capacity(name.len() + 8);
    regex.push('^');
    for c in name.chars() {
        // The characters the regex crate gives a meaning to (those `regex::escape` escapes).
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            regex.push('\\');
        }
        regex.push(c);
    }
    regex.push('$');
    regex
}

/// One accepted survivor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Accepted {
    /// The source file, relative to the workspace root.
    pub(crate) file: String,
    /// The mutant's description as cargo-mutants names it, without file, line and column.
    pub(crate) mutant: String,
    /// Why no test can or should catch it, in one line a reviewer can check.
    pub(crate) reason: String,
}

/// Reads the accepted-survivors file: `[[accepted]]` tables with `file`, `mutant` and a
/// one-line `reason`, each mutant listed once.
pub(crate) fn parse_accepted(text: &str) -> anyhow::Result<Vec<Accepted>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        accepted: Vec<Accepted>,
    }
    let file: File = toml::from_str(text)?;
    let mut seen = BTreeSet::new();
    for entry in &file.accepted {
        let what = format!("{}: {}", entry.file, entry.mutant);
        if entry.file.is_empty() || entry.mutant.is_empty() {
            bail!("an entry has an empty file or mutant: {what:?}");
        }
        if entry.reason.trim().is_empty() || entry.reason.contains('\n') {
            bail!("{what}: the reason must be one non-empty line");
        }
        if !seen.insert((entry.file.as_str(), entry.mutant.as_str())) {
            bail!("{what} is listed twice");
        }
    }
    Ok(file.accepted)
}

/// Which accepted entries a run can judge as gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Coverage {
    /// Every mutant of these files or directories was generated: an entry for them that
    /// matches no generated mutant is stale.
    Paths(Vec<String>),
    /// Only mutants on the lines changed since the merge base with this revision were
    /// generated: an entry can be judged only when its mutant was among them.
    Diff(String),
}

impl Coverage {
    fn covers_all_of(&self, file: &str) -> bool {
        match self {
            Coverage::Paths(paths) => paths.iter().any(|path| {
                file == path
                    || file
                        .strip_prefix(path.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }),
            Coverage::Diff(_) => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            Coverage::Paths(paths) if paths == &[LIBRARY_SRC] => {
                format!("the whole library ({LIBRARY_SRC})")
            }
            Coverage::Paths(paths) => paths.join(", "),
            Coverage::Diff(base) => format!("lines changed since the merge base with {base}"),
        }
    }
}

/// Counts for one file (or the total).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counts {
    pub(crate) file: String,
    pub(crate) caught: usize,
    /// Of `caught`, those that only the workspace's tests caught (stage 2).
    #[serde(default)]
    pub(crate) caught_by_workspace: usize,
    /// Survivors not listed in the accepted file.
    pub(crate) missed: usize,
    /// Survivors listed in the accepted file.
    pub(crate) accepted: usize,
    pub(crate) timeout: usize,
    pub(crate) unviable: usize,
    pub(crate) unclassified: usize,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.caught += other.caught;
        self.caught_by_workspace += other.caught_by_workspace;
        self.missed += other.missed;
        self.accepted += other.accepted;
        self.timeout += other.timeout;
        self.unviable += other.unviable;
        self.unclassified += other.unclassified;
    }
}

/// A survivor with the reason it is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AcceptedSurvivor {
    pub(crate) mutant: String,
    pub(crate) reason: String,
}

/// An accepted entry that does not describe a survivor of this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StaleEntry {
    pub(crate) file: String,
    pub(crate) mutant: String,
    pub(crate) why: String,
}

/// The judgement of one run.
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Verdict {
    pub(crate) files: Vec<Counts>,
    /// Survivors not in the accepted file: each is a behaviour no test pins down, or code
    /// that makes no difference.
    pub(crate) unlisted_survivors: Vec<String>,
    pub(crate) accepted_survivors: Vec<AcceptedSurvivor>,
    /// Mutants that survived the library's tests and that only the workspace's caught: the
    /// library's own tests do not pin these behaviours down.
    #[serde(default)]
    pub(crate) caught_by_workspace: Vec<String>,
    pub(crate) stale_entries: Vec<StaleEntry>,
    /// Mutants generated but never tested (an interrupted run).
    pub(crate) not_run: Vec<String>,
    /// Mutants cargo-mutants could not classify.
    pub(crate) unclassified: Vec<String>,
}

impl Verdict {
    pub(crate) fn passed(&self) -> bool {
        self.unlisted_survivors.is_empty()
            && self.stale_entries.is_empty()
            && self.not_run.is_empty()
            && self.unclassified.is_empty()
    }

    fn totals(&self) -> Counts {
        let mut total = Counts {
            file: "total".to_owned(),
            ..Counts::default()
        };
        for counts in &self.files {
            total.add(counts);
        }
        total
    }
}

/// Judges a run: every survivor must be accepted, every accepted entry that the run can judge
/// must still be a survivor, and every generated mutant must have been tested.
pub(crate) fn judge(
    generated: &[Mutant],
    results: &[Tested],
    accepted: &[Accepted],
    coverage: &Coverage,
) -> Verdict {
    let mut verdict = Verdict::default();
    let mut per_file: BTreeMap<&str, Counts> = BTreeMap::new();
    let reason_of = |mutant: &Mutant| {
        accepted
            .iter()
            .find(|entry| (entry.file.as_str(), entry.mutant.as_str()) == mutant.key())
            .map(|entry| entry.reason.clone())
    };
    for Tested {
        mutant,
        fate,
        stage,
    } in results
    {
        let counts = per_file
            .entry(mutant.file.as_str())
            .or_insert_with(|| Counts {
                file: mutant.file.clone(),
                ..Counts::default()
            });
        match fate {
            Fate::Caught => {
                counts.caught += 1;
                if *stage == Stage::Workspace {
                    counts.caught_by_workspace += 1;
                    verdict.caught_by_workspace.push(mutant.name.clone());
                }
            }
            Fate::Missed => match reason_of(mutant) {
                Some(reason) => {
                    counts.accepted += 1;
                    verdict.accepted_survivors.push(AcceptedSurvivor {
                        mutant: mutant.name.clone(),
                        reason,
                    });
                }
                None => {
                    counts.missed += 1;
                    verdict.unlisted_survivors.push(mutant.name.clone());
                }
            },
            Fate::Timeout => counts.timeout += 1,
            Fate::Unviable => counts.unviable += 1,
            Fate::Unclassified => {
                counts.unclassified += 1;
                verdict.unclassified.push(mutant.name.clone());
            }
        }
    }
    verdict.files = per_file.into_values().collect();

    let tested: BTreeSet<&str> = results.iter().map(|it| it.mutant.name.as_str()).collect();
    verdict.not_run = generated
        .iter()
        .filter(|m| !tested.contains(m.name.as_str()))
        .map(|m| m.name.clone())
        .collect();

    for entry in accepted {
        let key = (entry.file.as_str(), entry.mutant.as_str());
        let fates: Vec<Fate> = results
            .iter()
            .filter(|it| it.mutant.key() == key)
            .map(|it| it.fate)
            .collect();
        let was_generated = generated.iter().any(|m| m.key() == key);
        let why = if fates.contains(&Fate::Missed) {
            continue;
        } else if let Some(fate) = fates.first() {
            format!("it is {} now; remove the entry", fate.as_str())
        } else if !was_generated && coverage.covers_all_of(&entry.file) {
            "no such mutant is generated any more; remove or update the entry".to_owned()
        } else {
            // Not in this run (another file, or outside the diff), or generated but not run
            // (reported as not run): nothing to say about it.
            continue;
        };
        verdict.stale_entries.push(StaleEntry {
            file: entry.file.clone(),
            mutant: entry.mutant.clone(),
            why,
        });
    }
    verdict
}

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

    fn mutant(file: &str, line: u32, description: &str) -> Mutant {
        Mutant {
            file: file.to_owned(),
            name: format!("{file}:{line}:5: {description}"),
        }
    }

    fn accepted(file: &str, mutant: &str) -> Accepted {
        Accepted {
            file: file.to_owned(),
            mutant: mutant.to_owned(),
            reason: "equivalent: both orders end in the same unlink".to_owned(),
        }
    }

    /// Decided by stage 1, the library's tests.
    fn lib(mutant: &Mutant, fate: Fate) -> Tested {
        Tested {
            mutant: mutant.clone(),
            fate,
            stage: Stage::Library,
        }
    }

    const A: &str = "crates/scope-lock/src/a.rs";
    const B: &str = "crates/scope-lock/src/b.rs";

    fn library() -> Coverage {
        Coverage::Paths(vec![LIBRARY_SRC.to_owned()])
    }

    #[test]
    fn the_description_is_the_name_without_file_line_and_column() {
        let m = mutant(A, 12, "replace < with <= in validate_name");
        assert_eq!(m.description(), "replace < with <= in validate_name");
        // A description may itself hold colons.
        let m = mutant(A, 3, "replace Foo::bar -> Result<(), String> with Ok(())");
        assert_eq!(
            m.description(),
            "replace Foo::bar -> Result<(), String> with Ok(())"
        );
    }

    #[test]
    fn an_unlisted_survivor_fails_and_a_listed_one_passes() {
        let survivor = mutant(A, 10, "replace == with != in f");
        let caught = mutant(B, 20, "replace g -> bool with true");
        let generated = [survivor.clone(), caught.clone()];
        let results = [lib(&survivor, Fate::Missed), lib(&caught, Fate::Caught)];

        let verdict = judge(&generated, &results, &[], &library());
        assert!(!verdict.passed());
        assert_eq!(verdict.unlisted_survivors, [survivor.name]);
        assert_eq!(verdict.files.len(), 2);
        assert_eq!(
            (verdict.files[0].file.as_str(), verdict.files[0].missed),
            (A, 1)
        );
        assert_eq!(
            (verdict.files[1].file.as_str(), verdict.files[1].caught),
            (B, 1)
        );

        // Listed under its description, at any line: the survivor moved from line 10 to 14.
        let moved = mutant(A, 14, "replace == with != in f");
        let results = [lib(&moved, Fate::Missed), lib(&caught, Fate::Caught)];
        let list = [accepted(A, "replace == with != in f")];
        let verdict = judge(
            &[moved.clone(), caught.clone()],
            &results,
            &list,
            &library(),
        );
        assert!(verdict.passed(), "{verdict:?}");
        assert!(verdict.unlisted_survivors.is_empty());
        assert_eq!(verdict.files[0].accepted, 1);
        assert_eq!(verdict.files[0].missed, 0);
        assert_eq!(verdict.accepted_survivors[0].mutant, moved.name);
        assert_eq!(verdict.accepted_survivors[0].reason, list[0].reason);
        assert_eq!(verdict.totals().accepted, 1);
        assert_eq!(verdict.totals().caught, 1);
    }

    #[test]
    fn an_entry_for_a_mutant_that_is_gone_or_caught_fails() {
        let caught = mutant(A, 10, "replace == with != in f");
        let results = [lib(&caught, Fate::Caught)];
        let list = [
            accepted(A, "replace == with != in f"),
            accepted(A, "replace f -> bool with false"),
        ];
        let verdict = judge(&[caught], &results, &list, &library());
        assert!(!verdict.passed());
        let stale: Vec<(&str, &str)> = verdict
            .stale_entries
            .iter()
            .map(|it| (it.mutant.as_str(), it.why.as_str()))
            .collect();
        assert_eq!(stale.len(), 2, "{stale:?}");
        assert!(stale[0].1.contains("caught now"), "{stale:?}");
        assert!(stale[1].1.contains("no such mutant"), "{stale:?}");
    }

    #[test]
    fn entries_are_judged_gone_only_for_files_that_were_run_whole() {
        let m = mutant(A, 10, "replace == with != in f");
        let results = [lib(&m, Fate::Caught)];
        let gone_in_b = [accepted(B, "replace h -> bool with true")];
        // Only a.rs was run: b.rs's entry cannot be judged.
        let only_a = Coverage::Paths(vec![A.to_owned()]);
        assert!(judge(std::slice::from_ref(&m), &results, &gone_in_b, &only_a).passed());
        // The whole library was run: it is gone.
        assert!(!judge(std::slice::from_ref(&m), &results, &gone_in_b, &library()).passed());
        // A directory covers the files below it, and only those.
        let dir = Coverage::Paths(vec!["crates/scope-lock/src/sys".to_owned()]);
        assert!(dir.covers_all_of("crates/scope-lock/src/sys/unix.rs"));
        assert!(!dir.covers_all_of("crates/scope-lock/src/sysfoo.rs"));
        // A diff generates only the mutants of changed lines: absence proves nothing ...
        let diff = Coverage::Diff("main".to_owned());
        assert!(judge(std::slice::from_ref(&m), &results, &gone_in_b, &diff).passed());
        // ... but a listed mutant that was generated and caught is still stale.
        let caught_in_a = [accepted(A, "replace == with != in f")];
        assert!(!judge(&[m], &results, &caught_in_a, &diff).passed());
    }

    #[test]
    fn timeouts_and_unviable_mutants_are_counted_not_failed() {
        let hang = mutant(A, 1, "replace += with *= in f");
        let broken = mutant(A, 2, "replace f -> Foo with Default::default()");
        let results = [lib(&hang, Fate::Timeout), lib(&broken, Fate::Unviable)];
        let verdict = judge(&[hang, broken], &results, &[], &library());
        assert!(verdict.passed(), "{verdict:?}");
        assert_eq!(
            (verdict.files[0].timeout, verdict.files[0].unviable),
            (1, 1)
        );
    }

    #[test]
    fn a_mutant_generated_but_not_tested_fails() {
        let tested = mutant(A, 1, "replace f -> bool with true");
        let skipped = mutant(A, 2, "replace f -> bool with false");
        let results = [lib(&tested, Fate::Caught)];
        let verdict = judge(&[tested, skipped.clone()], &results, &[], &library());
        assert!(!verdict.passed());
        assert_eq!(verdict.not_run, [skipped.name]);
    }

    #[test]
    fn stage_2_retests_only_the_survivors_and_decides_their_fate() {
        let caught = mutant(A, 1, "replace f -> bool with true");
        let survivor = mutant(A, 2, "replace f -> bool with false");
        let confirmed = mutant(A, 3, "replace == with != in f");
        let hang = mutant(B, 4, "replace += with *= in g");
        let broken = mutant(B, 5, "replace g -> Foo with Default::default()");
        let first = vec![
            (caught.clone(), Fate::Caught),
            (survivor.clone(), Fate::Missed),
            (confirmed.clone(), Fate::Missed),
            (hang.clone(), Fate::Timeout),
            (broken.clone(), Fate::Unviable),
        ];
        assert_eq!(to_retest(&first), [survivor.clone(), confirmed.clone()]);

        // Stage 2 also reports a mutant it was not asked for (cargo-mutants 27.1.0 tests every
        // struct-field deletion whatever `--re` says); stage 1's fate for it stands.
        let second = vec![
            (survivor.clone(), Fate::Caught),
            (confirmed.clone(), Fate::Missed),
            (caught.clone(), Fate::Missed),
        ];
        let combined = combine(first.clone(), Some(second));
        assert!(combined.not_retested.is_empty());
        let fates: Vec<(Fate, Stage)> = combined
            .results
            .iter()
            .map(|it| (it.fate, it.stage))
            .collect();
        assert_eq!(
            fates,
            [
                (Fate::Caught, Stage::Library),
                (Fate::Caught, Stage::Workspace),
                (Fate::Missed, Stage::Workspace),
                (Fate::Timeout, Stage::Library),
                (Fate::Unviable, Stage::Library),
            ]
        );
        let generated = [caught, survivor.clone(), confirmed.clone(), hang, broken];
        let verdict = judge(&generated, &combined.results, &[], &library());
        assert!(!verdict.passed());
        assert_eq!(
            verdict.unlisted_survivors,
            std::slice::from_ref(&confirmed.name)
        );
        assert_eq!(
            verdict.caught_by_workspace,
            std::slice::from_ref(&survivor.name)
        );
        let totals = verdict.totals();
        assert_eq!(
            (totals.caught, totals.caught_by_workspace, totals.missed),
            (2, 1, 1)
        );
        assert_eq!((totals.timeout, totals.unviable), (1, 1));

        // Without stage 2 (`--lib-tests`), a survivor of stage 1 stays one.
        let combined = combine(first.clone(), None);
        assert!(combined.not_retested.is_empty());
        assert!(combined.results.iter().all(|it| it.stage == Stage::Library));
        let verdict = judge(&generated, &combined.results, &[], &library());
        assert_eq!(verdict.unlisted_survivors.len(), 2);

        // A survivor that stage 2 did not get to is reported, not passed.
        let combined = combine(first, Some(vec![(survivor, Fate::Caught)]));
        assert_eq!(combined.not_retested, std::slice::from_ref(&confirmed.name));
        let missed = combined.results.iter().find(|it| it.mutant == confirmed);
        assert_eq!(
            missed.map(|it| (it.fate, it.stage)),
            Some((Fate::Missed, Stage::Library))
        );
    }

    #[test]
    fn stage_2_selects_each_survivor_by_its_exact_name() {
        let name = "crates/scope-lock/src/a.rs:37:28: replace f -> Result<(), Error> with Ok(()) in <impl Foo for Bar>::f";
        assert_eq!(
            exact_name_regex(name),
            "^crates/scope\\-lock/src/a\\.rs:37:28: replace f \\-> Result<\\(\\), Error> with Ok\\(\\(\\)\\) in <impl Foo for Bar>::f$"
        );
        for (raw, escaped) in [
            ("a|b", "^a\\|b$"),
            ("[x]{1}", "^\\[x\\]\\{1\\}$"),
            ("*+?.", "^\\*\\+\\?\\.$"),
            ("^$#&~\\", "^\\^\\$\\#\\&\\~\\\\$"),
        ] {
            assert_eq!(exact_name_regex(raw), escaped, "{raw}");
        }
    }

    #[test]
    fn reads_cargo_mutants_output() -> anyhow::Result<()> {
        // The shape cargo-mutants 27.1.0 writes (fields we do not read trimmed).
        let outcomes = r#"{
          "outcomes": [
            {"scenario": "Baseline", "summary": "Success", "log_path": "log/baseline.log"},
            {"scenario": {"Mutant": {"name": "crates/scope-lock/src/a.rs:3:9: replace f -> bool with true",
              "package": "scope-lock", "file": "crates/scope-lock/src/a.rs",
              "function": {"function_name": "f", "return_type": "-> bool"},
              "replacement": "true", "genre": "FnValue"}},
             "summary": "MissedMutant"},
            {"scenario": {"Mutant": {"name": "crates/scope-lock/src/a.rs:4:9: replace f -> bool with false",
              "file": "crates/scope-lock/src/a.rs"}}, "summary": "CaughtMutant"}
          ],
          "total_mutants": 2, "missed": 1, "caught": 1, "timeout": 0, "unviable": 0,
          "cargo_mutants_version": "27.1.0"
        }"#;
        let (results, version) = read_outcomes(outcomes)?;
        assert_eq!(version, "27.1.0");
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].1, Fate::Missed);
        assert_eq!(results[0].0.description(), "replace f -> bool with true");
        assert_eq!(results[1].1, Fate::Caught);

        let failed_baseline = outcomes.replacen(r#""Success""#, r#""Failure""#, 1);
        let err = read_outcomes(&failed_baseline).map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("baseline"), "{err}");

        let generated = read_generated(
            r#"[{"name": "crates/scope-lock/src/a.rs:3:9: replace f -> bool with true",
                 "file": "crates/scope-lock/src/a.rs", "diff": "--- ..."}]"#,
        )?;
        assert_eq!(generated[0].file, A);
        Ok(())
    }

    #[test]
    fn the_accepted_file_needs_a_reason_per_entry_and_no_duplicates() -> anyhow::Result<()> {
        let entry = |reason: &str| {
            format!(
                "[[accepted]]\nfile = \"{A}\"\nmutant = \"replace f -> bool with true\"\nreason = {reason:?}\n"
            )
        };
        let good = parse_accepted(&entry("equivalent: the caller checks it again"))?;
        assert_eq!(good.len(), 1);
        assert!(parse_accepted("")?.is_empty());
        assert!(parse_accepted(&entry("")).is_err());
        assert!(parse_accepted(&entry("two\nlines")).is_err());
        let twice = entry("a") + &entry("b");
        assert!(
            parse_accepted(&twice)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        let unknown_key = entry("a") + "note = \"x\"\n";
        assert!(parse_accepted(&unknown_key).is_err());
        Ok(())
    }

    /// The checked-in list parses, and names only files that exist.
    #[test]
    fn the_repositorys_accepted_survivors_are_well_formed() -> anyhow::Result<()> {
        let root = project_root();
        let text = std::fs::read_to_string(root.join(ACCEPTED_FILE))?;
        for entry in parse_accepted(&text)? {
            assert!(
                root.join(&entry.file).is_file(),
                "{ACCEPTED_FILE}: {} does not exist",
                entry.file
            );
        }
        Ok(())
    }

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
