//! `--help` of the command and of every subcommand, pinned by snapshots: the examples and the
//! exit-status table are part of the interface.

mod support;

use support::{Sandbox, TestResult};

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
        &["run", "--name", "x", "--timeout", "5", "--", "true"], // --timeout without --wait
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
