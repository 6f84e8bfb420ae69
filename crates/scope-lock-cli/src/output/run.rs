//! `run --json`, the one line `run` writes on stderr (stdout is CMD's).

use serde::Serialize;

use super::check::ConflictJson;
use super::json::{JSON_VERSION, JsonPath};
use crate::commands::run::RunOutcome;
use crate::exit::Failure;

/// `run --json`, on stderr.
#[derive(Debug, Serialize)]
pub(crate) struct RunJson {
    version: u32,
    /// `ran` (CMD ran holding the lock), `busy` (held: CMD not run), `timed_out` (waited in
    /// vain: CMD not run) or `failed` (see `message`).
    outcome: &'static str,
    /// The status `scope-lock run` exits with.
    status: u8,
    /// For `ran`: the lock file held while CMD ran (on etcd: its key).
    lock: Option<JsonPath>,
    /// For `ran`: the lock's fencing token (CMD's `SCOPE_LOCK_TOKEN`).
    token: Option<u64>,
    /// For `ran`: whether the lock was lost while CMD ran (on etcd, its lease expired); CMD
    /// was sent SIGTERM and `status` is 76.
    lost: bool,
    /// For `ran`: CMD's exit code, or `null` when a signal killed it.
    exit_code: Option<i32>,
    /// For `ran`: the signal that killed CMD, if one did.
    signal: Option<i32>,
    /// For `busy` and `timed_out`: what held the scope, as `check --json` says it.
    conflict: Option<ConflictJson>,
    /// For `failed`: the message (as printed without --json).
    message: Option<String>,
}

impl RunJson {
    pub(crate) fn new(outcome: &RunOutcome) -> Self {
        use std::os::unix::process::ExitStatusExt as _;
        let mut json = Self::empty("ran", outcome.status);
        if let Some(ran) = &outcome.ran {
            json.lock = Some(JsonPath(ran.location.clone()));
            json.token = Some(ran.token);
            json.lost = ran.lost;
            json.exit_code = ran.status.code();
            json.signal = ran.status.signal();
        }
        if let Some(refused) = &outcome.refused {
            json.outcome = if refused.is_timeout() {
                "timed_out"
            } else {
                "busy"
            };
            json.conflict = refused.conflict().map(ConflictJson::new);
        }
        json
    }

    pub(crate) fn failed(failure: &Failure) -> Self {
        let mut json = Self::empty("failed", failure.status);
        json.message = Some(failure.message.clone());
        json
    }

    fn empty(outcome: &'static str, status: u8) -> Self {
        Self {
            version: JSON_VERSION,
            outcome,
            status,
            lock: None,
            token: None,
            lost: false,
            exit_code: None,
            signal: None,
            conflict: None,
            message: None,
        }
    }
}
