//! The scope module's unit tests, kept together under `scope::tests` (the ids the records in
//! `issues/` name).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::overlap::first_overlap;
use super::path::MAX_SYMLINKS;
use super::*;
use crate::error::{Error, ErrorKind};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// What `resolve_scope` made of `templates`, as text (the tests' templates are UTF-8).
fn resolved<const N: usize>(templates: &[&str], context: [(&str, &str); N]) -> Vec<String> {
    resolve_scope(templates, context)
        .into_iter()
        .map(|path| path.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn lexical_normalisation_against_a_base() -> TestResult {
    let base = Path::new("/nonexistent-base/w");
    for (entry, want) in [
        ("src", "/nonexistent-base/w/src"),
        (".", "/nonexistent-base/w"),
        ("", "/nonexistent-base/w"),
        ("./a//b/./c/", "/nonexistent-base/w/a/b/c"),
        ("a/../../x", "/nonexistent-base/x"),
        ("/../../etc/..", "/"),
        ("*.md", "/nonexistent-base/w/*.md"),
    ] {
        assert_eq!(
            normalize_path_in(base, entry)?,
            Path::new(want),
            "{entry:?}"
        );
    }
    Ok(())
}

#[test]
fn symlinks_of_the_existing_prefix_are_followed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = fs::canonicalize(dir.path())?;
    fs::create_dir_all(root.join("real/inner"))?;
    symlink(root.join("real"), root.join("link"))?;
    symlink("real/inner", root.join("rel"))?;
    for (entry, want) in [
        ("link/inner/missing/x", "real/inner/missing/x"),
        ("rel", "real/inner"),
        // `..` after a symlink climbs from its target, as realpath does.
        ("rel/..", "real"),
        ("missing/../real", "real"),
    ] {
        assert_eq!(
            normalize_path_in(&root, entry)?,
            root.join(want),
            "{entry:?}"
        );
    }
    Ok(())
}

#[test]
fn symlink_loops_and_nul_are_clear_errors() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = fs::canonicalize(dir.path())?;
    symlink(root.join("b"), root.join("a"))?;
    symlink(root.join("a"), root.join("b"))?;
    let err = normalize_path_in(&root, "a/x").map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidScope);
    assert!(err.to_string().contains("symlink loop"), "{err}");
    assert!(err.to_string().contains("\"a/x\""), "{err}");
    let err = normalize_path_in(&root, "a\0b").map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("NUL"), "{err}");
    Ok(())
}

#[test]
fn overlap_is_component_wise() {
    assert!(paths_overlap("/a/b", "/a/b"));
    assert!(paths_overlap("/a/b", "/a/b/c"));
    assert!(paths_overlap("/a/b/c", "/a/b"));
    assert!(paths_overlap("/", "/anything"));
    assert!(!paths_overlap("/a/b", "/a/bc"));
    assert!(!paths_overlap("/repo/src", "/repo/tests"));
    let s = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
    assert!(scopes_overlap(&s(&["/x", "/a/b"]), &s(&["/q", "/a"])));
    assert!(!scopes_overlap(&s(&["/x", "/y"]), &s(&["/q", "/z"])));
    assert_eq!(
        first_overlap(&s(&["/x", "/a/b"]), &s(&["/q", "/a"])),
        Some((Path::new("/a/b"), Path::new("/a")))
    );
}

/// The pairwise comparison the index replaces, as the oracle.
fn first_overlap_pairwise<'a>(
    ours: &'a [PathBuf],
    theirs: &'a [PathBuf],
) -> Option<(&'a Path, &'a Path)> {
    ours.iter()
        .flat_map(|o| theirs.iter().map(move |t| (o.as_path(), t.as_path())))
        .find(|(o, t)| paths_overlap(o, t))
}

#[test]
fn the_index_finds_the_same_first_pair_as_comparing_every_pair() {
    let paths = [
        "", "/", "//", "/a", "/a/", "/a//", "/a/.", "/a/./b", "/a/b", "/a//b/", "/a/b/c", "/a/bc",
        "/ab", "/a/..", "/a/../b", "a", "a/", "./a", ".", "./", "a/b", "..", "../a", "/b", "/b/a",
        "/x/y/z", "/é", "/é/ü",
    ];
    // Windows of three paths, as ours against each as theirs, so that which pair comes
    // first is tested along with whether any does.
    let windows: Vec<Vec<PathBuf>> = (0..paths.len())
        .map(|start| {
            (0..3)
                .map(|k| PathBuf::from(paths[(start + k * 7) % paths.len()]))
                .collect()
        })
        .chain(paths.iter().map(|p| vec![PathBuf::from(p)]))
        .chain([Vec::new()])
        .collect();
    let (mut overlapping, mut disjoint) = (0, 0);
    for ours in &windows {
        for theirs in &windows {
            let want = first_overlap_pairwise(ours, theirs);
            assert_eq!(first_overlap(ours, theirs), want, "{ours:?} vs {theirs:?}");
            if want.is_some() {
                overlapping += 1;
            } else {
                disjoint += 1;
            }
        }
    }
    // Both answers occur plenty: the oracle is not one-sided.
    assert!(
        overlapping > 100 && disjoint > 100,
        "{overlapping} {disjoint}"
    );
}

