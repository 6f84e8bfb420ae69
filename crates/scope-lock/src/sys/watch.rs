//! What a waiter watches for, on every platform (the watch itself is the platform's
//! `DirWatch`).

/// Which names in a watched directory matter to a waiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    /// Lock files (`*.lock`, not dot files): their release or their holder's death.
    LockFiles,
    /// Every name that is not a dot file (the ticket directory).
    All,
}

impl Interest {
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    pub(super) fn wants(self, name: &[u8]) -> bool {
        !name.starts_with(b".") && (self == Interest::All || name.ends_with(b".lock"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_ignore_dot_files_and_lock_file_waiters_ignore_other_names() {
        for (interest, name, wanted) in [
            (Interest::LockFiles, "a.lock", true),
            (Interest::LockFiles, "a.log", false),
            (Interest::LockFiles, ".acquire.lock", false),
            (Interest::All, "a.lock", true),
            (Interest::All, "1700000000-42", true),
            (Interest::All, ".hidden", false),
            (Interest::All, ".acquire.lock", false),
        ] {
            assert_eq!(
                interest.wants(name.as_bytes()),
                wanted,
                "{interest:?} {name}"
            );
        }
    }
}
