//! Installing and running cargo-mutants: the pinned version, the arguments both stages pass
//! it, and what git says about the tree it copies (which must not change between the stages).

use std::{ffi::OsString, path::Path, process::Command};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use super::{
    CARGO_MUTANTS_VERSION, LIBRARY_SRC, PACKAGE,
    outcomes::{Fate, Mutant, read_generated, read_outcomes},
};
use crate::{cargo::without_cargo_package_env, flags};

/// Mutants tested at once unless `--jobs` says otherwise.
const DEFAULT_JOBS: u32 = 1;

/// The arguments both stages share. Without `--no-fail-fast`: the test binaries after the
/// first that fails do not run, so a mutant the unit tests catch costs their run, not the
/// integration tests' (one binary per package) nor the doc tests', and one that makes the
/// integration tests' waits hang is caught before it times out. The log still names every test
/// of that binary that fails.
pub(super) fn common_args(options: &flags::Mutants) -> Vec<String> {
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
pub(super) type Output = (Vec<Mutant>, Vec<(Mutant, Fate)>, String);

/// Runs `cargo <args>` (cargo-mutants, writing to `<output>/mutants.out/`) with `env` added
/// to its environment, and reads what it wrote. `None` when it wrote no outcomes.
pub(super) fn run_cargo_mutants(
    sh: &Shell,
    args: &[String],
    env: &[(&str, OsString)],
    output: &Path,
) -> anyhow::Result<Option<Output>> {
    eprintln!("running cargo {}", args.join(" "));
    let mut command = Command::from(without_cargo_package_env(cmd!(sh, "cargo {args...}")));
    command.envs(env.iter().map(|(key, value)| (key, value)));
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

/// Installs the pinned cargo-mutants unless `cargo mutants --version` already says it.
pub(super) fn ensure_installed(sh: &Shell) -> anyhow::Result<()> {
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
pub(super) fn tree_state(sh: &Shell) -> anyhow::Result<String> {
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
pub(super) fn commit(sh: &Shell) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
