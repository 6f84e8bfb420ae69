//! Every file of this repository that a record (`issues/`) or a document (`docs/`, the READMEs)
//! names in backticks exists, so that prose cannot go on pointing at code that has moved.
//! `verify` fails on a stale one, and so does a test here.
//!
//! A name in backticks is taken for a path of this repository when it is made of path
//! characters only and either ends in `/` or in a source or document file's extension (`.rs`,
//! `.py`, `.md`, `.toml`, …) with its first directory one that the repository has somewhere
//! (`crates/`, `src/`, `sys/`, …), or is a bare Rust or Python file name. It exists when some
//! file or directory of the repository ends with it, component by component: `protocol/wait.rs`
//! and `crates/scope-lock/src/protocol/wait.rs` both name the same file. A path written inside
//! a parenthesis that begins with "then", before any "now", is where the code was, not where
//! it is, and is left alone: "(then in `src/protocol.rs`, now `src/protocol/wait.rs`)" checks
//! only the second.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::Path;

/// A name in backticks that is no file or directory of the repository.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct StalePath {
    /// The document, relative to the repository's root.
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) path: String,
}

impl std::fmt::Display for StalePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: `{}` names no file or directory of the repository: write where it is now \
             (where it was goes in \"(then `…`)\")",
            self.file, self.line, self.path
        )
    }
}

/// Extensions of the files a document would name: source, build and document files. Not
/// what the tools write (`report.json`) or what a lock directory holds (`x.lock`).
const EXTENSIONS: &[&str] = &[
    "rs", "py", "pyi", "md", "toml", "sh", "svg", "txt", "yml", "yaml", "cfg",
];

/// The repository's files and directories, as paths relative to `root` with `/` between
/// components. Build output (`target/`), git's own directory and other hidden directories
/// (virtual environments, caches) are left out; `.ci/` is the repository's.
fn repository_paths(root: &Path) -> io::Result<BTreeSet<String>> {
    fn walk(root: &Path, dir: &Path, found: &mut BTreeSet<String>) -> io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if dir == root && name == "target" || name.starts_with('.') && name != ".ci" {
                continue;
            }
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .map_err(io::Error::other)?
                .to_string_lossy()
                .replace('\\', "/");
            found.insert(relative);
            if entry.file_type()?.is_dir() {
                walk(root, &path, found)?;
            }
        }
        Ok(())
    }
    let mut found = BTreeSet::new();
    walk(root, root, &mut found)?;
    Ok(found)
}

/// The documents checked: every Markdown file below `issues/` and `docs/`, and the READMEs.
fn documents(paths: &BTreeSet<String>) -> Vec<&str> {
    paths
        .iter()
        .map(String::as_str)
        .filter(|path| {
            path.ends_with(".md")
                && (path.starts_with("issues/")
                    || path.starts_with("docs/")
                    || path.ends_with("README.md"))
        })
        .collect()
}

/// Whether `name`, found in backticks, is meant as a path of this repository, whose
/// directories' names are `dirs`.
fn is_repository_path(name: &str, dirs: &BTreeSet<&str>) -> bool {
    let path_chars = |c: char| c.is_ascii_alphanumeric() || "_.-/".contains(c);
    if name.is_empty() || !name.chars().all(path_chars) || name.starts_with('/') {
        return false;
    }
    let name = relative_part(name);
    let last = name.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let extension = last
        .rsplit_once('.')
        .filter(|(stem, _)| !stem.is_empty())
        .map(|(_, ext)| ext);
    match name.split_once('/') {
        None => matches!(extension, Some("rs" | "py")),
        Some((first, _)) => {
            dirs.contains(first)
                && (name.ends_with('/') || extension.is_some_and(|ext| EXTENSIONS.contains(&ext)))
        }
    }
}

/// `name` without a leading `./` or `../`s: a link relative to the document.
fn relative_part(name: &str) -> &str {
    let mut name = name;
    while let Some(rest) = name.strip_prefix("./").or_else(|| name.strip_prefix("../")) {
        name = rest;
    }
    name
}

/// Whether some path of `paths` is `name` or ends with it, component by component.
fn exists(name: &str, paths: &BTreeSet<String>) -> bool {
    let name = relative_part(name).trim_end_matches('/');
    let suffix = format!("/{name}");
    paths.contains(name) || paths.iter().any(|path| path.ends_with(&suffix))
}

