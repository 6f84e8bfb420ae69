//! Scopes: path normalisation, overlap, and `${context.<var>}` templates, with the original's
//! rules (`docs/protocol.md`, A3), and glob entries ([`glob`](crate::glob), "Glob entries").
//!
//! An entry as stored (in a request's record or anyone's lock file) is read as the plain path
//! it spells, and, when a component looks like a pattern, also as that pattern: two entries
//! overlap when any reading of one overlaps any reading of the other. Reading both ways never
//! misses an overlap, whoever wrote the entry and whatever they meant by it; a request makes
//! what it means exact by how it writes the entry ([`normalize_entry_in`]).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, ErrorKind};
use crate::glob;

/// How many symlinks one normalisation may follow; the kernel's own limit is 40.
const MAX_SYMLINKS: usize = 40;

/// Normalises a scope entry like Python's non-strict `Path(p).resolve()`: absolute against the
/// current directory, `.` dropped, `..` collapsed, symlinks of the existing prefix followed, a
/// missing tail appended as written. Byte for byte: a path that is not UTF-8 stays as it is.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let here = std::env::current_dir()?;
/// assert_eq!(scope_lock::normalize_path("nonexistent/./b/../c")?, here.join("nonexistent/c"));
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`ErrorKind::InvalidScope`] for an entry with a NUL byte or a symlink loop;
/// [`ErrorKind::Io`] when the current directory cannot be read. The message quotes the entry.
pub fn normalize_path(path: impl AsRef<Path>) -> Result<PathBuf, Error> {
    let cwd = std::env::current_dir()
        .map_err(|err| Error::io("cannot read the current directory", Path::new("."), err))?;
    normalize_path_in(&cwd, path)
}

/// [`normalize_path`] against `base` instead of the current directory; `base` is taken as
/// already resolved, as the current directory always is.
///
/// ```
/// # fn main() -> Result<(), scope_lock::Error> {
/// use std::path::Path;
/// let base = Path::new("/nonexistent-repo");
/// assert_eq!(scope_lock::normalize_path_in(base, "src/../docs/")?, Path::new("/nonexistent-repo/docs"));
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// As [`normalize_path`].
pub fn normalize_path_in(base: &Path, path: impl AsRef<Path>) -> Result<PathBuf, Error> {
    let path = path.as_ref();
    let invalid = |why: &str| {
        Error::input(
            ErrorKind::InvalidScope,
            format!("invalid scope entry {path:?}: {why}"),
        )
    };
    if path.as_os_str().as_bytes().contains(&0) {
        return Err(invalid("contains a NUL byte"));
    }
    let mut resolver = Resolver {
        followed: 0,
        seen: HashMap::new(),
    };
    resolver
        .join(base.to_path_buf(), path)
        .map_err(|problem| invalid(&problem))
}

/// Python's `posixpath._joinrealpath`, non-strict, as a small state machine: each component is
/// appended; a symlink is replaced by its resolved target; anything that cannot be `lstat`ed is
/// kept as written.
struct Resolver {
    followed: usize,
    /// Symlinks seen so far: `None` while being resolved (seeing it again is a loop).
    seen: HashMap<PathBuf, Option<PathBuf>>,
}

impl Resolver {
    fn join(&mut self, mut path: PathBuf, rest: &Path) -> Result<PathBuf, String> {
        for component in rest.components() {
            match component {
                Component::RootDir => path = PathBuf::from("/"),
                Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => {
                    path.pop();
                }
                Component::Normal(name) => path = self.step(path, name)?,
            }
        }
        Ok(path)
    }

    fn step(&mut self, path: PathBuf, name: &OsStr) -> Result<PathBuf, String> {
        let candidate = path.join(name);
        let is_symlink = fs::symlink_metadata(&candidate)
            .map(|meta| meta.file_type().is_symlink())
            .unwrap_or(false);
        if !is_symlink {
            return Ok(candidate);
        }
        match self.seen.get(&candidate) {
            Some(Some(resolved)) => return Ok(resolved.clone()),
            Some(None) => {
                return Err(format!("symlink loop at {}", candidate.display()));
            }
            None => {}
        }
        let Ok(target) = fs::read_link(&candidate) else {
            return Ok(candidate);
        };
        self.followed += 1;
        if self.followed > MAX_SYMLINKS {
            return Err(format!(
                "more than {MAX_SYMLINKS} symlinks to follow at {}",
                candidate.display()
            ));
        }
        self.seen.insert(candidate.clone(), None);
        let resolved = self.join(path, &target)?;
        self.seen.insert(candidate, Some(resolved.clone()));
        Ok(resolved)
    }
}

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
    let cwd = std::env::current_dir()
        .map_err(|err| Error::io("cannot read the current directory", Path::new("."), err))?;
    normalize_entry_in(&cwd, entry)
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

