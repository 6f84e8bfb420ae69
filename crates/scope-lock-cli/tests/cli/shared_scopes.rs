//! `run --shared` (`-s`): readers of one tree run together, a writer waits for all of them, and
//! a reader that comes after a waiting writer waits behind it; `list` and `--json` say which
//! locks are shared.

use crate::support::{Sandbox, TestResult};

/// The names of the live locks and their modes, as `list --json` shows them.
fn modes(sandbox: &Sandbox) -> Result<Vec<(String, String)>, Box<dyn std::error::Error>> {
    let out = sandbox.run(&["list", "--json"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let value: serde_json::Value = serde_json::from_str(&out.stdout)?;
    let mut modes: Vec<(String, String)> = value["locks"]
        .as_array()
        .ok_or("no locks array")?
        .iter()
        .map(|lock| {
            (
                lock["name"].as_str().unwrap_or_default().to_owned(),
                lock["mode"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    modes.sort();
    Ok(modes)
}

fn pair(name: &str, mode: &str) -> (String, String) {
    (name.to_owned(), mode.to_owned())
}

#[test]
fn shared_readers_run_together_and_a_writer_waits_for_them_in_line() -> TestResult {
    let sandbox = Sandbox::new()?;
    // Three readers of overlapping scopes, all running at once.
    let mut readers = vec![
        sandbox.hold("review", &["--shared", "--scope", "docs"])?,
        sandbox.hold("report", &["-s", "--scope", "docs/api"])?,
        sandbox.hold("index", &["--shared", "--scope", "."])?,
    ];
    assert_eq!(
        modes(&sandbox)?,
        [
            pair("index", "shared"),
            pair("report", "shared"),
            pair("review", "shared")
        ]
    );
    let list = sandbox.run(&["list"])?;
    assert_eq!(
        list.stdout.matches(" (shared) ").count(),
        3,
        "{}",
        list.stdout
    );
    // `check` for a reader says free, for a writer busy, naming a reader as held shared.
    let free = sandbox.run(&["check", "--shared", "--scope", "docs/api/x"])?;
    assert_eq!(free.code(), 0, "{}", free.stderr);
    let busy = sandbox.run(&["check", "--scope", "docs/api/x"])?;
    assert_eq!(busy.code(), 75, "{}", busy.stderr);
    assert!(
        busy.stderr.contains("held shared by loop"),
        "{}",
        busy.stderr
    );

    // A writer waits; a reader that comes after it waits behind it, not beside the readers.
    let (mut writer, _) = sandbox.waiter("fixer", &["--scope", "docs"])?;
    let (mut late, said) = sandbox.waiter("late", &["-s", "--scope", "docs/api"])?;
    assert!(
        said.contains(
            "an earlier waiter for an overlapping scope goes first: waiting is loop `fixer`"
        ),
        "{said}"
    );

    // The readers leave; the writer runs, alone.
    for reader in &mut readers {
        assert_eq!(reader.finish().and_then(|s| s.code()), Some(0));
    }
    writer.assert_cmd_runs("the writer")?;
    assert_eq!(modes(&sandbox)?, [pair("fixer", "exclusive")]);
    assert_eq!(writer.finish().and_then(|s| s.code()), Some(0));
    late.assert_cmd_runs("the late reader")?;
    assert_eq!(late.finish().and_then(|s| s.code()), Some(0));
    Ok(())
}
