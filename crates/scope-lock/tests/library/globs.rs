//! Glob entries: a pattern holds the paths it matches and every path above or below them, in
//! requests and in any lock file, the original's included.

use scope_lock::testing::{TestResult, expect_conflict, fixture};
use scope_lock::{ConflictRule, LockRecord, LockRequest};

#[test]
fn a_held_pattern_excludes_the_paths_it_matches_and_no_others() -> TestResult {
    let f = fixture()?;
    let sync = f.acquire_paths("docs-sync", &["docs", "*.md"])?;
    let conflict = expect_conflict(f.locks.try_acquire(&f.request("readme", "README.md")));
    match conflict.rule() {
        ConflictRule::Overlap { ours, theirs } => {
            assert_eq!(ours, &f.path("README.md"));
            assert_eq!(theirs, &f.path("*.md"));
        }
        other => panic!("not an overlap: {other:?}"),
    }
    // Above what it matches: the whole project.
    expect_conflict(f.locks.try_acquire(&f.request("all", ".")));
    // Neither a deeper `.md` nor another name.
    f.acquire("guide", "src/guide.md")?.release()?;
    f.acquire("main", "main.rs")?.release()?;
    sync.release()?;
    Ok(())
}

/// The original's own `docs-sync` loop writes `*.md` as it is; the user meant the pattern, and
/// reading it so is only stricter than reading it as a path.
#[test]
fn the_originals_lock_of_a_pattern_excludes_the_paths_it_matches() -> TestResult {
    let f = fixture()?;
    f.init()?;
    // pid 1: alive, and never our ancestor.
    let record = LockRecord::new("docs-sync", vec![f.path("docs"), f.path("*.md")], 1, "t");
    f.write_lock_file("docs-sync", record.to_json().as_bytes())?;
    let conflict = expect_conflict(f.locks.try_acquire(&f.request("readme", "README.md")));
    assert_eq!(
        conflict.holder().map(LockRecord::loop_name),
        Some("docs-sync")
    );
    // A literal file named `*.md` is still held too.
    let literal = format!("literal:{}", f.path("*.md"));
    expect_conflict(
        f.locks
            .try_acquire(&LockRequest::new("odd").scope([literal])),
    );
    f.acquire("src", "src")?.release()?;
    Ok(())
}

#[test]
fn patterns_against_patterns_overlap_when_some_path_is_in_both() -> TestResult {
    let f = fixture()?;
    let rust = f.acquire_paths("rust", &["src/**/*.rs"])?;
    expect_conflict(f.locks.try_acquire(&f.request("mods", "src/*/mod.rs")));
    expect_conflict(f.locks.try_acquire(&f.request("tests", "src/**/tests")));
    // Anything below `src` could hold a `.rs` file; nothing outside it can.
    f.acquire("docs", "docs/**")?.release()?;
    f.acquire("readme", "*.md")?.release()?;
    rust.release()?;
    Ok(())
}
