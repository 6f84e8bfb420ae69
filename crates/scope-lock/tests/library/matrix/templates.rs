//! T1: scope templates (`${context.<var>}`).

use std::path::PathBuf;

use scope_lock::testing::{TestResult, expect_conflict, fixture};
use scope_lock::{LockRequest, normalize_path_in, resolve_scope, scopes_overlap};

/// T1: `templates` resolved with the context `ctx` are `expected`.
#[track_caller]
fn assert_resolves<const N: usize>(ctx: [(&str, &str); N], templates: &[&str], expected: &[&str]) {
    let expected: Vec<PathBuf> = expected.iter().map(PathBuf::from).collect();
    assert_eq!(resolve_scope(templates, ctx), expected);
}

#[test]
fn static_entries_pass_through_and_context_variables_are_replaced() {
    assert_resolves(
        [("run_id", "r-17"), ("dir", "out")],
        &["src/", "docs/README.md", "${context.run_id}"],
        &["src/", "docs/README.md", "r-17"],
    );
}

#[test]
fn unknown_variables_are_left_literally() {
    assert_resolves(
        [("known", "k")],
        &["${context.unknown}/x", "${context.known}/${context.nope}"],
        &["${context.unknown}/x", "k/${context.nope}"],
    );
}

#[test]
fn mixed_multiple_and_partial_templates_in_one_path() {
    assert_resolves(
        [("a", "A"), ("b", "B")],
        &[
            "x/${context.a}/y/${context.b}/${context.a}",
            "pre-${context.a}-post",
            "runs/${context.a",
            "${context.}/z",
        ],
        &[
            "x/A/y/B/A",
            "pre-A-post",
            "runs/${context.a",
            "${context.}/z",
        ],
    );
}

#[test]
fn env_and_captured_namespaces_are_untouched() {
    assert_resolves(
        [
            ("HOME", "no"),
            ("x", "no"),
            ("env", "no"),
            ("captured", "no"),
        ],
        &["${env.HOME}/a", "${captured.x}", "${env.X}${captured.x}"],
        &["${env.HOME}/a", "${captured.x}", "${env.X}${captured.x}"],
    );
}

/// Values are inserted as given: the caller renders them (the original inserts `str(value)`).
#[test]
fn values_are_inserted_as_given() {
    assert_resolves(
        [("n", "42"), ("flag", "True"), ("none", "None")],
        &["runs/${context.n}", "${context.flag}-${context.none}"],
        &["runs/42", "True-None"],
    );
}

#[test]
fn an_empty_scope_resolves_to_an_empty_list() {
    assert!(resolve_scope::<&str, _, _>(&[], [("a", "b")]).is_empty());
    assert!(resolve_scope::<String, String, String>(&[], []).is_empty());
}

#[test]
fn two_run_directories_give_disjoint_scopes_that_both_acquire() -> TestResult {
    let f = fixture()?;
    let scope_of = |run: &str| -> Result<Vec<PathBuf>, scope_lock::Error> {
        resolve_scope(&[".loops/runs/${context.run_id}"], [("run_id", run)])
            .iter()
            .map(|p| normalize_path_in(&f.root, p))
            .collect()
    };
    let (a, b) = (scope_of("run-a")?, scope_of("run-b")?);
    assert_eq!(a, [f.path(".loops/runs/run-a")]);
    assert!(!scopes_overlap(&a, &b));
    let ga = f
        .locks
        .try_acquire(&LockRequest::new("w").scope(a.clone()).instance_id("w-a"))?;
    let gb = f
        .locks
        .try_acquire(&LockRequest::new("w").scope(b).instance_id("w-b"))?;
    expect_conflict(
        f.locks
            .try_acquire(&LockRequest::new("w").scope(a).instance_id("w-a2")),
    );
    ga.release()?;
    gb.release()?;
    Ok(())
}