/// Whether two normalised paths overlap: equal, or one an ancestor of the other, component by
/// component (`/a/b` overlaps `/a/b/c` but not `/a/bc`), byte for byte. No globbing: `*` is a
/// literal, as in the original; [`scopes_overlap`] is the crate's rule, patterns included.
///
/// ```
/// use scope_lock::paths_overlap;
/// assert!(paths_overlap("/repo/src", "/repo/src/lib.rs"));
/// assert!(!paths_overlap("/repo/src", "/repo/src-old"));
/// ```
pub fn paths_overlap(a: impl AsRef<Path>, b: impl AsRef<Path>) -> bool {
    let (a, b) = (a.as_ref(), b.as_ref());
    a.starts_with(b) || b.starts_with(a)
}

/// The first pair `(ours, theirs)` that overlaps, if any: first in `ours`, then in `theirs`.
pub(crate) fn first_overlap<'a, 'b>(
    ours: &'a [PathBuf],
    theirs: &'b [impl AsRef<Path>],
) -> Option<(&'a Path, &'b Path)> {
    let (i, j) = ScopeIndex::new(ours).first_overlap(theirs.iter().map(AsRef::as_ref))?;
    Some((ours[i].as_path(), theirs[j].as_ref()))
}

/// Whether any entry of one scope overlaps any entry of the other, by the crate's rule: as
/// paths, and where an entry has a pattern component, as that pattern too
/// (docs/protocol.md, "Glob entries").
///
/// ```
/// use scope_lock::scopes_overlap;
/// assert!(scopes_overlap(&["/repo/docs", "/repo/src"], &["/repo/src/main.rs"]));
/// assert!(scopes_overlap(&["/repo/*.md"], &["/repo/README.md"]));
/// assert!(!scopes_overlap(&["/repo/docs"], &["/repo/src"]));
/// ```
pub fn scopes_overlap(a: &[impl AsRef<Path>], b: &[impl AsRef<Path>]) -> bool {
    let ours: Vec<PathBuf> = a.iter().map(|p| p.as_ref().to_path_buf()).collect();
    first_overlap(&ours, b).is_some()
}

/// One scope indexed for overlap tests against many others: built once per attempt, it
/// checks each path of another scope in time proportional to that path's depth instead of
/// comparing it with every path of ours.
///
/// Two paths overlap when one's components begin with all of the other's ([`paths_overlap`]).
/// So a path of theirs overlaps one of ours exactly when (a) one of its own ancestors-or-self
/// *is* a path of ours, or (b) it is an ancestor-or-self of a path of ours. The index maps
/// every path of ours, for (a), and every ancestor-or-self of every path of ours, for (b), to
/// the first path of ours that answers it, so that the pair found is the one the pairwise
/// comparison finds first.
///
/// Paths are keyed by the bytes of their components (`Path::components`, see
/// [`for_each_prefix`]), so `/a//b/` and `/a/b` are one path, as they are to [`paths_overlap`],
/// and paths that are not UTF-8 compare byte for byte.
///
/// Entries that read as patterns too are compared pairwise, as patterns ([`glob::Entry`]),
/// on top of the index: a pattern of ours against each path of theirs, and a pattern of
/// theirs against each entry of ours.
pub(crate) struct ScopeIndex<'a> {
    ours: &'a [PathBuf],
    /// Each path of ours → the first index that has it.
    entries: HashMap<Vec<u8>, usize>,
    /// Every ancestor-or-self of a path of ours (the empty path, which is an ancestor of every
    /// path, included) → the first index at or below it.
    covered: HashMap<Vec<u8>, usize>,
    /// Our entries that read as patterns, read so, in order.
    patterns: Vec<(usize, glob::Entry)>,
}

impl<'a> ScopeIndex<'a> {
    pub(crate) fn new(ours: &'a [PathBuf]) -> Self {
        let mut entries = HashMap::with_capacity(ours.len());
        let mut covered = HashMap::new();
        let mut spelling = Vec::new();
        let mut patterns = Vec::new();
        for (index, path) in ours.iter().enumerate() {
            for_each_prefix(path, &mut spelling, |prefix| {
                covered.entry(prefix.to_vec()).or_insert(index);
            });
            entries.entry(spelling.clone()).or_insert(index);
            let bytes = path.as_os_str().as_bytes();
            if glob::has_pattern(bytes) {
                patterns.push((index, glob::Entry::parse(bytes)));
            }
        }
        Self {
            ours,
            entries,
            covered,
            patterns,
        }
    }

