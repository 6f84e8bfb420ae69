//! The library's modules depend on each other one way. A test reads `crates/scope-lock/src`
//! and fails on an import cycle: between the crate's top-level modules (`error` ↔ `record` once
//! was one), and between the modules of each directory (`protocol/`'s steps, `sys/`).
//!
//! A module's dependencies are the paths its files name: `crate::x` (and `crate::{x, y}`), or,
//! inside a directory module `d`, `super::x` and `crate::d::x`. A name the crate root re-exports
//! (`crate::LockManager`) counts as the module it comes from. Its unit tests (a trailing
//! `#[cfg(test)]` module) and comments are left out: they may use anything.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::Path;

/// Each module of a directory, with the sibling modules it depends on.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The modules of `dir` (files `x.rs` and directories `x/`, not `lib.rs` or `mod.rs`) and, for
/// each, the siblings it names through any of `prefixes` (`crate::`, or `super::`), a name the
/// crate root re-exports standing for the module of `reexports`.
fn graph(
    dir: &Path,
    prefixes: &[String],
    reexports: &BTreeMap<String, String>,
) -> io::Result<Graph> {
    let mut modules: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let name = match file_name.strip_suffix(".rs") {
            Some("lib" | "mod") => continue,
            Some(stem) => stem,
            None if path.is_dir() => file_name,
            None => continue,
        };
        let texts = modules.entry(name.to_owned()).or_default();
        for file in rust_files(&path)? {
            texts.push(without_tests_and_comments(&fs::read_to_string(file)?));
        }
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    Ok(modules
        .into_iter()
        .map(|(name, texts)| {
            let deps = texts
                .iter()
                .flat_map(|text| prefixes.iter().flat_map(|p| first_segments(text, p)))
                .map(|first| reexports.get(&first).cloned().unwrap_or(first))
                .filter(|dep| *dep != name && names.contains(dep))
                .collect();
            (name, deps)
        })
        .collect())
}

/// `path` itself if it is a file, else every `.rs` file below it.
fn rust_files(path: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in fs::read_dir(path)? {
        files.extend(rust_files(&entry?.path())?);
    }
    Ok(files)
}

/// The text without a trailing `#[cfg(test)]` module (`mod tests`, of any visibility) and
/// without `//` comments.
fn without_tests_and_comments(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let tests_at = lines.iter().enumerate().position(|(i, line)| {
        line.trim() == "#[cfg(test)]"
            && lines[i + 1..]
                .iter()
                .find(|next| !next.trim_start().starts_with("#["))
                .is_some_and(|next| next.contains("mod tests"))
    });
    lines[..tests_at.unwrap_or(lines.len())]
        .iter()
        .map(|line| line.find("//").map_or(*line, |at| &line[..at]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first path segment after each `prefix` in `text`: `x` of `crate::x::y`, and `x`, `y` of
/// `crate::{x::a, y}`.
fn first_segments(text: &str, prefix: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    for (at, _) in text.match_indices(prefix) {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &text[at + prefix.len()..];
        let Some(group) = rest.strip_prefix('{') else {
            found.push(ident(rest));
            continue;
        };
        // The group's items at its own depth.
        let (mut depth, mut start) = (0usize, 0);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    found.push(ident(&group[start..i]));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    found.push(ident(&group[start..i]));
                    start = i + 1;
                }
                _ => {}
            }
        }
    }
    found.retain(|s| !s.is_empty());
    found
}

/// The names `lib.rs` re-exports (`pub use x::{A, B}`, `pub use x::A`), each with its module.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for statement in lib.split(';') {
        let Some(at) = statement.find("pub use ") else {
            continue;
        };
        let path = statement[at + "pub use ".len()..].trim();
        let Some((module, items)) = path.split_once("::") else {
            continue;
        };
        let items = items.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            // `STEPS as PAUSE_STEPS` is known by its new name.
            let name = item.rsplit(" as ").next().unwrap_or(item).trim();
            if !name.is_empty() {
                names.insert(name.to_owned(), module.trim().to_owned());
            }
        }
    }
    names
}

