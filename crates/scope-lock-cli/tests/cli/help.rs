//! `--help` of the command and of every subcommand, pinned by snapshots: the examples and the
//! exit-status table are part of the interface.

use crate::support::{Sandbox, TestResult};

#[test]
fn help_texts_match_their_snapshots() -> TestResult {
    let sandbox = Sandbox::new()?;
    for (name, args) in [
        ("help", &["--help"][..]),
        ("help_run", &["run", "--help"]),
        ("help_list", &["list", "--help"]),
        ("help_check", &["check", "--help"]),
        ("help_clean", &["clean", "--help"]),
        ("help_break", &["break", "--help"]),
    ] {
        let out = sandbox.run(args)?;
        assert_eq!(out.code(), 0, "{args:?}: {}", out.stderr);
        insta::assert_snapshot!(name, out.stdout);
    }
    Ok(())
}

#[test]
fn every_subcommand_help_has_examples() -> TestResult {
    let sandbox = Sandbox::new()?;
    for sub in ["run", "list", "check", "clean", "break"] {
        let out = sandbox.run(&[sub, "--help"])?;
        assert!(
            out.stdout.contains("Examples:\n  scope-lock "),
            "{sub} --help has no examples"
        );
    }
    Ok(())
}

/// The top-level help shows each subcommand in use, and the forms its own help shows beyond
/// the plain one (`clean --dry-run`, `run --wait`, ...): someone reading only `--help` sees
/// what each command can do.
#[test]
fn the_top_level_help_shows_the_useful_forms_of_every_subcommand() -> TestResult {
    let sandbox = Sandbox::new()?;
    let out = sandbox.run(&["--help"])?;
    let examples = out
        .stdout
        .split_once("Examples:\n")
        .and_then(|(_, rest)| rest.split_once("\n\n"))
        .map(|(examples, _)| examples)
        .ok_or("no examples")?;
    for form in [
        "scope-lock run --name ",
        " --wait --timeout ",
        "scope-lock list\n",
        "scope-lock list --json",
        "scope-lock check --scope ",
        "scope-lock clean\n",
        "scope-lock clean --dry-run\n",
        "scope-lock break docs-fixer\n",
        "scope-lock break docs-fixer --kill\n",
    ] {
        assert!(
            format!("{examples}\n").contains(form),
            "no `{}` among the examples:\n{examples}",
            form.trim()
        );
    }
    Ok(())
}

#[test]
fn usage_errors_exit_2() -> TestResult {
    let sandbox = Sandbox::new()?;
    for args in [
        &["frobnicate"][..],
        &["run", "--name", "x"],                   // no CMD
        &["run", "--scope", "docs", "--", "true"], // no --name
        &["check"],                                // no --scope
        &["list", "--bogus"],
        &["run", "--name", "../up", "--", "true"], // invalid name
        &["check", "--name", "", "--scope", "docs"], // invalid name
        &["--loops-dir", "", "list"],
        &["run", "--name", "x", "-n", "--wait", "--", "true"], // -n and --wait
        &[
            "run",
            "--name",
            "x",
            "--wait",
            "--timeout",
            "-1",
            "--",
            "true",
        ],
    ] {
        let out = sandbox.run(args)?;
        assert_eq!(out.code(), 2, "{args:?}: {}", out.stderr);
        assert!(!out.stderr.is_empty(), "{args:?} said nothing");
    }
    Ok(())
}
