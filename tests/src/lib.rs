//! Test support for BUG-423's regression suite. Nothing here is part of the `scope-lock`
//! library; the pre-fix port in particular lives only here.

pub mod args;
pub mod attempt;
pub mod fleet;
pub mod locker;
pub mod original_reader;
pub mod pre_fix;
pub mod pre_fix_wait;
pub mod probe;
pub mod turns;
pub mod witness;

use std::path::Path;

use serde_json::Value;

/// Set to a directory: tests write their counts there as `<test function>.json` for
/// `cargo xtask verify` to show as evidence.
pub const EVIDENCE_VAR: &str = xtask_contract::env::EVIDENCE_DIR;

/// Set to `1`: scenarios run ten times more iterations (`cargo xtask verify --soak`).
pub const SOAK_VAR: &str = xtask_contract::env::SOAK;

/// Whether this is a soak run.
pub fn soak() -> bool {
    std::env::var(SOAK_VAR).is_ok_and(|value| value == xtask_contract::env::SOAK_ON)
}

/// Writes `evidence` for the test `function` when `SCOPE_LOCK_EVIDENCE_DIR` is set.
///
/// # Panics
///
/// When the directory is set but cannot be written: evidence asked for must not go missing.
pub fn record_evidence(function: &str, evidence: &Value) {
    let Some(dir) = std::env::var_os(EVIDENCE_VAR) else {
        return;
    };
    let dir = Path::new(&dir);
    let path = dir.join(format!("{function}.json"));
    let written =
        std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, evidence.to_string()));
    if let Err(err) = written {
        panic!("cannot write evidence {}: {err}", path.display());
    }
}

// The workspace README's example is compiled and run as a doctest of this package, the one that
// tests the workspace as a whole: the library's package carries its own README, not this one.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct WorkspaceReadme;
