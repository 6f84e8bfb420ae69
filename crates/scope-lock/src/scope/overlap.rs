//! When two scopes overlap: the original's rule for paths (equal, or one an ancestor of the
//! other, by whole components; `docs/protocol.md` A3), the crate's for entries that read as
//! patterns too, and the index that answers both for one scope against many.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::glob;

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
pub(super) fn first_overlap<'a, 'b>(
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