#[test]
fn paths_that_are_not_utf8_are_indexed_by_their_bytes() {
    let ours = [PathBuf::from("/data/x")];
    let index = ScopeIndex::new(&ours);
    let raw = |bytes: &'static [u8]| Path::new(OsStr::from_bytes(bytes));
    assert_eq!(index.first_overlap([raw(b"/data/\xff")]), None);
    assert_eq!(index.first_overlap([raw(b"/data/x/\xff")]), Some((0, 0)));
    assert_eq!(index.first_overlap([raw(b"/q"), raw(b"/da\xffta")]), None);
    assert_eq!(
        index.first_overlap([raw(b"/q"), raw(b"/data")]),
        Some((0, 1))
    );
}

#[test]
fn a_glob_entry_keeps_its_pattern_and_its_fixed_part_matches_only_itself() -> TestResult {
    let base = Path::new("/nonexistent-base/w[1]");
    for (entry, want) in [
        ("docs/./**/*.md", "/nonexistent-base/w[[]1]/docs/**/*.md"),
        ("*.md", "/nonexistent-base/w[[]1]/*.md"),
        ("/*/x", "/*/x"),
        ("../a?", "/nonexistent-base/a?"),
        // A plain entry is a path as before, even below a directory whose name looks like
        // a pattern: stored as the original would store it, read both ways.
        ("src", "/nonexistent-base/w[1]/src"),
        ("literal:notes/a*b", "/nonexistent-base/w[[]1]/notes/a[*]b"),
    ] {
        assert_eq!(
            normalize_entry_in(base, entry)?,
            Path::new(want),
            "{entry:?}"
        );
    }
    let err = normalize_entry_in(base, "a/*/../b")
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidScope);
    assert!(err.to_string().contains("\"a/*/../b\""), "{err}");
    Ok(())
}

/// A glob, a `literal:` entry and a plain path are read on bytes: a name that is not UTF-8
/// can sit in the fixed part, be matched by a pattern, or follow `literal:`.
#[test]
fn glob_and_literal_entries_work_on_paths_that_are_not_utf8() -> TestResult {
    let raw = |bytes: &[u8]| PathBuf::from(OsStr::from_bytes(bytes));
    let base = Path::new("/nonexistent-base");
    assert_eq!(
        normalize_entry_in(base, raw(b"d\xff/*.md"))?,
        raw(b"/nonexistent-base/d\xff/*.md")
    );
    assert_eq!(
        normalize_entry_in(base, raw(b"literal:caf\xe9*"))?,
        raw(b"/nonexistent-base/caf\xe9[*]")
    );
    assert_eq!(
        normalize_entry_in(base, raw(b"caf\xe9"))?,
        raw(b"/nonexistent-base/caf\xe9")
    );
    assert!(is_pattern(raw(b"/r/\xff*")));
    // A pattern matches a name that is not UTF-8, by `*`, `?` and a negated class alike,
    // and is matched by its fixed part byte for byte.
    let holds = |pattern: &[u8], path: &[u8]| scopes_overlap(&[raw(pattern)], &[raw(path)]);
    assert!(holds(b"/r/*.md", b"/r/caf\xe9.md"));
    assert!(holds(b"/r/caf?.md", b"/r/caf\xe9.md"));
    assert!(holds(b"/r/caf[!e].md", b"/r/caf\xe9.md"));
    assert!(!holds(b"/r/caf[e].md", b"/r/caf\xe9.md"));
    assert!(holds(b"/r/d\xff/*", b"/r/d\xff/x"));
    assert!(!holds(b"/r/d\xfe/*", b"/r/d\xff/x"));
    // `literal:`'s escaped name holds exactly itself.
    assert!(holds(b"/r/caf\xe9[*]", b"/r/caf\xe9*"));
    assert!(!holds(b"/r/caf\xe9[*]", b"/r/caf\xe9x"));
    Ok(())
}