/// A cycle of `graph`, as the modules on it in order, if there is one.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// Every directory module below `dir` (`protocol/`, `sys/`, `sys/linux/`), as its path of
/// module names.
fn directory_modules(dir: &Path, path: &[String]) -> io::Result<Vec<Vec<String>>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            let mut inner = path.to_vec();
            inner.push(entry.file_name().to_string_lossy().into_owned());
            found.extend(directory_modules(&entry.path(), &inner)?);
            found.push(inner);
        }
    }
    Ok(found)
}

/// The first import cycle in the crate whose sources are `src`, naming the directory it is in.
fn first_cycle(src: &Path) -> io::Result<Option<String>> {
    let reexported = reexports(&fs::read_to_string(src.join("lib.rs"))?);
    let top = graph(src, &["crate::".to_owned()], &reexported)?;
    if let Some(found) = cycle(&top) {
        return Ok(Some(format!("crate: {}", found.join(" -> "))));
    }
    for module in directory_modules(src, &[])? {
        let dir = module.iter().fold(src.to_path_buf(), |dir, m| dir.join(m));
        let prefixes = [
            "super::".to_owned(),
            format!("crate::{}::", module.join("::")),
        ];
        if let Some(found) = cycle(&graph(&dir, &prefixes, &BTreeMap::new())?) {
            return Ok(Some(format!(
                "{}: {}",
                module.join("::"),
                found.join(" -> ")
            )));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_librarys_modules_import_each_other_one_way() -> io::Result<()> {
        let src = crate::project_root().join("crates/scope-lock/src");
        assert_eq!(first_cycle(&src)?, None);
        Ok(())
    }

    #[test]
    fn paths_grouped_or_not_and_reexports_name_their_modules() {
        let text = "use crate::error::Error;\nuse crate::{record::R, sys::{self, F}};\n\
                    let x = crate::LockManager::new(); notcrate::skipped";
        let found = first_segments(text, "crate::");
        assert_eq!(found, ["error", "record", "sys", "LockManager"]);
        let lib = "pub use manager::{DEFAULT, LockManager};\npub use fault::{STEPS as PAUSE};";
        let names = reexports(lib);
        assert_eq!(
            names.get("LockManager").map(String::as_str),
            Some("manager")
        );
        assert_eq!(names.get("PAUSE").map(String::as_str), Some("fault"));
    }

    #[test]
    fn a_cycle_is_found_and_named_and_tests_and_comments_do_not_count() -> anyhow::Result<()> {
        let sh = xshell::Shell::new()?;
        let dir = sh.create_temp_dir()?;
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("steps"))?;
        fs::write(
            src.join("lib.rs"),
            "mod a;\nmod b;\nmod steps;\npub use a::Thing;\n",
        )?;
        fs::write(src.join("a.rs"), "use crate::b::Other; // crate::steps\n")?;
        fs::write(
            src.join("b.rs"),
            "#[cfg(test)]\nmod tests {\n    use crate::a::Thing;\n}\n",
        )?;
        fs::write(src.join("steps/mod.rs"), "mod one;\nmod two;\n")?;
        fs::write(src.join("steps/one.rs"), "use super::two::X;\n")?;
        fs::write(src.join("steps/two.rs"), "fn f() {}\n")?;
        assert_eq!(first_cycle(&src)?, None);

        fs::write(src.join("b.rs"), "fn f() -> crate::Thing { todo!() }\n")?;
        assert_eq!(first_cycle(&src)?.as_deref(), Some("crate: a -> b -> a"));
        fs::write(src.join("b.rs"), "fn f() {}\n")?;
        fs::write(src.join("steps/two.rs"), "use crate::steps::{one::Y};\n")?;
        assert_eq!(
            first_cycle(&src)?.as_deref(),
            Some("steps: one -> two -> one")
        );
        Ok(())
    }
}
