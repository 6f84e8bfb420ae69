//! The workspace's task runner: `cargo xtask <command>`.
//!
//! One module per command, in the manner of rust-analyzer's xtask: `verify`
//! is the release gate, `repro` shows BUG-423 happening on the pre-fix port.
//! Every process is started through `xshell::cmd!` from a shell rooted at the
//! workspace root.

mod libtest;
mod records;
mod report;
mod repro;
mod verify;

use std::{
    env,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, bail};
use xshell::{Cmd, Shell};

const HELP: &str = "\
cargo xtask <COMMAND>

COMMANDS:
    verify [ISSUE...] [--soak] [--json PATH]
        The release gate. Builds and runs every workspace test binary and the
        doc tests, reads the issue records in issues/*.md (or only the ISSUEs
        named), checks each acceptance criterion against the test outcomes,
        re-runs each `against_prefix` test on the pre-fix port, prints a
        table, and writes target/verify/report.{json,md}. Exits non-zero when
        any criterion, workspace test or doc test failed, or an ISSUE is
        unknown.
            --soak       set SCOPE_LOCK_SOAK=1 for the test binaries (longer runs)
            --json PATH  also write the JSON report to PATH

    repro [BUG-423] [--soak]
        Builds regression-worker and runs its BUG-423 reproduction on the
        pre-fix port and on the fix, side by side. Exits 0 when the bug shows
        on the pre-fix port and not on the fix.
            --soak       pass --soak to the worker (more cycles)

    help, --help, -h
        Print this help.

ENVIRONMENT:
    XTASK_ISSUES_DIR   verify reads issue records from this directory instead
                       of issues/ (to try out a record; a relative path is
                       taken from the current directory)
    CARGO_TARGET_DIR   where builds and target/verify/ go (default: target/)
";

fn main() -> ExitCode {
    match try_main() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn try_main() -> anyhow::Result<ExitCode> {
    let command = match Command::parse(env::args().skip(1))? {
        Some(command) => command,
        None => {
            print!("{HELP}");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    let ok = match command {
        Command::Verify(flags) => verify::run(&sh, &flags)?,
        Command::Repro(flags) => repro::run(&sh, &flags)?,
    };
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Command {
    Verify(VerifyFlags),
    Repro(ReproFlags),
}

#[derive(Debug, Default, PartialEq, Eq)]
struct VerifyFlags {
    issues: Vec<String>,
    soak: bool,
    json: Option<PathBuf>,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct ReproFlags {
    issue: Option<String>,
    soak: bool,
}

impl Command {
    /// `Ok(None)` means "print the help".
    fn parse(args: impl IntoIterator<Item = String>) -> anyhow::Result<Option<Command>> {
        let mut args = args.into_iter();
        let Some(name) = args.next() else {
            return Ok(None);
        };
        match name.as_str() {
            "help" | "--help" | "-h" => Ok(None),
            "verify" => {
                let mut flags = VerifyFlags::default();
                while let Some(arg) = args.next() {
                    match arg.as_str() {
                        "--help" | "-h" => return Ok(None),
                        "--soak" => flags.soak = true,
                        "--json" => {
                            let path = args.next().context("--json needs a PATH")?;
                            flags.json = Some(path.into());
                        }
                        _ if arg.starts_with("--json=") => {
                            flags.json = Some(arg["--json=".len()..].into());
                        }
                        _ if arg.starts_with('-') => bail!("verify: unknown flag {arg}\n\n{HELP}"),
                        _ => flags.issues.push(arg),
                    }
                }
                Ok(Some(Command::Verify(flags)))
            }
            "repro" => {
                let mut flags = ReproFlags::default();
                for arg in args {
                    match arg.as_str() {
                        "--help" | "-h" => return Ok(None),
                        "--soak" => flags.soak = true,
                        _ if arg.starts_with('-') => bail!("repro: unknown flag {arg}\n\n{HELP}"),
                        _ if flags.issue.is_some() => {
                            bail!("repro takes one issue id, got another: {arg}")
                        }
                        _ => flags.issue = Some(arg),
                    }
                }
                Ok(Some(Command::Repro(flags)))
            }
            _ => bail!("unknown command {name:?}\n\n{HELP}"),
        }
    }
}

/// The workspace root: the parent of this crate's directory.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// `CARGO_TARGET_DIR` if set (relative to the root), else `<root>/target`.
fn target_dir(sh: &Shell) -> PathBuf {
    match sh.var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => project_root().join(dir),
        _ => project_root().join("target"),
    }
}

/// `cargo run` hands xtask its own package's variables; a nested cargo (or a
/// test binary) must not inherit them. xshell 0.2 has no `Shell::remove_var`,
/// so every command that needs it is cleaned here.
fn without_cargo_package_env(mut cmd: Cmd<'_>) -> Cmd<'_> {
    for (key, _) in env::vars_os() {
        if let Some(key) = key.to_str()
            && (key == "CARGO_MANIFEST_DIR" || key.starts_with("CARGO_PKG_"))
        {
            cmd = cmd.env_remove(key);
        }
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Option<Command>> {
        Command::parse(args.iter().map(|it| it.to_string()))
    }

    #[test]
    fn parses_verify_flags_and_issues() -> anyhow::Result<()> {
        let got = parse(&["verify", "BUG-423", "--soak", "--json", "out.json", "BUG-1"])?;
        let want = Command::Verify(VerifyFlags {
            issues: vec!["BUG-423".into(), "BUG-1".into()],
            soak: true,
            json: Some("out.json".into()),
        });
        assert_eq!(got, Some(want));
        let got = parse(&["verify", "--json=r.json"])?;
        assert_eq!(
            got,
            Some(Command::Verify(VerifyFlags {
                json: Some("r.json".into()),
                ..VerifyFlags::default()
            }))
        );
        Ok(())
    }

    #[test]
    fn parses_repro_and_help() -> anyhow::Result<()> {
        assert_eq!(
            parse(&["repro"])?,
            Some(Command::Repro(ReproFlags::default()))
        );
        assert_eq!(
            parse(&["repro", "BUG-423", "--soak"])?,
            Some(Command::Repro(ReproFlags {
                issue: Some("BUG-423".into()),
                soak: true
            }))
        );
        assert_eq!(parse(&[])?, None);
        assert_eq!(parse(&["--help"])?, None);
        assert_eq!(parse(&["verify", "-h"])?, None);
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
            assert!(parse(args).is_err(), "{args:?} should be rejected");
        }
    }

    #[test]
    fn help_lists_every_command_and_the_issues_dir_variable() {
        for word in ["verify", "repro", "--soak", "--json", "XTASK_ISSUES_DIR"] {
            assert!(HELP.contains(word), "help lacks {word}");
        }
    }
}
