//! SL-13: a pid is a number in one pid namespace, and two namespaces that share a
//! lock directory each have their own pid 2. A nested `scope-lock run` may take its ancestor's
//! scope (the original's ancestor rule), but only when the holder is proven to be its ancestor,
//! never because some lock's recorded pid happens to equal an ancestor's number here.
//!
//! Real pid namespaces (`unshare -p -f --mount-proc`, as root: see `support::hostile`) share
//! one sandbox's `.loops`. Ordering comes from pipes: a holder's CMD prints a line once it runs
//! and reads its stdin until the test closes it; a waiter says on stderr that it waits.

use crate::support;

use std::process::Command;

use crate::support::hostile::{available, in_new_pid_namespace};
use crate::support::{BOUND, Holder, Sandbox, TestResult, run_to_end, spawn};

/// The binary under test, passed to each namespace's script as `$1`.
const BIN: &str = env!("CARGO_BIN_EXE_scope-lock");

/// `sh -c SCRIPT sh BIN` as pid 1 of a new pid namespace with its own `/proc`, in the sandbox
/// (so every namespace shares its `.loops`). A command the script runs before its last one is
/// forked: the first such is pid 2 there.
fn in_namespace(sandbox: &Sandbox, script: &str) -> Command {
    let mut command = in_new_pid_namespace("sh", &["-c", script, "sh", BIN]);
    command
        .current_dir(sandbox.path())
        .env_remove("SCOPE_LOCK_LOOPS_DIR");
    command
}

/// The pid recorded in the lock file of `name`.
fn recorded_pid(sandbox: &Sandbox, name: &str) -> Result<u64, Box<dyn std::error::Error>> {
    let path = sandbox.running().join(format!("{name}.lock"));
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    record["pid"]
        .as_u64()
        .ok_or_else(|| format!("no pid in {}", path.display()).into())
}

/// Namespace A: `scope-lock run --name A --scope S` (pid 2 there), whose CMD holds S until the
/// test closes its stdin. Returns once CMD runs.
fn hold_in_a_namespace(sandbox: &Sandbox) -> Result<Holder, Box<dyn std::error::Error>> {
    let script = r#""$1" run --name A --scope S -- sh -c 'echo ready; read x'; true"#;
    let mut holder = spawn(in_namespace(sandbox, script))?;
    match holder.next_line(BOUND) {
        Some(line) if line == "ready" => {}
        other => return Err(format!("A's CMD did not start: {other:?}").into()),
    }
    // What makes the scenario: A's record says pid 2, which names another process in B.
    assert_eq!(recorded_pid(sandbox, "A")?, 2);
    Ok(holder)
}

/// Namespace B: an inner shell, pid 2 there, runs `scope-lock run --name B --scope S -- echo
/// got it` and prints its exit status. Returns what B printed.
fn run_b_under_pid_2(sandbox: &Sandbox) -> Result<support::Output, Box<dyn std::error::Error>> {
    let script = r#"sh -c 'echo "inner $$"; "$0" run --name B --scope S -- echo got it; echo "exit $?"' "$1"; true"#;
    let out = run_to_end(in_namespace(sandbox, script))?;
    assert!(
        out.stdout.starts_with("inner 2\n"),
        "B's inner shell is not pid 2, the scenario is not made: {out:?}"
    );
    Ok(out)
}

#[test]
fn a_lock_held_in_another_pid_namespace_blocks_a_process_whose_ancestor_has_its_pid() -> TestResult
{
    if !available(
        "a_lock_held_in_another_pid_namespace_blocks_a_process_whose_ancestor_has_its_pid",
    ) {
        return Ok(());
    }
    let sandbox = Sandbox::new()?;
    let mut a = hold_in_a_namespace(&sandbox)?;
    let b = run_b_under_pid_2(&sandbox)?;
    assert!(
        !b.stdout.contains("got it"),
        "B ran CMD while A held S (B's pid 2 was taken for A's pid 2): {b:?}"
    );
    assert!(b.stdout.ends_with("exit 75\n"), "{b:?}");
    assert!(b.stderr.contains("held by loop `A`"), "{b:?}");
    assert_eq!(a.finish().and_then(|s| s.code()), Some(0));
    // Once A is gone, B runs.
    let b = run_b_under_pid_2(&sandbox)?;
    assert!(b.stdout.contains("got it\nexit 0\n"), "{b:?}");
    Ok(())
}

#[test]
fn a_waiter_in_another_pid_namespace_is_not_skipped_for_an_ancestor_with_its_pid() -> TestResult {
    if !available("a_waiter_in_another_pid_namespace_is_not_skipped_for_an_ancestor_with_its_pid") {
        return Ok(());
    }
    let sandbox = Sandbox::new()?;
    // H, here, holds T; A (pid 2 in its namespace) waits for S and T under a ticket.
    let mut holder = sandbox.hold("H", &["--scope", "T"])?;
    let script = r#""$1" run --name A --scope S --scope T --wait -- echo A ran; true"#;
    let mut a = spawn(in_namespace(&sandbox, script))?;
    let blocking = a.next_stderr_line(BOUND).ok_or("A said nothing")?;
    assert!(
        blocking.starts_with("Blocking: waiting for scope"),
        "{blocking}"
    );
    // B wants S only: no lock holds it, but A waits for it and came first.
    let b = run_b_under_pid_2(&sandbox)?;
    // H lets go before anything is judged, so that A ends whatever B did.
    assert_eq!(holder.finish().and_then(|s| s.code()), Some(0));
    assert_eq!(a.next_line(BOUND).as_deref(), Some("A ran"));
    assert_eq!(a.wait(BOUND).and_then(|s| s.code()), Some(0));
    assert!(
        !b.stdout.contains("got it"),
        "B went ahead of A's ticket (B's pid 2 was taken for A's pid 2): {b:?}"
    );
    assert!(b.stdout.ends_with("exit 75\n"), "{b:?}");
    assert!(b.stderr.contains("`A`"), "{b:?}");
    Ok(())
}

/// A nested run, as `SCRIPT` in CMD's `sh -c SCRIPT BIN`: prints what it got.
const NESTED: &str = r#""$0" run --name inner --scope S/deep -- echo nested ran; echo "exit $?""#;

#[test]
fn a_nested_run_takes_its_parents_scope() -> TestResult {
    let sandbox = Sandbox::new()?;
    let out = sandbox.run(&[
        "run", "--name", "outer", "--scope", "S", "--", "sh", "-c", NESTED, BIN,
    ])?;
    assert_eq!(out.stdout, "nested ran\nexit 0\n", "{out:?}");
    assert_eq!(out.code(), 0, "{out:?}");
    Ok(())
}

#[test]
fn a_nested_run_takes_its_parents_scope_inside_a_new_pid_namespace() -> TestResult {
    if !available("a_nested_run_takes_its_parents_scope_inside_a_new_pid_namespace") {
        return Ok(());
    }
    let sandbox = Sandbox::new()?;
    let script = format!(
        r#""$1" run --name outer --scope S -- sh -c '{}' "$1"; echo "outer $?""#,
        NESTED.replace('\'', r"'\''")
    );
    let out = run_to_end(in_namespace(&sandbox, &script))?;
    assert_eq!(out.stdout, "nested ran\nexit 0\nouter 0\n", "{out:?}");
    Ok(())
}
