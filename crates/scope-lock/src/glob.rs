//! Glob entries: a scope entry with `*`, `?` or `[…]` in a component is a pattern over the
//! paths below its fixed part, and `**` as a whole component stands for any number of
//! components, none included (docs/protocol.md, "Glob entries").
//!
//! Two entries overlap when some path lies at or below a path each of them names: exactly
//! when a path one of them matches is equal to, inside or above a path the other matches (for
//! two plain paths, one is the other's ancestor-or-self, as the original's rule says). This
//! module decides that for any two entries, plain or not, by walking both at once, component
//! by component, and within a component character by character: a search of the product of
//! the two patterns, which is exact and bounded by the product of their lengths, `**` against
//! `**` included. The one approximation errs towards overlap: two negated classes (`[!a]`,
//! `[!b]`) are taken to share a character.
//!
//! Paths are bytes. A component is read as characters where it is UTF-8; each byte that is not
//! is a character of its own, which no class range or literal character of a pattern names
//! but which `?`, `*` and a negated class match.

/// One character of a path component: a Unicode scalar value, or (above them all) a byte that
/// is not part of valid UTF-8.
type Unit = u32;

/// Where the stand-ins for bytes that are not UTF-8 begin.
const RAW_BYTE: Unit = 0x11_0000;

/// One element of a component's pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// This character only.
    Char(Unit),
    /// `?`: any one character.
    Any,
    /// `*`: any run of characters, none included.
    Star,
    /// `[…]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(Unit, Unit)>,
    },
}

/// One component of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Component {
    /// `**`: any number of components, none included.
    AnyDepth,
    /// A name, as tokens: a plain name is all [`Token::Char`].
    Name(Vec<Token>),
}

/// A scope entry read as a pattern: its components below the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    components: Vec<Component>,
}

/// Whether `component` is a pattern: it has `*` or `?`, or a `[` closed by a `]` with
/// something between them. Anything else is a plain name, brackets included.
pub(crate) fn is_pattern(component: &[u8]) -> bool {
    let mut at = 0;
    while at < component.len() {
        match component[at] {
            b'*' | b'?' => return true,
            b'[' if class_end(component, at).is_some() => return true,
            _ => {}
        }
        at += 1;
    }
    false
}

/// Whether a path (as bytes, `/`-separated) has a component that is a pattern.
pub(crate) fn has_pattern(path: &[u8]) -> bool {
    path.split(|&b| b == b'/').any(is_pattern)
}

/// Writes `name` so that, read as a pattern, it matches exactly itself: each `*`, `?` and `[`
/// in a one-character class. Names without them are unchanged.
pub(crate) fn escape(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    for &byte in name {
        if matches!(byte, b'*' | b'?' | b'[') {
            out.extend_from_slice(&[b'[', byte, b']']);
        } else {
            out.push(byte);
        }
    }
    out
}

