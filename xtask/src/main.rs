//! The workspace's task runner: `cargo xtask <command>`.
//!
//! In the manner of rust-analyzer's xtask: the command line is declared in `flags.rs`, each
//! command is a module (`verify` is the release gate, `repro` shows BUG-423 happening on the
//! pre-fix port, `mutants` is mutation testing), and every process is started through
//! `xshell::cmd!` from a shell rooted at the workspace root.

mod bench;
mod cargo;
mod doc_paths;
mod flags;
#[cfg(test)]
mod module_cycles;
mod mutants;
mod records;
mod repro;
mod verify;

use std::{
    env,
    ffi::OsString,
    path::{Path, PathBuf},
    process::ExitCode,
};

use xshell::Shell;

fn main() -> ExitCode {
    let flags = match parse(env::args_os().skip(1)) {
        Ok(flags) => flags,
        Err(err) if err.is_help() => {
            println!("{err}");
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("error: {err}\n(cargo xtask --help lists the commands)");
            return ExitCode::FAILURE;
        }
    };
    let ok = Shell::new().map_err(anyhow::Error::from).and_then(|sh| {
        sh.change_dir(project_root());
        match flags.subcommand {
            flags::XtaskCmd::Verify(cmd) => cmd.run(&sh),
            flags::XtaskCmd::Repro(cmd) => cmd.run(&sh),
            flags::XtaskCmd::Bench(cmd) => cmd.run(&sh),
            flags::XtaskCmd::Mutants(cmd) => cmd.run(&sh),
        }
    });
    match ok {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The command line, with `--flag=value` read as `--flag value`. With no arguments, or
/// `help`, the help (as an `is_help` error).
fn parse(args: impl IntoIterator<Item = OsString>) -> xflags::Result<flags::Xtask> {
    let mut split = Vec::new();
    for arg in args {
        match arg
            .to_str()
            .and_then(|it| it.strip_prefix("--")?.split_once('='))
        {
            Some((flag, value)) => split.extend([format!("--{flag}").into(), value.into()]),
            None => split.push(arg),
        }
    }
    if split.is_empty() || split[0] == "help" {
        split.insert(0, "--help".into());
    }
    flags::Xtask::from_vec(split)
}

/// The workspace root: the parent of this crate's directory.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> xflags::Result<flags::Xtask> {
        parse(args.iter().map(OsString::from))
    }

    fn verify(args: &[&str]) -> Option<flags::Verify> {
        match parse_strs(args).ok()?.subcommand {
            flags::XtaskCmd::Verify(verify) => Some(verify),
            _ => None,
        }
    }

    #[test]
    fn parses_verify_flags_and_issues() {
        let got = verify(&["verify", "BUG-423", "--soak", "--json", "out.json", "BUG-1"]);
        assert!(
            got.as_ref()
                .is_some_and(|it| it.issues == ["BUG-423", "BUG-1"]
                    && it.soak
                    && it.json.as_deref() == Some(Path::new("out.json"))),
            "{got:?}"
        );
        let got = verify(&["verify", "--json=r.json"]);
        assert!(
            got.as_ref().is_some_and(|it| it.issues.is_empty()
                && !it.soak
                && it.json.as_deref() == Some(Path::new("r.json"))),
            "{got:?}"
        );
    }

    #[test]
    fn parses_repro_and_help() -> xflags::Result<()> {
        match parse_strs(&["repro", "BUG-423", "--soak"])?.subcommand {
            flags::XtaskCmd::Repro(repro) => {
                assert_eq!(repro.issue.as_deref(), Some("BUG-423"));
                assert!(repro.soak);
            }
            other => panic!("{other:?}"),
        }
        for args in [&[][..], &["--help"], &["verify", "-h"], &["help"]] {
            let err = parse_strs(args).err();
            assert!(
                err.is_some_and(|it| it.is_help()),
                "{args:?} should ask for help"
            );
        }
        Ok(())
    }

    #[test]
    fn rejects_what_it_does_not_know() {
        for args in [
            &["frobnicate"][..],
            &["verify", "--fast"],
            &["verify", "--json"],
            &["repro", "A", "B"],
        ] {
            let err = parse_strs(args).err();
            assert!(
                err.is_some_and(|it| !it.is_help()),
                "{args:?} should be rejected"
            );
        }
    }

    #[test]
    fn parses_mutants_paths_and_flags() -> xflags::Result<()> {
        let args = [
            "mutants",
            "crates/scope-lock/src/scope.rs",
            "--in-diff=origin/main",
            "--timeout",
            "300",
            "--jobs=2",
            "--lib-tests",
        ];
        match parse_strs(&args)?.subcommand {
            flags::XtaskCmd::Mutants(mutants) => {
                assert_eq!(
                    mutants.paths,
                    [PathBuf::from("crates/scope-lock/src/scope.rs")]
                );
                assert_eq!(mutants.in_diff.as_deref(), Some("origin/main"));
                assert_eq!((mutants.timeout, mutants.build_timeout), (Some(300), None));
                assert_eq!(mutants.jobs, Some(2));
                assert!(mutants.lib_tests);
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_strs(&["mutants", "--timeout", "soon"]).is_err());
        Ok(())
    }

    /// What verify does is described once, in issues/README.md; the README and the help
    /// only point there.
    #[test]
    fn verify_is_described_in_one_place_and_pointed_to_from_the_others() -> anyhow::Result<()> {
        let sh = Shell::new()?;
        let root = project_root();
        let issues_readme = sh.read_file(root.join("issues/README.md"))?;
        assert!(issues_readme.contains("\n## What `cargo xtask verify` does\n"));
        let readme = sh.read_file(root.join("README.md"))?;
        assert!(readme.contains("(issues/README.md#what-cargo-xtask-verify-does)"));
        Ok(())
    }

    #[test]
    fn help_lists_every_command_and_points_to_the_full_description() {
        let help = parse_strs(&["--help"]).err().map(|it| it.to_string());
        let help = help.unwrap_or_default();
        for word in [
            "verify",
            "repro",
            "--soak",
            "--json",
            "XTASK_ISSUES_DIR",
            "issues/README.md#what-cargo-xtask-verify-does",
            "mutants",
            "--in-diff",
            "--lib-tests",
            "mutants-accepted.toml",
        ] {
            assert!(help.contains(word), "help lacks {word}:\n{help}");
        }
    }
}