    /// Our paths, in order.
    pub(crate) fn paths(&self) -> &'a [PathBuf] {
        self.ours
    }

    /// The indices `(ours, theirs)` of the first pair that overlaps, first in ours and then
    /// in theirs.
    pub(crate) fn first_overlap<'t>(
        &self,
        theirs: impl IntoIterator<Item = &'t Path>,
    ) -> Option<(usize, usize)> {
        let mut best: Option<(usize, usize)> = None;
        let mut spelling = Vec::new();
        for (j, path) in theirs.into_iter().enumerate() {
            let by_pattern = self.first_pattern_overlap(path, best.map(|(b, _)| b));
            let mut first: Option<usize> = None;
            let mut consider = |i: usize| first = Some(first.map_or(i, |f| f.min(i)));
            for_each_prefix(path, &mut spelling, |prefix| {
                if let Some(&i) = self.entries.get(prefix) {
                    consider(i);
                }
            });
            if let Some(&i) = self.covered.get(spelling.as_slice()) {
                consider(i);
            }
            if let Some(i) = by_pattern {
                consider(i);
            }
            if let Some(i) = first
                && best.is_none_or(|(b, _)| i < b)
            {
                best = Some((i, j));
                if i == 0 {
                    break;
                }
            }
        }
        best
    }
}

impl ScopeIndex<'_> {
    /// The first of our entries before `before` (all, if `None`) that overlaps `theirs` where
    /// one of the two is read as a pattern.
    fn first_pattern_overlap(&self, theirs: &Path, before: Option<usize>) -> Option<usize> {
        let bytes = theirs.as_os_str().as_bytes();
        let their_pattern = glob::has_pattern(bytes).then(|| glob::Entry::parse(bytes));
        if self.patterns.is_empty() && their_pattern.is_none() {
            return None;
        }
        let earlier = |i: usize| before.is_none_or(|b| i < b);
        let their_path = glob::Entry::literal(bytes);
        let by_our_patterns = self.patterns.iter().find(|(i, ours)| {
            earlier(*i)
                && (ours.overlaps(&their_path)
                    || their_pattern.as_ref().is_some_and(|p| ours.overlaps(p)))
        });
        let by_their_pattern = their_pattern.as_ref().and_then(|pattern| {
            self.ours
                .iter()
                .enumerate()
                .take_while(|(i, _)| earlier(*i))
                .find(|(_, ours)| {
                    pattern.overlaps(&glob::Entry::literal(ours.as_os_str().as_bytes()))
                })
                .map(|(i, _)| i)
        });
        match (by_our_patterns.map(|(i, _)| *i), by_their_pattern) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Spells `path` into `spelling` one component at a time, each as `/` followed by its bytes
/// (the root's bytes being `/` too), calling `each` with the empty spelling and then after
/// every component: with the spelling of every ancestor-or-self, in order. Leaves the whole
/// spelling in `spelling`.
///
/// The spelling is only ever compared with other spellings, so all it needs is to be one to
/// one: no component is empty or holds a `/`, and only the first can be the root. So `/a/b` is
/// `///a/b` and `a/b` is `/a/b`.
fn for_each_prefix(path: &Path, spelling: &mut Vec<u8>, mut each: impl FnMut(&[u8])) {
    spelling.clear();
    each(spelling);
    for component in path.components() {
        spelling.push(b'/');
        spelling.extend_from_slice(component.as_os_str().as_bytes());
        each(spelling);
    }
}

/// Replaces every `${context.<var>}` in each entry with the context's value for `var`, in one
/// pass, as the original does. A variable missing from the context is left as written, as is
/// any other namespace (`${env.X}`, `${captured.x}`). Replacements are not scanned again.
///
/// `context` is any collection of `(name, value)` string pairs: a `HashMap`, a `BTreeMap`, a
/// slice of pairs; a name given twice takes its last value. The original inserts
/// `str(value)`, so a caller whose values are not strings renders them as Python's `str()`
/// does (`True`, `None`, `42`) to get the original's paths. Entries are paths and are worked
/// on byte for byte: a part that is not UTF-8 is kept as it is (only a variable's *name*
/// must be UTF-8 to match).
///
/// ```
/// use std::collections::HashMap;
/// use std::path::PathBuf;
///
/// let context = HashMap::from([("run_id", "r-7")]);
/// let scope = scope_lock::resolve_scope(&[".loops/runs/${context.run_id}", "${env.HOME}"], &context);
/// assert_eq!(scope, [PathBuf::from(".loops/runs/r-7"), PathBuf::from("${env.HOME}")]);
/// ```
pub fn resolve_scope<T, K, V>(
    templates: &[T],
    context: impl IntoIterator<Item = (K, V)>,
) -> Vec<PathBuf>
where
    T: AsRef<Path>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let context: HashMap<String, V> = context
        .into_iter()
        .map(|(name, value)| (name.as_ref().to_owned(), value))
        .collect();
    templates
        .iter()
        .map(|template| {
            let bytes = template.as_ref().as_os_str().as_bytes();
            PathBuf::from(OsString::from_vec(substitute(bytes, &context)))
        })
        .collect()
}

