//! `list --json` and `clean --json`: the live locks, the waiters and the problems, on a loops
//! directory ([`ListingJson`]) or on etcd ([`EtcdListingJson`]).

use std::ffi::OsString;
use std::path::Path;

use scope_lock::etcd::{EtcdListing, EtcdLock, EtcdLockManager};
use scope_lock::{LiveLock, Liveness, LockListing, ProblemKind, ScanProblem, Waiter, lock_name_of};
use serde::Serialize;

use super::json::{JSON_VERSION, JsonPath, RecordJson, command_json};

/// `list --json` and `clean --json`.
#[derive(Debug, Serialize)]
pub(crate) struct ListingJson {
    version: u32,
    running_dir: JsonPath,
    locks: Vec<LockJson>,
    /// Live waiters, first in line first.
    waiters: Vec<WaiterJson>,
    problems: Vec<ProblemJson>,
    reclaimed: Vec<JsonPath>,
    /// Publications left by acquirers killed half-way, removed.
    orphans: Vec<JsonPath>,
    /// Tickets left in the waiting queue by waiters killed while waiting, removed.
    stale_tickets: Vec<JsonPath>,
    /// `clean --dry-run`: nothing was changed; `reclaimed`, `orphans` and `stale_tickets` name
    /// what would have been removed, problems of kind `invalid_stale` what would have been
    /// moved aside.
    dry_run: bool,
}

impl ListingJson {
    pub(crate) fn new(running_dir: &Path, listing: &LockListing) -> Self {
        Self {
            version: JSON_VERSION,
            running_dir: JsonPath(running_dir.to_path_buf()),
            locks: (listing.locks().iter())
                .zip(listing.holder_commands())
                .map(|(lock, command)| LockJson::with_command(lock, command))
                .collect(),
            waiters: listing.waiters().iter().map(WaiterJson::new).collect(),
            problems: listing.problems().iter().map(ProblemJson::new).collect(),
            reclaimed: JsonPath::all(listing.reclaimed()),
            orphans: JsonPath::all(listing.orphans()),
            stale_tickets: JsonPath::all(listing.stale_tickets()),
            dry_run: listing.is_dry_run(),
        }
    }
}

/// A live lock.
#[derive(Debug, Serialize)]
pub(crate) struct LockJson {
    name: JsonPath,
    path: JsonPath,
    /// `"flock"` or `"pid"`.
    liveness: Liveness,
    /// The holder's command line, where it can be read; else `null`.
    command: Option<Vec<JsonPath>>,
    #[serde(flatten)]
    record: RecordJson,
}

impl LockJson {
    pub(super) fn new(lock: &LiveLock) -> Self {
        Self::with_command(lock, lock.holder_command())
    }

    /// With its holder's command line already read (see `LockListing::holder_commands`).
    fn with_command(lock: &LiveLock, command: Option<Vec<OsString>>) -> Self {
        Self {
            // From the path, not `lock_name()`, which is text for people.
            name: JsonPath(lock_name_of(lock.path())),
            path: JsonPath(lock.path().to_path_buf()),
            liveness: lock.liveness(),
            command: command_json(command),
            record: RecordJson::new(lock.record()),
        }
    }
}

/// A live waiter.
#[derive(Debug, Serialize)]
pub(crate) struct WaiterJson {
    /// The name of the lock it waits to take; `null` when its ticket does not say (an older
    /// scope-lock's).
    name: Option<String>,
    /// Its place in the queue: among waiters whose scopes overlap, the lowest goes first.
    ticket: u64,
    /// Its ticket file.
    path: JsonPath,
    /// The waiter's command line, where it can be read; else `null`.
    command: Option<Vec<JsonPath>>,
    /// The record of the lock it waits for (`started_at`: since when it waits).
    #[serde(flatten)]
    record: RecordJson,
}

