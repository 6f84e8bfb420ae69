//! `break --json`: the lock, its holders and each signal sent, in one document at the end.

use std::path::Path;

use scope_lock::LiveLock;
use scope_lock::etcd::EtcdLock;
use serde::Serialize;

use super::json::{JSON_VERSION, JsonPath};
use super::listing::{EtcdLockJson, LockJson};
use crate::exit::Failure;
use crate::holders::{Holder, Sent};

/// `break --json`.
#[derive(Debug, Serialize)]
pub(crate) struct BreakJson {
    version: u32,
    /// The name given.
    name: String,
    /// The lock file it names.
    path: JsonPath,
    /// `shown` (the lock and its holders), `freed` (--kill: the holders ended and the lock is
    /// free), `reclaimed` (its holder was gone), `moved_aside` (--force) or `failed` (see
    /// `message`; the status is not 0).
    pub(crate) outcome: &'static str,
    /// The live lock, as `list --json` shows it; `null` when none was found.
    lock: Option<ShownLock>,
    /// The processes that provably hold it.
    holders: Vec<BreakHolderJson>,
    /// With --kill: each signal, in order.
    signals: Vec<SignalJson>,
    /// For `moved_aside`: where the file went.
    moved_to: Option<JsonPath>,
    /// For `failed`: the message printed without --json.
    message: Option<String>,
    /// The lines `break` prints without --json.
    pub(crate) lines: Vec<String>,
}

/// The lock `break` shows, as `list --json` shows it on its backend.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ShownLock {
    File(LockJson),
    Etcd(EtcdLockJson),
}

/// A process that holds the lock.
#[derive(Debug, Serialize)]
struct BreakHolderJson {
    pid: u32,
    /// Its name, from `/proc/<pid>/status`.
    name: String,
    /// Why it will not be signalled; `null` when it may be.
    refusal: Option<String>,
}

/// A signal `break --kill` sent, or meant to.
#[derive(Debug, Serialize)]
struct SignalJson {
    pid: u32,
    /// `SIGTERM` or `SIGKILL`.
    signal: &'static str,
    /// `sent`, `gone` (it let the lock go first) or `refused` (see `reason`).
    result: &'static str,
    reason: Option<String>,
}

impl BreakJson {
    /// On etcd: the lock found under `name` (its key is the `path`).
    pub(crate) fn etcd_lock(&mut self, lock: &EtcdLock) {
        self.lock = Some(ShownLock::Etcd(EtcdLockJson::held(lock)));
    }

    pub(crate) fn new(name: &str, path: &Path) -> Self {
        Self {
            version: JSON_VERSION,
            name: name.to_owned(),
            path: JsonPath(path.to_path_buf()),
            outcome: "shown",
            lock: None,
            holders: Vec::new(),
            signals: Vec::new(),
            moved_to: None,
            message: None,
            lines: Vec::new(),
        }
    }

    pub(crate) fn lock(&mut self, lock: &LiveLock) {
        self.lock = Some(ShownLock::File(LockJson::new(lock)));
    }

    pub(crate) fn holder(&mut self, holder: &Holder) {
        self.holders.push(BreakHolderJson {
            pid: holder.pid,
            name: holder.name.clone(),
            refusal: holder.refusal.clone(),
        });
    }

    pub(crate) fn signal(&mut self, pid: u32, signal: &'static str, sent: &Sent) {
        let (result, reason) = match sent {
            Sent::Signalled => ("sent", None),
            Sent::Gone => ("gone", None),
            Sent::Refused(why) => ("refused", Some(why.clone())),
        };
        self.signals.push(SignalJson {
            pid,
            signal,
            result,
            reason,
        });
    }

    pub(crate) fn moved_aside(&mut self, to: &Path) {
        self.outcome = "moved_aside";
        self.moved_to = Some(JsonPath(to.to_path_buf()));
    }

    pub(crate) fn failed(&mut self, failure: &Failure) {
        self.outcome = "failed";
        self.message = Some(failure.message.clone());
    }
}
