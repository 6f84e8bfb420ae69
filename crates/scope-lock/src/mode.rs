//! Read and write locks: whether a lock may share its scope with others of its kind.
//!
//! The rule is a pure function of two modes, so that every backend decides alike: shared
//! locks (readers) overlap each other freely; an exclusive lock (a writer) conflicts with any
//! lock whose scope overlaps its own, shared or exclusive. Singletons and lock names are
//! unaffected by the mode.

use std::fmt;

/// How a lock holds its scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum LockMode {
    /// Nobody else may hold an overlapping scope: the original's only mode, and the default.
    #[default]
    Exclusive,
    /// Other shared locks may hold overlapping scopes at the same time; an exclusive one may
    /// not (docs/protocol.md, "Shared scopes").
    Shared,
}

impl LockMode {
    /// Whether a lock in this mode and one in `other` may not both hold overlapping scopes:
    /// false only when both are shared.
    pub fn excludes(self, other: LockMode) -> bool {
        !(self == LockMode::Shared && other == LockMode::Shared)
    }

    /// `"exclusive"` or `"shared"`, as `list` and `--json` show it.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Exclusive => "exclusive",
            LockMode::Shared => "shared",
        }
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_two_shared_locks_may_overlap() {
        use LockMode::{Exclusive, Shared};
        assert!(!Shared.excludes(Shared));
        assert!(Shared.excludes(Exclusive));
        assert!(Exclusive.excludes(Shared));
        assert!(Exclusive.excludes(Exclusive));
        assert_eq!(LockMode::default(), Exclusive);
    }

    /// `list`, `--json` and the Python binding show these names as they are.
    #[test]
    fn each_mode_has_one_name() {
        assert_eq!(LockMode::Exclusive.as_str(), "exclusive");
        assert_eq!(LockMode::Shared.as_str(), "shared");
        assert_eq!(LockMode::Shared.to_string(), "shared");
    }
}
