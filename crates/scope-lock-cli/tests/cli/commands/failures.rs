//! What a failure says: the path at fault and the system's reason, on one line (SL-12).

use std::fs;

use crate::support::{self, Sandbox, TestResult};

/// Asserts that a failure's message names `path` and says `reason` in the system's words.
fn assert_says_why(out: &support::Output, path: &std::path::Path, reason: &str) {
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&path.display().to_string()),
        "the message does not name {}: {}",
        path.display(),
        out.stderr
    );
    assert!(
        out.stderr.contains(reason),
        "the message drops the OS cause {reason:?}: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("(os error"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

const EVERY_COMMAND: [&[&str]; 4] = [
    &["list"],
    &["check", "--scope", "src"],
    &["clean"],
    &["run", "--name", "job", "--scope", "src", "--", "true"],
];

#[test]
fn a_loops_dir_that_is_a_file_fails_saying_not_a_directory() -> TestResult {
    let sandbox = Sandbox::new()?;
    fs::write(sandbox.path().join("afile"), "")?;
    for args in EVERY_COMMAND {
        let mut all = vec!["--loops-dir", "afile"];
        all.extend_from_slice(args);
        let out = sandbox.run(&all)?;
        assert_says_why(&out, &sandbox.path().join("afile"), "Not a directory");
    }
    Ok(())
}

#[test]
fn a_lock_directory_another_user_cannot_open_fails_saying_permission_denied() -> TestResult {
    if !support::hostile::available(
        "a_lock_directory_another_user_cannot_open_fails_saying_permission_denied",
    ) {
        return Ok(());
    }
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new()?;
    // `nobody` may enter the project and `.loops`, but not root's `.running/`.
    fs::set_permissions(sandbox.path(), fs::Permissions::from_mode(0o755))?;
    fs::create_dir_all(sandbox.running())?;
    fs::set_permissions(sandbox.running(), fs::Permissions::from_mode(0o700))?;
    for args in EVERY_COMMAND {
        let mut command = sandbox.command(args);
        support::hostile::run_as(&mut command, support::hostile::NOBODY);
        let out = support::run_to_end(command)?;
        assert_says_why(&out, &sandbox.running(), "Permission denied");
    }
    Ok(())
}
