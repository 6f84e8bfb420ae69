//! P1: which paths and scopes overlap.

use scope_lock::testing::{TestResult, fixture};
use scope_lock::{paths_overlap, scopes_overlap};

use super::strings;

#[test]
fn paths_overlap_when_equal_or_one_is_a_component_wise_ancestor() {
    assert!(paths_overlap("/repo/src", "/repo/src"));
    assert!(paths_overlap("/repo/src", "/repo/src/lib.rs"));
    assert!(paths_overlap("/repo/src/lib.rs", "/repo/src"));
    assert!(paths_overlap("/", "/repo"));
    assert!(!paths_overlap("/repo/src", "/repo/tests"));
    assert!(!paths_overlap("/a/b", "/a/bc"));
    assert!(!paths_overlap("/a/bc", "/a/b"));
    // No glob semantics: `*.md` is a literal path.
    assert!(!paths_overlap("/repo/*.md", "/repo/README.md"));
    assert!(paths_overlap("/repo/*.md", "/repo/*.md"));
}

#[test]
fn scopes_overlap_when_any_pair_overlaps_and_not_when_all_are_disjoint() {
    let a = strings(&["/repo/docs", "/repo/src"]);
    assert!(scopes_overlap(
        &a,
        &strings(&["/repo/tests", "/repo/src/x"])
    ));
    assert!(scopes_overlap(&strings(&["/repo"]), &a));
    assert!(!scopes_overlap(
        &a,
        &strings(&["/repo/tests", "/repo/srcx"])
    ));
    assert!(!scopes_overlap(&a, &[] as &[&str]));
}

#[test]
fn a_b_and_a_bc_do_not_conflict_when_acquired() -> TestResult {
    let f = fixture()?;
    let b = f.acquire("b", "a/b")?;
    let bc = f.acquire("bc", "a/bc")?;
    b.release()?;
    bc.release()?;
    Ok(())
}