#[test]
fn patterns_overlap_paths_and_patterns_in_both_directions_first_pair_first() {
    let s = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
    let ours = s(&["/r/src", "/r/*.md", "/r/docs/**"]);
    assert_eq!(
        first_overlap(&ours, &s(&["/r/README.md"])),
        Some((Path::new("/r/*.md"), Path::new("/r/README.md")))
    );
    assert_eq!(
        first_overlap(&ours, &s(&["/r/x", "/r/docs/a/b"])),
        Some((Path::new("/r/docs/**"), Path::new("/r/docs/a/b")))
    );
    assert_eq!(
        first_overlap(&s(&["/r/a.rs", "/r/src/x.rs"]), &s(&["/r/src/**/*.rs"])),
        Some((Path::new("/r/src/x.rs"), Path::new("/r/src/**/*.rs")))
    );
    assert_eq!(
        first_overlap(&s(&["/r/src", "/r/*.md"]), &s(&["/r/*.md"])),
        Some((Path::new("/r/*.md"), Path::new("/r/*.md")))
    );
    assert!(!scopes_overlap(&ours, &s(&["/r/a.rs", "/r/tests/*.md"])));
    // Stored entries are also the paths they spell: `w[1]` holds the directory `w[1]`.
    assert!(scopes_overlap(&s(&["/r/w[1]"]), &s(&["/r/w[1]/x"])));
    assert!(scopes_overlap(&s(&["/r/w[1]"]), &s(&["/r/w1"])));
    // `paths_overlap` is the original's rule: no patterns.
    assert!(!paths_overlap("/r/*.md", "/r/README.md"));
}

#[test]
fn templates_follow_the_original() {
    let ctx = [
        ("run", "r1"),
        ("n", "42"),
        ("flag", "True"),
        ("none", "None"),
    ];
    let out = resolved(
        &[
            "static/path",
            "${context.run}/out",
            "${context.missing}/x",
            "a/${context.run}-${context.n}/${context.run}",
            "pre${context.run}post",
            "${env.HOME}/${captured.x}",
            "${context.flag}-${context.none}",
            "${context.}${context.run",
        ],
        ctx,
    );
    assert_eq!(
        out,
        [
            "static/path",
            "r1/out",
            "${context.missing}/x",
            "a/r1-42/r1",
            "prer1post",
            "${env.HOME}/${captured.x}",
            "True-None",
            "${context.}${context.run",
        ]
    );
    assert!(resolved(&[], ctx).is_empty());
}

#[test]
fn templates_are_paths_and_bytes_that_are_not_utf8_are_kept() {
    let template = Path::new(OsStr::from_bytes(b"caf\xe9/${context.run}/\xff"));
    let mut context = HashMap::new();
    context.insert("run".to_owned(), "r1".to_owned());
    assert_eq!(
        resolve_scope(&[template], &context)[0]
            .as_os_str()
            .as_bytes(),
        b"caf\xe9/r1/\xff"
    );
    // A name that is not UTF-8 names no variable: left as written.
    let odd = Path::new(OsStr::from_bytes(b"${context.\xff}"));
    assert_eq!(resolve_scope(&[odd], &context), [odd]);
    // A name given twice takes its last value, as a dict built from the pairs would.
    assert_eq!(resolved(&["${context.a}"], [("a", "1"), ("a", "2")]), ["2"]);
}

/// A chain of distinct symlinks is followed up to the kernel's own limit, 40, and refused
/// beyond it, even without a loop.
#[test]
fn symlink_chains_are_followed_up_to_forty() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = fs::canonicalize(dir.path())?;
    fs::create_dir(root.join("real"))?;
    // link0 -> real, link1 -> link0, ..., link40 -> link39.
    symlink(root.join("real"), root.join("link0"))?;
    for i in 1..=MAX_SYMLINKS {
        symlink(
            root.join(format!("link{}", i - 1)),
            root.join(format!("link{i}")),
        )?;
    }
    let real = format!("{}/real/x", root.to_string_lossy());
    let forty = format!("link{}/x", MAX_SYMLINKS - 1);
    assert_eq!(normalize_path_in(&root, &forty)?, real);
    let forty_one = format!("link{MAX_SYMLINKS}/x");
    let err = normalize_path_in(&root, &forty_one)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidScope);
    assert!(err.to_string().contains("more than 40 symlinks"), "{err}");
    Ok(())
}

/// The original's pattern needs at least one character of name: `${context.}` is never a
/// template, even when the context has an empty key.
#[test]
fn an_empty_variable_name_is_not_a_template() {
    assert_eq!(
        resolved(&["${context.}/${context.a}"], [("", "empty"), ("a", "A")]),
        ["${context.}/A"]
    );
}

#[test]
fn a_replacement_is_not_rescanned() {
    assert_eq!(
        resolved(&["${context.a}"], [("a", "${context.b}"), ("b", "no")]),
        ["${context.b}"]
    );
}

#[test]
fn two_run_directories_give_disjoint_scopes() -> TestResult {
    let base = Path::new("/repo");
    let scope_of = |run: &str| -> Result<Vec<PathBuf>, Error> {
        resolve_scope(&[".loops/runs/${context.run_id}"], [("run_id", run)])
            .iter()
            .map(|p| normalize_path_in(base, p))
            .collect()
    };
    assert!(!scopes_overlap(&scope_of("a")?, &scope_of("b")?));
    assert!(scopes_overlap(&scope_of("a")?, &scope_of("a")?));
    Ok(())
}
