//! Records made by hand (behind `test-support`): what the tests, and the regression suite's
//! port of the original, write into lock files themselves.

use std::path::PathBuf;

use super::{LivenessKey, LockRecord};
use crate::mode::LockMode;
use crate::sys::ProcessIdentity;

/// Records made by hand, for tests and the regression suite's port of the original, which must
/// write the files other processes (or the original) would. Not part of the API otherwise: a
/// caller gets records from a [`ScopeGuard`](crate::ScopeGuard) or a scan.
impl LockRecord {
    /// A record in the original's shape (no `liveness` key): `scope` should already be
    /// normalised absolute paths. Unchecked: the `pid` may be one `from_json` refuses, to
    /// write files that a reader must refuse.
    pub fn new(
        loop_name: impl Into<String>,
        scope: Vec<String>,
        pid: u32,
        started_at: impl Into<String>,
    ) -> Self {
        Self {
            loop_name: loop_name.into(),
            paths: scope.iter().map(PathBuf::from).collect(),
            scope,
            pid,
            started_at: started_at.into(),
            singleton: false,
            liveness: None,
            identity: None,
            mode: LockMode::Exclusive,
            token: None,
        }
    }

    /// Sets the mode (written as our `mode` key when shared).
    #[must_use]
    pub fn with_mode(mut self, mode: LockMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the singleton flag.
    #[must_use]
    pub fn with_singleton(mut self, singleton: bool) -> Self {
        self.singleton = singleton;
        self
    }

    /// Marks the record as one whose liveness is its file's flock (what this crate writes).
    #[must_use]
    pub fn with_flock_liveness(mut self) -> Self {
        self.liveness = Some(LivenessKey::Flock);
        self
    }

    /// Sets the fencing token (written only with flock liveness).
    #[must_use]
    pub fn with_token(self, token: u64) -> Self {
        self.fenced(token)
    }

    /// Sets the writer's pid namespace and start time (written only with flock liveness).
    #[must_use]
    pub fn with_identity(mut self, pid_namespace: u64, pid_start_ticks: u64) -> Self {
        self.identity = Some(ProcessIdentity {
            pid_namespace,
            start_ticks: pid_start_ticks,
        });
        self
    }
}