impl WaiterJson {
    fn new(waiter: &Waiter) -> Self {
        Self {
            name: waiter.lock_name().map(str::to_owned),
            ticket: waiter.ticket(),
            path: JsonPath(waiter.path().to_path_buf()),
            command: command_json(waiter.command()),
            record: RecordJson::new(waiter.record()),
        }
    }
}

/// `list --json` and `clean --json` on etcd.
#[derive(Debug, Serialize)]
pub(crate) struct EtcdListingJson {
    version: u32,
    etcd: Vec<String>,
    project: String,
    /// This clone's project root, which the scopes are relative to.
    root: JsonPath,
    /// The etcd revision the listing was read at.
    revision: i64,
    locks: Vec<EtcdLockJson>,
    /// The waiters, first in line first.
    waiters: Vec<EtcdLockJson>,
}

impl EtcdListingJson {
    pub(crate) fn new(manager: &EtcdLockManager, listing: &EtcdListing) -> Self {
        Self {
            version: JSON_VERSION,
            etcd: manager.config().endpoints().to_vec(),
            project: manager.config().project().to_owned(),
            root: JsonPath(manager.root().to_path_buf()),
            revision: listing.revision(),
            locks: listing.locks().iter().map(EtcdLockJson::held).collect(),
            waiters: listing
                .waiters()
                .iter()
                .map(EtcdLockJson::waiting)
                .collect(),
        }
    }
}

/// A lock or waiter on etcd: its key, host and lease, then the record. The key's create
/// revision is a lock's fencing token (`token`), and a waiter's place in line (`ticket`).
#[derive(Debug, Serialize)]
pub(crate) struct EtcdLockJson {
    name: String,
    key: String,
    host: String,
    lease: i64,
    /// A waiter's place in line (lowest first); `null` for a lock.
    ticket: Option<u64>,
    #[serde(flatten)]
    record: RecordJson,
}

impl EtcdLockJson {
    pub(super) fn held(lock: &EtcdLock) -> Self {
        Self::new(lock, None, Some(lock.token()))
    }

    fn waiting(waiter: &EtcdLock) -> Self {
        Self::new(waiter, Some(waiter.token()), None)
    }

    fn new(lock: &EtcdLock, ticket: Option<u64>, token: Option<u64>) -> Self {
        Self {
            ticket,
            name: lock.lock_name().to_owned(),
            key: lock.key().to_owned(),
            host: lock.host().to_owned(),
            lease: lock.lease(),
            record: RecordJson::with_token(lock.record(), token),
        }
    }
}

/// A `*.lock` file that is not a readable live lock.
#[derive(Debug, Serialize)]
pub(crate) struct ProblemJson {
    path: JsonPath,
    /// `not_regular`, `unreadable`, `held_invalid`, `invalid_maybe_live`, `invalid`,
    /// `invalid_stale` (`clean --dry-run` only) or `reclaim_failed`.
    kind: &'static str,
    /// Whether it blocks acquires (a live lock of unknown scope).
    blocks: bool,
    /// Why, in words; for `not_regular`, what it is instead.
    reason: String,
    /// For `invalid`: where the file was moved aside to, if it was.
    moved_to: Option<JsonPath>,
    /// For `invalid_maybe_live`: the live pid read from it, if one could be read.
    pid: Option<u32>,
    /// The whole line `list` prints.
    message: String,
}

impl ProblemJson {
    fn new(problem: &ScanProblem) -> Self {
        let kind = problem.kind();
        let (moved_to, pid) = match kind {
            ProblemKind::MovedAside { moved_to, .. } => (moved_to.clone(), None),
            ProblemKind::BlocksMaybeLive { pid, .. } => (None, *pid),
            _ => (None, None),
        };
        Self {
            path: JsonPath(problem.path().to_path_buf()),
            kind: kind.as_str(),
            blocks: problem.blocks(),
            reason: kind.reason().to_owned(),
            moved_to: moved_to.map(JsonPath),
            pid,
            message: problem.to_string(),
        }
    }
}
