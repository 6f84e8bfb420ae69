//! What the command says when something is wrong (issue 20, SL-25): the argument the user
//! typed, the path in question, the system's reason in words, never `(os error N)`.

use std::fs;

use crate::support::{self, Sandbox, TestResult};

/// An empty `SCOPE_LOCK_LOOPS_DIR` is blamed on the variable, not on a flag nobody typed.
#[test]
fn an_empty_loops_dir_variable_is_blamed_on_the_variable() -> TestResult {
    let sandbox = Sandbox::new()?;
    let mut command = sandbox.command(&["list"]);
    command.env("SCOPE_LOCK_LOOPS_DIR", "");
    let out = crate::support::run_to_end(command)?;
    assert_eq!(out.code(), 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("SCOPE_LOCK_LOOPS_DIR"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("--loops-dir"), "{}", out.stderr);

    let out = sandbox.run(&["--loops-dir", "", "list"])?;
    assert_eq!(out.code(), 2, "{}", out.stderr);
    assert!(out.stderr.contains("--loops-dir"), "{}", out.stderr);
    Ok(())
}

/// A loops directory that does not exist (a typo, the wrong current directory) is an error for
/// the commands that look, which create nothing; `run` creates it, as before.
#[test]
fn a_loops_dir_that_does_not_exist_is_an_error_not_every_scope_free() -> TestResult {
    let sandbox = Sandbox::new()?;
    let typo = sandbox.path().join(".lops");
    for args in [
        &["check", "--scope", "docs"][..],
        &["list"],
        &["list", "--json"],
        &["clean"],
        &["break", "x"],
    ] {
        let mut all = vec!["--loops-dir", ".lops"];
        all.extend_from_slice(args);
        let out = sandbox.run(&all)?;
        assert_eq!(out.code(), 1, "{args:?}: {}{}", out.stdout, out.stderr);
        let want = format!("{} (named by --loops-dir) does not exist", typo.display());
        support::assert_says(&out.stderr, &want);
        assert_eq!(out.stdout, "", "{args:?}");
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }
    let out = sandbox.run(&["--loops-dir", ".lops", "run", "--name", "a", "true"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(typo.join(".running").is_dir());
    Ok(())
}

#[test]
fn an_empty_scope_is_a_usage_error_naming_scope() -> TestResult {
    let sandbox = Sandbox::new()?;
    for args in [
        &["run", "--name", "a", "--scope", "", "--", "echo", "ran"][..],
        &["check", "--scope", "docs", "--scope", ""],
    ] {
        let out = sandbox.run(args)?;
        assert_eq!(out.code(), 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("--scope"), "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{args:?}");
    }
    Ok(())
}

/// `check` says which paths it found free, resolved as the lock files hold them, and where it
/// looked.
#[test]
fn check_prints_the_resolved_paths_it_checked() -> TestResult {
    let sandbox = Sandbox::new()?;
    fs::create_dir_all(sandbox.running())?;
    let out = sandbox.run(&["check", "--scope", "docs/../src", "--scope", "README.md"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let root = sandbox.path().canonicalize()?;
    let expected = format!(
        "free: {} {} (locks in {})\n",
        root.join("src").display(),
        root.join("README.md").display(),
        sandbox.running().display()
    );
    assert_eq!(out.stdout, expected);
    Ok(())
}

/// A command that cannot be run is named with the reason in words.
#[test]
fn io_errors_are_said_in_words_without_os_error_numbers() -> TestResult {
    let sandbox = Sandbox::new()?;
    let out = sandbox.run(&["run", "--name", "a", "--", "./no-such-program"])?;
    assert_eq!(out.code(), 127, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "scope-lock: cannot run ./no-such-program: No such file or directory\n"
    );
    Ok(())
}

/// A usage error names the option as the user typed it: `-w`, not the `--timeout` clap knows
/// it as; and a negative number of seconds is judged as a value, not taken for an option.
#[test]
fn a_usage_error_names_the_option_as_it_was_typed() -> TestResult {
    let sandbox = Sandbox::new()?;
    for (args, named) in [
        (
            &["run", "--name", "a", "-w", "soon", "true"][..],
            "'-w <SECS>'",
        ),
        (
            &["run", "--name", "a", "--timeout", "soon", "true"],
            "'--timeout <SECS>'",
        ),
        (&["run", "--name", "a", "-E", "0", "true"], "'-E <N>'"),
        (&["list", "-o", "nope"], "'-o <COLUMNS>'"),
        (
            &["--invalid-grace", "-3", "list"],
            "'--invalid-grace <SECS>'",
        ),
    ] {
        let out = sandbox.run(args)?;
        assert_eq!(out.code(), 2, "{args:?}: {}", out.stderr);
        let first = out.stderr.lines().next().unwrap_or_default();
        assert!(first.contains(named), "{args:?}: {first}");
        assert!(
            first.starts_with("error: invalid value"),
            "{args:?}: {first}"
        );
    }
    Ok(())
}
