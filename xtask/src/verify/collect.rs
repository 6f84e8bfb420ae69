//! Collecting: run every suite (the workspace's test binaries and doc tests, see
//! `cargo_test.rs`, and the Python package's pytest suite, see `pytest.rs`), run the `against_pre_fix` tests on the pre-fix port, and load the evidence
//! the tests leave, into [`Outcomes`]. Everything that starts a process or reads a file for
//! `verify` happens below this module.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
};

use xshell::Shell;

use super::{
    cargo_test::{self, TestBinary},
    outcomes::{Evidence, Outcomes, PreFixRun},
    pytest,
};
use crate::records::{self, RecordFile};

/// How the tests run, and where they leave their evidence.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) soak: bool,
    /// `SCOPE_LOCK_EVIDENCE_DIR` for the runs on the fix.
    pub(crate) evidence_fixed: PathBuf,
    /// `SCOPE_LOCK_EVIDENCE_DIR` for the runs on the pre-fix port.
    pub(crate) evidence_pre_fix: PathBuf,
    /// The virtual environment verify makes for the pytest suite when `SCOPE_LOCK_PYTHON`
    /// names no interpreter; its JUnit report is written beside it.
    pub(crate) python_venv: PathBuf,
}

/// Runs everything `files` needs judged.
pub(crate) fn collect(
    sh: &Shell,
    settings: &Settings,
    files: &[RecordFile],
) -> anyhow::Result<Outcomes> {
    let binaries = cargo_test::build_test_binaries(sh)?;
    let mut names: HashMap<String, usize> = HashMap::new();
    for binary in &binaries {
        *names.entry(binary.id_name()).or_default() += 1;
    }
    let mut outcomes = Outcomes::default();
    for binary in &binaries {
        let label = if names[&binary.id_name()] > 1 {
            format!("{} ({} {})", binary.target, binary.package, binary.kind)
        } else {
            binary.target.clone()
        };
        outcomes
            .targets
            .push(cargo_test::run_test_binary(sh, settings, binary, &label)?);
    }
    // Another suite joins here: a module like `cargo_test.rs` that runs it and pushes its
    // `TargetRun`s (see `outcomes.rs`), keyed by the target name its test ids use.
    outcomes.targets.push(pytest::run(sh, settings)?);
    outcomes.doc_tests = cargo_test::run_doc_tests(sh, settings)?;

    let evidence = read_evidence_dir(sh, &settings.evidence_fixed)?;
    for target in &mut outcomes.targets {
        for (name, result) in &mut target.tests {
            result.evidence = evidence.get(records::function_name(name)).cloned();
        }
    }
    outcomes.pre_fix = run_against_pre_fix(sh, settings, files, &outcomes, &binaries)?;
    Ok(outcomes)
}

/// Runs each `against_pre_fix` test the records name (once, however many criteria name it) on
/// the pre-fix port. Ids that resolve to nothing are left to judge to report.
fn run_against_pre_fix(
    sh: &Shell,
    settings: &Settings,
    files: &[RecordFile],
    outcomes: &Outcomes,
    binaries: &[TestBinary],
) -> anyhow::Result<BTreeMap<String, PreFixRun>> {
    let mut runs = BTreeMap::new();
    let records = files.iter().filter_map(|it| it.record.as_ref().ok());
    for record in records {
        for criterion in &record.criteria {
            for check in &criterion.against_pre_fix {
                if runs.contains_key(&check.test) {
                    continue;
                }
                let Ok(found) = outcomes.resolve(&check.test) else {
                    continue;
                };
                let Some(binary) = binaries.iter().find(|it| it.is(found.target)) else {
                    continue;
                };
                let label = format!("{} {}", record.id, criterion.id);
                let run = cargo_test::run_on_pre_fix(sh, settings, &label, binary, found.name)?;
                runs.insert(check.test.clone(), run);
            }
        }
    }
    Ok(runs)
}

/// Every `<function name>.json` in `dir`, by function name.
fn read_evidence_dir(
    sh: &Shell,
    dir: &Path,
) -> anyhow::Result<HashMap<String, Result<Evidence, String>>> {
    let mut found = HashMap::new();
    if !dir.is_dir() {
        return Ok(found);
    }
    for path in sh.read_dir(dir)? {
        let name = path.file_name().and_then(|it| it.to_str());
        if let Some(function) = name.and_then(|it| it.strip_suffix(".json"))
            && let Some(evidence) = read_evidence(sh, &path)
        {
            found.insert(function.to_owned(), evidence);
        }
    }
    Ok(found)
}

/// An evidence file, if the test wrote one.
pub(super) fn read_evidence(sh: &Shell, path: &Path) -> Option<Result<Evidence, String>> {
    path.is_file().then(|| {
        sh.read_file(path)
            .map_err(|err| err.to_string())
            .and_then(|text| Evidence::from_json(&text))
    })
}