const OPEN: &[u8] = b"${context.";

/// The regex `\$\{context\.([^}]+)\}`, replaced left to right without rescanning replacements.
fn substitute(template: &[u8], context: &HashMap<String, impl AsRef<str>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.windows(OPEN.len()).position(|window| window == OPEN) {
        let (before, found) = rest.split_at(start);
        out.extend_from_slice(before);
        // `found` begins with `OPEN`.
        let after_open = &found[OPEN.len()..];
        rest = match after_open.iter().position(|&byte| byte == b'}') {
            Some(end) if end > 0 => {
                let value = std::str::from_utf8(&after_open[..end])
                    .ok()
                    .and_then(|name| context.get(name));
                match value {
                    Some(value) => out.extend_from_slice(value.as_ref().as_bytes()),
                    None => out.extend_from_slice(&found[..OPEN.len() + end + 1]),
                }
                &after_open[end + 1..]
            }
            // `${context.}` or no closing brace: not a template here; move past the `$`.
            _ => {
                out.push(b'$');
                &found[1..]
            }
        };
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

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
        assert_eq!(
            normalize_path_in(base, "src")?,
            Path::new("/nonexistent-base/w/src")
        );
        assert_eq!(
            normalize_path_in(base, ".")?,
            Path::new("/nonexistent-base/w")
        );
        assert_eq!(
            normalize_path_in(base, "")?,
            Path::new("/nonexistent-base/w")
        );
        assert_eq!(
            normalize_path_in(base, "./a//b/./c/")?,
            Path::new("/nonexistent-base/w/a/b/c")
        );
        assert_eq!(
            normalize_path_in(base, "a/../../x")?,
            Path::new("/nonexistent-base/x")
        );
        assert_eq!(normalize_path_in(base, "/../../etc/..")?, Path::new("/"));
        assert_eq!(
            normalize_path_in(base, "*.md")?,
            Path::new("/nonexistent-base/w/*.md")
        );
        Ok(())
    }

    #[test]
    fn symlinks_of_the_existing_prefix_are_followed() -> TestResult {
        let dir = tempfile::tempdir()?;
        let root = fs::canonicalize(dir.path())?;
        fs::create_dir_all(root.join("real/inner"))?;
        symlink(root.join("real"), root.join("link"))?;
        symlink("real/inner", root.join("rel"))?;
        let root_str = root.to_string_lossy().into_owned();
        assert_eq!(
            normalize_path_in(&root, "link/inner/missing/x")?,
            format!("{root_str}/real/inner/missing/x")
        );
        assert_eq!(
            normalize_path_in(&root, "rel")?,
            format!("{root_str}/real/inner")
        );
        // `..` after a symlink climbs from its target, as realpath does.
        assert_eq!(
            normalize_path_in(&root, "rel/..")?,
            format!("{root_str}/real")
        );
        assert_eq!(
            normalize_path_in(&root, "missing/../real")?,
            format!("{root_str}/real")
        );
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
            "", "/", "//", "/a", "/a/", "/a//", "/a/.", "/a/./b", "/a/b", "/a//b/", "/a/b/c",
            "/a/bc", "/ab", "/a/..", "/a/../b", "a", "a/", "./a", ".", "./", "a/b", "..", "../a",
            "/b", "/b/a", "/x/y/z", "/é", "/é/ü",
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
        assert_eq!(
            normalize_entry_in(base, "docs/./**/*.md")?,
            Path::new("/nonexistent-base/w[[]1]/docs/**/*.md")
        );
        assert_eq!(
            normalize_entry_in(base, "*.md")?,
            Path::new("/nonexistent-base/w[[]1]/*.md")
        );
        assert_eq!(normalize_entry_in(base, "/*/x")?, Path::new("/*/x"));
        assert_eq!(
            normalize_entry_in(base, "../a?")?,
            Path::new("/nonexistent-base/a?")
        );
        // A plain entry is a path as before, even below a directory whose name looks like
        // a pattern: stored as the original would store it, read both ways.
        assert_eq!(
            normalize_entry_in(base, "src")?,
            Path::new("/nonexistent-base/w[1]/src")
        );
        assert_eq!(
            normalize_entry_in(base, "literal:notes/a*b")?,
            Path::new("/nonexistent-base/w[[]1]/notes/a[*]b")
        );
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
}