/// Whether the text before a name, `before`, puts it inside a parenthesis that begins with
/// "then", before any "now": a past location ("(then in `a.rs`, now `b/a.rs`)").
fn in_the_past(before: &str) -> bool {
    let Some(open) = before.rfind('(') else {
        return false;
    };
    let inside = &before[open + 1..];
    inside.starts_with("then ")
        && !inside.contains(')')
        && !inside.contains("\n\n")
        && !inside
            .split(|c: char| !c.is_alphanumeric())
            .any(|word| word == "now")
}

/// The names in backticks in `text` (the document `file`) that are meant as paths of the
/// repository and are not among `paths`.
fn stale_in(file: &str, text: &str, paths: &BTreeSet<String>) -> Vec<StalePath> {
    let dirs: BTreeSet<&str> = paths
        .iter()
        .flat_map(|path| path.split('/').rev().skip(1))
        .collect();
    let mut stale = Vec::new();
    let mut in_fence = false;
    let mut offset = 0;
    for (index, line) in text.lines().enumerate() {
        let start = offset;
        offset += line.len() + 1;
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        // Backticked spans: the odd-numbered pieces between backticks.
        let mut at = start;
        for (i, piece) in line.split('`').enumerate() {
            if i % 2 == 1
                && is_repository_path(piece, &dirs)
                && !exists(piece, paths)
                && !in_the_past(&text[..at - 1])
            {
                stale.push(StalePath {
                    file: file.to_owned(),
                    line: index + 1,
                    path: piece.to_owned(),
                });
            }
            at += piece.len() + 1;
        }
    }
    stale
}

/// Every path that a record or a document of the repository at `root` names and that does
/// not exist there.
pub(crate) fn stale_paths(root: &Path) -> io::Result<Vec<StalePath>> {
    let paths = repository_paths(root)?;
    let mut stale = Vec::new();
    for document in documents(&paths) {
        let text = fs::read_to_string(root.join(document))?;
        stale.extend(stale_in(document, &text, &paths));
    }
    Ok(stale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository() -> BTreeSet<String> {
        [
            "crates",
            "crates/lib",
            "crates/lib/src",
            "crates/lib/src/protocol",
            "crates/lib/src/protocol/wait.rs",
            "crates/lib/src/lib.rs",
            "docs",
            "docs/protocol.md",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    }

    fn stale(text: &str) -> Vec<String> {
        stale_in("issues/X.md", text, &repository())
            .into_iter()
            .map(|it| format!("{}: {}", it.line, it.path))
            .collect()
    }

    #[test]
    fn every_path_the_records_and_docs_name_exists() -> io::Result<()> {
        let stale = stale_paths(&crate::project_root())?;
        let lines: Vec<String> = stale.iter().map(ToString::to_string).collect();
        assert!(stale.is_empty(), "stale paths:\n{}", lines.join("\n"));
        Ok(())
    }

    #[test]
    fn a_path_that_moved_is_named_with_its_line() {
        let text = "The loop (`crates/lib/src/protocol.rs`, step 6) and\n\
                    `Family` in `protocol.rs`, then `src/queue.rs` and `src/old/` and `docs/api.md`.";
        assert_eq!(
            stale(text),
            [
                "1: crates/lib/src/protocol.rs",
                "2: protocol.rs",
                "2: src/queue.rs",
                "2: src/old/",
                "2: docs/api.md",
            ]
        );
    }

    #[test]
    fn paths_as_they_are_now_pass_in_full_or_by_their_end() {
        let text = "`crates/lib/src/protocol/wait.rs`, `protocol/wait.rs`, `wait.rs`, `src/`,\n\
                    `crates/lib/src/protocol/`, `../../docs/protocol.md` and `lib.rs`.";
        assert_eq!(stale(text), Vec::<String>::new());
    }

    #[test]
    fn what_is_not_a_path_of_this_repository_is_left_alone() {
        let text = "`.running/.queue/`, `target/verify/report.json`, `/proc/locks`, `x.lock`,\n\
                    `report.md`, `docs/api`, `scripts/little_loops/fsm/concurrency.py`, \
                    `src/**/*.rs`, `<name>.lock`, `https://x.org/a.rs`, `scope_lock::testing`\n\
                    ```text\nsrc/gone.rs `src/gone.rs`\n```\n";
        assert_eq!(stale(text), Vec::<String>::new());
    }

    #[test]
    fn a_past_location_is_written_after_then_in_a_parenthesis() {
        let text = "The wait (then `crates/lib/src/protocol.rs`, step 6; now\n\
                    `protocol/gone.rs`) and (then in `queue.rs`) but not (now `queue.rs`).";
        assert_eq!(stale(text), ["2: protocol/gone.rs", "2: queue.rs"]);
    }
}