/// The index of the `]` that closes the class opened at `open`, if any: a `]` right after
/// `[` or `[!` (or `[^`) belongs to the class.
fn class_end(component: &[u8], open: usize) -> Option<usize> {
    let mut at = open + 1;
    if matches!(component.get(at), Some(b'!' | b'^')) {
        at += 1;
    }
    // The first character is never the end.
    at += 1;
    while at < component.len() {
        if component[at] == b']' {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// The characters of `bytes`, each byte that is not UTF-8 one of its own.
fn units(bytes: &[u8]) -> Vec<Unit> {
    let mut out = Vec::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.extend(chunk.valid().chars().map(Unit::from));
        out.extend(chunk.invalid().iter().map(|&b| RAW_BYTE + Unit::from(b)));
    }
    out
}

impl Entry {
    /// Reads a normalised path (absolute, `/`-separated, no `.` or `..`) as an entry: each
    /// component that [`is_pattern`] is a pattern, `**` is any depth, and every other component
    /// is the plain name it spells.
    pub(crate) fn parse(path: &[u8]) -> Self {
        let components = path
            .split(|&b| b == b'/')
            .filter(|component| !component.is_empty() && *component != b".")
            .map(|component| {
                if component == b"**" {
                    Component::AnyDepth
                } else {
                    Component::Name(tokens(component))
                }
            })
            .collect();
        Self { components }
    }

    /// Reads a normalised path as the plain path it spells, glob characters and all.
    pub(crate) fn literal(path: &[u8]) -> Self {
        let components = path
            .split(|&b| b == b'/')
            .filter(|component| !component.is_empty() && *component != b".")
            .map(|component| {
                Component::Name(units(component).into_iter().map(Token::Char).collect())
            })
            .collect();
        Self { components }
    }

    /// Whether some path lies at or below a match of `self` and at or below a match of
    /// `other`.
    pub(crate) fn overlaps(&self, other: &Entry) -> bool {
        let (a, b) = (&self.components, &other.components);
        search(a.len(), b.len(), |(i, j), next| {
            // One entry matched whole, so far along a path the other can still follow: the
            // other's rest can always be matched by some components (no pattern is empty).
            if i == a.len() || j == b.len() {
                return true;
            }
            if a[i] == Component::AnyDepth {
                next((i + 1, j));
            }
            if b[j] == Component::AnyDepth {
                next((i, j + 1));
            }
            // One component of the path, matched by both sides.
            match (&a[i], &b[j]) {
                (Component::AnyDepth, Component::AnyDepth) => {}
                (Component::AnyDepth, Component::Name(_)) => next((i, j + 1)),
                (Component::Name(_), Component::AnyDepth) => next((i + 1, j)),
                (Component::Name(x), Component::Name(y)) => {
                    if names_intersect(x, y) {
                        next((i + 1, j + 1));
                    }
                }
            }
            false
        })
    }
}

/// A search over pairs of positions `(i, j)` with `i <= a` and `j <= b`, from `(0, 0)`:
/// `step` is given each pair reached once, with a way to reach more, and says whether the
/// pair is the goal. Each pair is visited at most once, so it ends after `(a + 1) * (b + 1)`
/// steps at most.
fn search(
    a: usize,
    b: usize,
    mut step: impl FnMut((usize, usize), &mut dyn FnMut((usize, usize))) -> bool,
) -> bool {
    let width = b + 1;
    let mut seen = vec![false; (a + 1) * width];
    let mut todo = vec![(0, 0)];
    seen[0] = true;
    while let Some(at) = todo.pop() {
        let mut reached = Vec::new();
        if step(at, &mut |pair| reached.push(pair)) {
            return true;
        }
        for (i, j) in reached {
            let index = i * width + j;
            if !seen[index] {
                seen[index] = true;
                todo.push((i, j));
            }
        }
    }
    false
}

/// Whether some name matches both token lists.
fn names_intersect(x: &[Token], y: &[Token]) -> bool {
    search(x.len(), y.len(), |(i, j), next| {
        if i == x.len() && j == y.len() {
            return true;
        }
        if x.get(i) == Some(&Token::Star) {
            next((i + 1, j));
        }
        if y.get(j) == Some(&Token::Star) {
            next((i, j + 1));
        }
        // One character, taken by both: a star takes it and stays.
        if let (Some(s), Some(t)) = (x.get(i), y.get(j))
            && !(s == &Token::Star && t == &Token::Star)
            && share_a_character(s, t)
        {
            let advance =
                |token: &Token, at: usize| if token == &Token::Star { at } else { at + 1 };
            next((advance(s, i), advance(t, j)));
        }
        false
    })
}

/// Whether one character is taken by both tokens.
fn share_a_character(s: &Token, t: &Token) -> bool {
    match (s, t) {
        (Token::Star | Token::Any, _) | (_, Token::Star | Token::Any) => true,
        (Token::Char(c), other) | (other, Token::Char(c)) => takes(other, *c),
        (
            Token::Class {
                negated: false,
                ranges: r,
            },
            Token::Class {
                negated: false,
                ranges: q,
            },
        ) => r
            .iter()
            .any(|&(lo, hi)| q.iter().any(|&(l, h)| lo.max(l) <= hi.min(h))),
        (
            Token::Class {
                negated: false,
                ranges,
            },
            Token::Class {
                negated: true,
                ranges: excluded,
            },
        )
        | (
            Token::Class {
                negated: true,
                ranges: excluded,
            },
            Token::Class {
                negated: false,
                ranges,
            },
        ) => ranges.iter().any(|&range| !covered(range, excluded)),
        // Both negated: together they exclude finitely many of the characters there are.
        (Token::Class { negated: true, .. }, Token::Class { negated: true, .. }) => true,
    }
}

/// Whether `token` takes the character `c`.
fn takes(token: &Token, c: Unit) -> bool {
    match token {
        Token::Star | Token::Any => true,
        Token::Char(d) => *d == c,
        Token::Class { negated, ranges } => {
            ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
        }
    }
}

/// Whether the ranges `by` cover every character of `range`.
fn covered(range: (Unit, Unit), by: &[(Unit, Unit)]) -> bool {
    let mut sorted = by.to_vec();
    sorted.sort_unstable();
    let (mut from, to) = range;
    for (lo, hi) in sorted {
        if lo > from {
            break;
        }
        if hi >= from {
            match hi.checked_add(1) {
                Some(next) => from = next,
                None => return true,
            }
        }
        if from > to {
            return true;
        }
    }
    from > to
}

/// A pattern component's tokens.
fn tokens(component: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < component.len() {
        match component[at] {
            b'*' => {
                // A run of stars is one star.
                if out.last() != Some(&Token::Star) {
                    out.push(Token::Star);
                }
                at += 1;
            }
            b'?' => {
                out.push(Token::Any);
                at += 1;
            }
            b'[' => match class_end(component, at) {
                Some(end) => {
                    out.push(class(&component[at + 1..end]));
                    at = end + 1;
                }
                None => {
                    out.push(Token::Char(Unit::from(b'[')));
                    at += 1;
                }
            },
            _ => {
                // A literal run up to the next special byte, read as characters.
                let end = component[at..]
                    .iter()
                    .position(|b| matches!(b, b'*' | b'?' | b'['))
                    .map_or(component.len(), |n| at + n);
                out.extend(units(&component[at..end]).into_iter().map(Token::Char));
                at = end;
            }
        }
    }
    out
}

/// The class between `[` and `]`: a leading `!` or `^` negates it; `a-z` is a range (its
/// ends in either order), a `-` first or last is itself.
fn class(inside: &[u8]) -> Token {
    let (negated, body) = match inside.first() {
        Some(b'!' | b'^') => (true, &inside[1..]),
        _ => (false, inside),
    };
    let chars = units(body);
    let mut ranges = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let lo = chars[at];
        if at + 2 < chars.len() && chars[at + 1] == Unit::from(b'-') {
            let hi = chars[at + 2];
            ranges.push((lo.min(hi), lo.max(hi)));
            at += 3;
        } else {
            ranges.push((lo, lo));
            at += 1;
        }
    }
    Token::Class { negated, ranges }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn overlap(a: &str, b: &str) -> bool {
        let (x, y) = (Entry::parse(a.as_bytes()), Entry::parse(b.as_bytes()));
        let answer = x.overlaps(&y);
        assert_eq!(answer, y.overlaps(&x), "not symmetric: {a} vs {b}");
        answer
    }

    #[test]
    fn what_is_a_pattern() {
        for pattern in ["*.md", "a?c", "[ab]", "[]]", "[!]]", "x[!a-z]y", "**"] {
            assert!(is_pattern(pattern.as_bytes()), "{pattern}");
        }
        for plain in ["README.md", "a[", "[]", "[!]", "a]b", "", "é"] {
            assert!(!is_pattern(plain.as_bytes()), "{plain}");
        }
        assert!(has_pattern(b"/repo/docs/*.md"));
        assert!(!has_pattern(b"/repo/docs/a[b"));
    }

    #[test]
    fn plain_paths_overlap_as_the_original_says() {
        assert!(overlap("/a/b", "/a/b"));
        assert!(overlap("/a/b", "/a/b/c"));
        assert!(overlap("/", "/x"));
        assert!(!overlap("/a/b", "/a/bc"));
        assert!(!overlap("/repo/src", "/repo/tests"));
    }

    #[test]
    fn a_pattern_overlaps_the_paths_it_matches_and_those_above_and_below_them() {
        assert!(overlap("/repo/*.md", "/repo/README.md"));
        assert!(overlap("/repo/*.md", "/repo"));
        assert!(overlap("/repo/*.md", "/"));
        assert!(overlap("/repo/*.md", "/repo/x.md/inside"));
        assert!(!overlap("/repo/*.md", "/repo/src"));
        assert!(!overlap("/repo/*.md", "/repo/docs/guide.md"));
        assert!(!overlap("/repo/*.md", "/other/README.md"));
        assert!(overlap("/repo/docs/**", "/repo/docs/a/b/c"));
        assert!(overlap("/repo/**/*.rs", "/repo/src/deep/lib.rs"));
        assert!(overlap("/repo/**/*.rs", "/repo/lib.rs"));
        // A plain path holds everything below it, and `**` reaches there.
        assert!(overlap("/repo/**/*.rs", "/repo/src/lib.py"));
        assert!(!overlap("/repo/*/*.rs", "/repo/src/lib.py"));
        assert!(overlap("/repo/a?c", "/repo/abc"));
        assert!(!overlap("/repo/a?c", "/repo/ac"));
        assert!(overlap("/repo/[ab]x", "/repo/bx"));
        assert!(!overlap("/repo/[ab]x", "/repo/cx"));
        assert!(overlap("/repo/[!ab]x", "/repo/cx"));
        assert!(!overlap("/repo/[!ab]x", "/repo/ax"));
        assert!(overlap("/repo/[a-c]", "/repo/b"));
        assert!(overlap("/repo/[c-a]", "/repo/b"));
        // A `-` first or last is itself.
        assert!(overlap("/repo/[a-]", "/repo/-"));
        assert!(overlap("/repo/[-a]", "/repo/-"));
        assert!(!overlap("/repo/[a-]", "/repo/b"));
        assert!(overlap("/repo/é?", "/repo/éü"));
    }

    #[test]
    fn two_patterns_overlap_when_some_name_matches_both() {
        assert!(overlap("/repo/*.md", "/repo/READ*"));
        assert!(!overlap("/repo/*.md", "/repo/*.rs"));
        assert!(overlap("/repo/*/x", "/repo/a/*"));
        assert!(!overlap("/repo/*/x", "/repo/a/y"));
        assert!(overlap("/repo/**", "/repo/**/z"));
        assert!(overlap("/a/**/b/**/c", "/a/**/c/**/b"));
        assert!(!overlap("/a/*/x.rs", "/a/*/x.py"));
        // `/a/x.py/x.rs` is in both.
        assert!(overlap("/a/**/x.rs", "/a/**/x.py"));
        assert!(overlap("/r/[!a]", "/r/[!b]"));
        assert!(!overlap("/r/[!a-z]", "/r/[a-c]"));
        assert!(overlap("/r/[!a-c]", "/r/[a-d]"));
        // The excluded range covers the start of the other's, not all of it.
        assert!(overlap("/r/[!a-c]", "/r/[a-z]"));
        assert!(!overlap("/r/[!a-cd-z]", "/r/[a-z]"));
        assert!(overlap("/r/a*", "/r/*b"));
        assert!(!overlap("/r/a?", "/r/???"));
    }

    #[test]
    fn a_bracket_that_no_bracket_closes_is_itself_in_a_pattern() {
        assert!(overlap("/r/a[b*", "/r/a[bc"));
        assert!(overlap("/r/*[", "/r/x["));
        assert!(!overlap("/r/a[b*", "/r/abc"));
        assert!(!overlap("/r/a[b*", "/r/a[c"));
        assert!(!overlap("/r/*[", "/r/x"));
    }

    #[test]
    fn an_escaped_name_matches_only_itself() {
        let escaped = escape(b"/repo/a*b?[c]");
        assert_eq!(escaped, b"/repo/a[*]b[?][[]c]");
        let escaped = std::str::from_utf8(&escaped).unwrap_or_default();
        assert!(overlap(escaped, escaped));
        assert!(overlap(escaped, "/repo/a*"));
        assert!(!overlap(escaped, "/repo/axbx[c]"));
        assert!(!overlap(escaped, "/repo/a*b"));
        assert_eq!(escape(b"/repo/plain"), b"/repo/plain");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_characters_of_their_own() {
        let raw = Entry::parse(b"/r/\xff\xfe");
        assert!(Entry::parse(b"/r/??").overlaps(&raw));
        assert!(!Entry::parse(b"/r/?").overlaps(&raw));
        assert!(Entry::parse(b"/r/*").overlaps(&raw));
        assert!(!Entry::parse(b"/r/[a-z]*").overlaps(&raw));
        assert!(Entry::parse(b"/r/[!a-z]*").overlaps(&raw));
        // Nor is any of them a character that UTF-8 can spell, not even in the last plane.
        for (byte, spelled) in [(b"/r/\xff", "/r/\u{10FF01}"), (b"/r/\x80", "/r/\u{10FF80}")] {
            let spelled = Entry::literal(spelled.as_bytes());
            assert!(!Entry::literal(byte).overlaps(&spelled), "{spelled:?}");
        }
    }

    // The property: against brute force over every path of a small tree. Names are made of
    // `a`, `b`, `c` and `d`; patterns use only `a`, `b` and `c`, so that `d` stands for every
    // character a pattern does not name (a negated class takes it). Components hold at most
    // two tokens and entries at most two components, so whenever some path is in both, one of
    // at most three components, of names of at most two characters, is: the tree of all of
    // them decides.

    const NAMES: [&str; 20] = [
        "a", "b", "c", "d", "aa", "ab", "ac", "ad", "ba", "bb", "bc", "bd", "ca", "cb", "cc", "cd",
        "da", "db", "dc", "dd",
    ];

    fn token() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "a", "b", "c", "?", "*", "[ab]", "[!a]", "[a-b]", "[!bc]",
        ])
    }

    fn component() -> impl Strategy<Value = String> {
        prop_oneof![
            1 => Just("**".to_owned()),
            6 => prop::collection::vec(token(), 1..=2).prop_map(|tokens| tokens.concat()),
        ]
    }

    fn entry() -> impl Strategy<Value = String> {
        prop::collection::vec(component(), 0..=2)
            .prop_map(|components| format!("/{}", components.join("/")))
    }

    /// Whether the plain path `path` matches `entry` whole, by brute force over its tokens.
    fn matches(entry: &[Component], path: &[&str]) -> bool {
        match (entry.split_first(), path.split_first()) {
            (None, None) => true,
            (Some((Component::AnyDepth, rest)), _) => {
                matches(rest, path) || (!path.is_empty() && matches(entry, &path[1..]))
            }
            (Some((Component::Name(tokens), rest)), Some((name, others))) => {
                name_matches(tokens, &units(name.as_bytes())) && matches(rest, others)
            }
            _ => false,
        }
    }

    fn name_matches(tokens: &[Token], name: &[Unit]) -> bool {
        match tokens.split_first() {
            None => name.is_empty(),
            Some((Token::Star, rest)) => {
                (0..=name.len()).any(|skip| name_matches(rest, &name[skip..]))
            }
            Some((token, rest)) => {
                !name.is_empty() && takes(token, name[0]) && name_matches(rest, &name[1..])
            }
        }
    }

    /// Whether `path` lies at or below a match of `entry`.
    fn covers(entry: &Entry, path: &[&str]) -> bool {
        (0..=path.len()).any(|len| matches(&entry.components, &path[..len]))
    }

    fn tree() -> Vec<Vec<&'static str>> {
        let mut paths: Vec<Vec<&str>> = vec![Vec::new()];
        let mut level = vec![Vec::new()];
        for _ in 0..3 {
            level = level
                .iter()
                .flat_map(|path: &Vec<&str>| {
                    NAMES.iter().map(move |name| {
                        let mut longer = path.clone();
                        longer.push(name);
                        longer
                    })
                })
                .collect();
            paths.extend(level.iter().cloned());
        }
        paths
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: if std::env::var("SCOPE_LOCK_SOAK").is_ok_and(|v| v == "1") { 25_600 } else { 256 },
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn overlap_agrees_with_every_path_of_a_tree(a in entry(), b in entry()) {
            let (x, y) = (Entry::parse(a.as_bytes()), Entry::parse(b.as_bytes()));
            let witness = TREE.with(|tree| {
                tree.iter().find(|path| covers(&x, path) && covers(&y, path)).cloned()
            });
            // Never disjoint when a path is in both; and, here, never overlapping when none is.
            prop_assert_eq!(x.overlaps(&y), witness.is_some(), "{} vs {}: {:?}", a, b, witness);
        }
    }

    thread_local! {
        static TREE: Vec<Vec<&'static str>> = tree();
    }
}
