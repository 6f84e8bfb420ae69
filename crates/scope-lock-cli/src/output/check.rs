//! `check --json`, and why a scope is not free ([`ConflictJson`]), which `run --json` reports
//! in the same words.

use std::path::{Path, PathBuf};

use scope_lock::{Conflict, ConflictRule};
use serde::Serialize;

use super::json::{JSON_VERSION, JsonPath, RecordJson};

/// `check --json`.
#[derive(Debug, Serialize)]
pub(crate) struct CheckJson {
    version: u32,
    free: bool,
    conflict: Option<ConflictJson>,
    /// The scope checked, each path resolved as the lock files hold them.
    scope: Vec<JsonPath>,
    running_dir: JsonPath,
}

impl CheckJson {
    pub(crate) fn new(running_dir: &Path, conflict: Option<&Conflict>, scope: &[PathBuf]) -> Self {
        Self {
            version: JSON_VERSION,
            scope: JsonPath::all(scope),
            running_dir: JsonPath(running_dir.to_path_buf()),
            free: conflict.is_none(),
            conflict: conflict.map(ConflictJson::new),
        }
    }
}

/// Why a scope is not free.
#[derive(Debug, Serialize)]
pub(crate) struct ConflictJson {
    /// `overlap`, `singleton`, `same_name`, `unreadable` or `waiting`.
    rule: &'static str,
    /// For `overlap`: our path and the holder's path it overlaps.
    ours: Option<String>,
    theirs: Option<String>,
    /// For `unreadable`: why the held file's record cannot be read.
    reason: Option<String>,
    /// For `waiting`: the earlier waiter's place in the queue.
    ticket: Option<u64>,
    /// The blocking lock file (for `waiting`, the waiter's ticket) and its name.
    path: JsonPath,
    name: JsonPath,
    /// The holder's record; `null` for `unreadable`.
    holder: Option<RecordJson>,
    /// On etcd, the host the holder (for `waiting`, the waiter) runs on; `null` locally.
    host: Option<String>,
    /// The one line `check` prints on stderr.
    message: String,
}

impl ConflictJson {
    pub(super) fn new(conflict: &Conflict) -> Self {
        let rule = conflict.rule();
        let (ours, theirs, reason, ticket) = match rule {
            ConflictRule::Overlap { ours, theirs } => {
                (Some(ours.clone()), Some(theirs.clone()), None, None)
            }
            ConflictRule::Unreadable { reason } => (None, None, Some(reason.clone()), None),
            ConflictRule::Waiting { ticket } => (None, None, None, Some(*ticket)),
            _ => (None, None, None, None),
        };
        Self {
            rule: rule.as_str(),
            ours,
            theirs,
            reason,
            ticket,
            path: JsonPath(conflict.lock_path().to_path_buf()),
            name: JsonPath(conflict.lock_name()),
            holder: (conflict.holder())
                .map(|record| RecordJson::with_token(record, conflict.token())),
            host: conflict.host().map(str::to_owned),
            message: conflict.to_string(),
        }
    }
}
