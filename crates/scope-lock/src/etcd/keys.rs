//! Where a project's locks and waiters are in etcd's key space.
//!
//! ```text
//! <prefix>/<project>/locks/<lock name>       a held lock: its record, under its holder's lease
//! <prefix>/<project>/queue/<lease>-<n>       a waiter's ticket: its record, under its lease
//! ```
//!
//! Everything a decision depends on is under `<prefix>/<project>/`, so "nothing changed since
//! I read" is one compare on that range's modification revisions.

use super::config::EtcdConfig;

/// The keys of one project.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    /// `<prefix>/<project>/`.
    project: String,
}

const LOCKS: &str = "locks/";
const QUEUE: &str = "queue/";

impl Keys {
    pub(crate) fn new(config: &EtcdConfig) -> Self {
        Self {
            project: format!("{}/{}/", config.key_prefix(), config.project()),
        }
    }

    /// Every key of the project: what is read, compared and watched.
    pub(crate) fn project(&self) -> &str {
        &self.project
    }

    /// Every lock key of the project: what a waiter's publish compares (see `acquire.rs`).
    pub(crate) fn locks(&self) -> String {
        format!("{}{LOCKS}", self.project)
    }

    /// The key of the lock named `lock_name`.
    pub(crate) fn lock(&self, lock_name: &str) -> String {
        format!("{}{LOCKS}{lock_name}", self.project)
    }

    /// The key of a waiter's ticket: unique to the lease and the waiter's number in it.
    pub(crate) fn ticket(&self, lease: i64, n: u64) -> String {
        format!("{}{QUEUE}{lease:016x}-{n}", self.project)
    }

    /// What a key of the project is.
    pub(crate) fn classify<'k>(&self, key: &'k str) -> KeyKind<'k> {
        let Some(rest) = key.strip_prefix(self.project.as_str()) else {
            return KeyKind::Other;
        };
        if let Some(name) = rest.strip_prefix(LOCKS) {
            KeyKind::Lock(name)
        } else if rest.starts_with(QUEUE) {
            KeyKind::Ticket
        } else {
            KeyKind::Other
        }
    }
}

/// What a key under the project's prefix is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeyKind<'k> {
    /// A lock, with its lock name.
    Lock(&'k str),
    /// A waiter's ticket.
    Ticket,
    /// Nothing of ours: ignored.
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_and_tickets_are_told_apart_and_named() {
        let keys = Keys::new(&EtcdConfig::new(["x"], "proj").with_key_prefix("k"));
        assert_eq!(keys.lock("gen/run-1"), "k/proj/locks/gen/run-1");
        assert!(keys.lock("gen/run-1").starts_with(&keys.locks()));
        assert_eq!(
            keys.classify("k/proj/locks/gen/run-1"),
            KeyKind::Lock("gen/run-1")
        );
        assert_eq!(keys.ticket(255, 3), "k/proj/queue/00000000000000ff-3");
        assert_eq!(keys.classify(&keys.ticket(255, 3)), KeyKind::Ticket);
        assert_eq!(keys.classify("k/proj/other"), KeyKind::Other);
        assert_eq!(keys.classify("k/project/locks/a"), KeyKind::Other);
    }
}
