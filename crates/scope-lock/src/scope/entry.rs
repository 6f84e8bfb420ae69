//! A scope entry as a request stores it: a path, a glob (`docs/**/*.md`), or a `literal:` path
//! whose glob characters are its own (`docs/protocol.md`, "Glob entries"). What a pattern
//! matches is [`glob`](crate::glob)'s; this file only decides which part of an entry is a
//! pattern and writes the rest so that it matches only itself.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::path::{current_dir, normalize_path_in};
use crate::error::{Error, ErrorKind};
use crate::glob;

/// The prefix of a scope entry meant as the path it spells, glob characters included
/// (`literal:docs/a*b` is the file `a*b`, not a pattern). It is read as bytes, so it may come
/// before a path that is not UTF-8.
pub const LITERAL_PREFIX: &str = "literal:";

/// Normalises a scope entry as a request stores it: [`normalize_entry_in`] against the current
/// directory.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let here = std::env::current_dir()?;
/// assert_eq!(scope_lock::normalize_entry("docs/./*.md")?, here.join("docs/*.md"));
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// As [`normalize_entry_in`].
pub fn normalize_entry(entry: impl AsRef<Path>) -> Result<PathBuf, Error> {
    normalize_entry_in(&current_dir()?, entry)
}

/// Normalises a scope entry against `base`, as a request stores it in its record:
///
/// - an entry with a pattern component (`*`, `?`, `[…]`, `**`) is a glob: the components before
///   the first pattern are normalised as a path ([`normalize_path_in`]) and written so that
///   they match only themselves (a `*`, `?` or `[` in them as `[*]`, `[?]`, `[[]`), and the
///   pattern components follow as written;
/// - `literal:PATH` is the path PATH, written likewise so that it matches only itself;
/// - any other entry is a path, as [`normalize_path_in`] makes it.
///
/// All of it works on the entry's bytes: a path that is not UTF-8 may be a pattern, carry the
/// `literal:` prefix, or sit below either, and comes out byte for byte.
///
/// ```
/// # fn main() -> Result<(), scope_lock::Error> {
/// use std::path::Path;
/// let base = Path::new("/nonexistent-repo");
/// assert_eq!(scope_lock::normalize_entry_in(base, "src/**/*.rs")?, base.join("src/**/*.rs"));
/// assert_eq!(scope_lock::normalize_entry_in(base, "literal:a*b")?, base.join("a[*]b"));
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// As [`normalize_path_in`], and [`ErrorKind::InvalidScope`] for a `..` after a pattern
/// component, which would climb out of paths nobody can name in advance.
pub fn normalize_entry_in(base: &Path, entry: impl AsRef<Path>) -> Result<PathBuf, Error> {
    let entry = entry.as_ref();
    let bytes = entry.as_os_str().as_bytes();
    if let Some(path) = bytes.strip_prefix(LITERAL_PREFIX.as_bytes()) {
        return Ok(escaped(&normalize_path_in(base, OsStr::from_bytes(path))?));
    }
    let components: Vec<&[u8]> = bytes.split(|&b| b == b'/').collect();
    let Some(first) = components
        .iter()
        .position(|component| glob::is_pattern(component))
    else {
        return normalize_path_in(base, entry);
    };
    let fixed = components[..first].join(&b'/');
    let fixed = if fixed.is_empty() && bytes.starts_with(b"/") {
        b"/".to_vec()
    } else {
        fixed
    };
    let mut out = escaped(&normalize_path_in(base, OsStr::from_bytes(&fixed))?)
        .into_os_string()
        .into_vec();
    for component in &components[first..] {
        match *component {
            b"" | b"." => {}
            b".." => {
                return Err(Error::input(
                    ErrorKind::InvalidScope,
                    format!(
                        "invalid scope entry {entry:?}: `..` after a pattern component; \
                         write the pattern below the directory it is meant for"
                    ),
                ));
            }
            pattern => {
                if !out.ends_with(b"/") {
                    out.push(b'/');
                }
                out.extend_from_slice(pattern);
            }
        }
    }
    Ok(PathBuf::from(OsString::from_vec(out)))
}

/// `path`, written so that read as a pattern it matches only itself.
fn escaped(path: &Path) -> PathBuf {
    PathBuf::from(OsString::from_vec(glob::escape(
        path.as_os_str().as_bytes(),
    )))
}

/// Whether a stored scope entry (a record's) reads as a pattern: it has a component with `*`,
/// `?` or a `[…]` class, or that is `**`. Such an entry is compared as that pattern and as the
/// plain path it spells.
///
/// ```
/// assert!(scope_lock::is_pattern("/repo/docs/*.md"));
/// assert!(!scope_lock::is_pattern("/repo/docs/a[b"));
/// ```
pub fn is_pattern(entry: impl AsRef<Path>) -> bool {
    glob::has_pattern(entry.as_ref().as_os_str().as_bytes())
}
