//! T1: scope templates (`${context.<var>}`).

use std::path::PathBuf;

use scope_lock::testing::{TestResult, expect_conflict, fixture};
use scope_lock::{LockRequest, normalize_path_in, resolve_scope, scopes_overlap};
use serde_json::{Map, Value, json};

use super::context;

/// T1: `templates` resolved with the context `ctx` (a JSON object) are `expected`.
#[track_caller]
fn assert_resolves(ctx: Value, templates: &[&str], expected: &[&str]) {
    let ctx = context(ctx);
    assert_eq!(resolve_scope(templates, &ctx), expected);
}

#[test]
fn static_entries_pass_through_and_context_variables_are_replaced() {
    assert_resolves(
        json!({"run_id": "r-17", "dir": "out"}),
        &["src/", "docs/README.md", "${context.run_id}"],
        &["src/", "docs/README.md", "r-17"],
    );
}

#[test]
fn unknown_variables_are_left_literally() {
    assert_resolves(
        json!({"known": "k"}),
        &["${context.unknown}/x", "${context.known}/${context.nope}"],
        &["${context.unknown}/x", "k/${context.nope}"],
    );
}

#[test]
fn mixed_multiple_and_partial_templates_in_one_path() {
    assert_resolves(
        json!({"a": "A", "b": "B"}),
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
        json!({"HOME": "no", "x": "no", "env": "no", "captured": "no"}),
        &["${env.HOME}/a", "${captured.x}", "${env.X}${captured.x}"],
        &["${env.HOME}/a", "${captured.x}", "${env.X}${captured.x}"],
    );
}

#[test]
fn integer_values_are_rendered_in_decimal() {
    assert_resolves(
        json!({"n": 42, "neg": -7, "big": 12_345_678_901_u64, "zero": 0}),
        &[
            "runs/${context.n}",
            "${context.neg}",
            "${context.big}/${context.zero}",
        ],
        &["runs/42", "-7", "12345678901/0"],
    );
}

#[test]
fn an_empty_scope_resolves_to_an_empty_list() {
    let ctx = context(json!({"a": "b"}));
    assert!(resolve_scope::<&str>(&[], &ctx).is_empty());
    assert!(resolve_scope::<String>(&[], &Map::new()).is_empty());
}

#[test]
fn two_run_directories_give_disjoint_scopes_that_both_acquire() -> TestResult {
    let f = fixture()?;
    let scope_of = |run: &str| -> Result<Vec<PathBuf>, scope_lock::Error> {
        resolve_scope(
            &[".loops/runs/${context.run_id}"],
            &context(json!({"run_id": run})),
        )
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
