//! Glob entries from the command line: the original's `docs-sync` loop declares `*.md`, which
//! must exclude a loop holding `README.md`; `literal:` takes an entry as the path it spells;
//! `list` shows patterns as patterns.

use crate::support::{Sandbox, TestResult};

#[test]
fn a_pattern_is_busy_while_a_path_it_matches_is_held() -> TestResult {
    let sandbox = Sandbox::new()?;
    let mut holder = sandbox.hold("readme", &["--scope", "README.md"])?;

    let busy = sandbox.run(&["check", "--scope", "*.md"])?;
    assert_eq!(
        busy.code(),
        75,
        "`*.md` is free while README.md is held: {}",
        busy.stderr
    );
    assert!(busy.stderr.contains("*.md overlaps"), "{}", busy.stderr);
    assert_eq!(
        sandbox.run(&["check", "--scope", "**/README.md"])?.code(),
        75
    );
    assert_eq!(sandbox.run(&["check", "--scope", "READ?E.*"])?.code(), 75);
    assert_eq!(sandbox.run(&["check", "--scope", "*.rs"])?.code(), 0);
    assert_eq!(sandbox.run(&["check", "--scope", "docs/*.md"])?.code(), 0);
    // Meant literally, `*.md` is one file, which nobody holds.
    assert_eq!(
        sandbox.run(&["check", "--scope", "literal:*.md"])?.code(),
        0
    );
    assert_eq!(holder.finish().and_then(|s| s.code()), Some(0));

    // And the other way round: a held pattern excludes the paths it matches.
    let mut sync = sandbox.hold("docs-sync", &["--scope", "docs/", "--scope", "*.md"])?;
    assert_eq!(sandbox.run(&["check", "--scope", "README.md"])?.code(), 75);
    assert_eq!(sandbox.run(&["check", "--scope", "src/main.rs"])?.code(), 0);
    let list = sandbox.run(&["list"])?;
    assert!(list.stdout.contains("/*.md (pattern)"), "{}", list.stdout);
    let json = sandbox.run(&["list", "--json"])?;
    let value: serde_json::Value = serde_json::from_str(&json.stdout)?;
    let patterns = &value["locks"][0]["patterns"];
    assert_eq!(patterns.as_array().map(Vec::len), Some(1), "{value}");
    assert!(
        patterns[0].as_str().is_some_and(|p| p.ends_with("/*.md")),
        "{value}"
    );
    assert_eq!(sync.finish().and_then(|s| s.code()), Some(0));
    Ok(())
}

#[test]
fn a_literal_entry_holds_only_the_path_it_spells() -> TestResult {
    let sandbox = Sandbox::new()?;
    let mut holder = sandbox.hold("odd", &["--scope", "literal:notes/a*b"])?;
    assert_eq!(sandbox.run(&["check", "--scope", "notes/axb"])?.code(), 0);
    assert_eq!(
        sandbox
            .run(&["check", "--scope", "literal:notes/a*b"])?
            .code(),
        75
    );
    assert_eq!(sandbox.run(&["check", "--scope", "notes/a*"])?.code(), 75);
    assert_eq!(holder.finish().and_then(|s| s.code()), Some(0));
    Ok(())
}

#[test]
fn a_parent_directory_after_a_pattern_is_refused_naming_the_entry() -> TestResult {
    let sandbox = Sandbox::new()?;
    let out = sandbox.run(&["check", "--scope", "docs/*/../x"])?;
    assert_eq!(out.code(), 2, "{}", out.stderr);
    assert!(out.stderr.contains("\"docs/*/../x\""), "{}", out.stderr);
    assert!(
        out.stderr.contains("after a pattern component"),
        "{}",
        out.stderr
    );
    Ok(())
}
