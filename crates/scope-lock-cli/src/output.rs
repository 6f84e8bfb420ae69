//! What the commands print: the one-line description of a holder, the `list` table, and the
//! JSON documents (their shape is documented in docs/cli.md, "JSON output", and snapshot-tested;
//! change it only by adding keys).
//!
//! File names are bytes, not text. The JSON documents write every path and lock name as the
//! lock files do ([`JsonPath`]), so any name gives valid JSON that reads back byte for byte;
//! text for people shows a byte that is not UTF-8 as U+FFFD.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use scope_lock::etcd::{EtcdListing, EtcdLock, EtcdLockManager};
use scope_lock::{
    Conflict, ConflictRule, LiveLock, Liveness, LockListing, LockRecord, ProblemKind, ScanProblem,
    Waiter, lock_name_of,
};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use crate::commands::run::RunOutcome;
use crate::exit::{self, Failure};
use crate::holders::{Holder, Sent};

/// A path (or a lock's name) in a JSON document, written as the lock files write paths
/// ([`scope_lock::path_to_json`]: Python's `json.dump` of `os.fsdecode(path)`). serde_json
/// refuses a path that is not UTF-8, which cut the document off in the middle of a key; here
/// each such byte is the escape `\udcXX`, which Python's `json` reads back as the same name.
#[derive(Debug)]
pub(crate) struct JsonPath(PathBuf);

impl JsonPath {
    fn all(paths: &[PathBuf]) -> Vec<Self> {
        paths.iter().cloned().map(Self).collect()
    }
}

impl Serialize for JsonPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A JSON string is all `path_to_json` writes, so the check cannot fail.
        RawValue::from_string(scope_lock::path_to_json(&self.0))
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

/// A record's scope entries, each pattern marked as one.
pub(crate) fn scope_text(record: &LockRecord) -> String {
    record
        .scope_paths()
        .iter()
        .map(|entry| {
            let text = entry.to_string_lossy();
            if scope_lock::is_pattern(entry) {
                format!("{text} (pattern)")
            } else {
                text.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `loop L, instance I, pid P, since T`.
pub(crate) fn describe_holder(name: &str, record: &LockRecord) -> String {
    format!(
        "loop `{}`, instance `{name}`, pid {}, since {}",
        record.loop_name(),
        record.pid(),
        record.started_at()
    )
}

/// Writes a JSON document and a newline to stdout; a closed pipe (`| head`) is not worth a
/// failure, as for [`print_text`].
pub(crate) fn print_json(value: &impl Serialize) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    let written = serde_json::to_writer_pretty(&mut out, value)
        .map_err(io::Error::from)
        .and_then(|()| writeln!(out));
    stdout_outcome(written)
}

/// Writes a JSON document on one line to stderr (for `run`, whose stdout is CMD's). Nothing is
/// left to report a failure to.
pub(crate) fn print_json_line_to_stderr(value: &impl Serialize) {
    let mut err = io::stderr().lock();
    let _ = serde_json::to_writer(&mut err, value)
        .map_err(io::Error::from)
        .and_then(|()| writeln!(err));
}

/// Paths as one line for people: a byte that is not UTF-8 shows as U+FFFD
/// (the JSON output has the bytes).
pub(crate) fn paths_text(entries: &[PathBuf]) -> String {
    let texts: Vec<_> = entries
        .iter()
        .map(|entry| entry.to_string_lossy())
        .collect();
    texts.join(" ")
}

/// Writes text to stdout; a closed pipe (`| head`) is not worth a failure.
pub(crate) fn print_text(text: &str) -> Result<(), Failure> {
    stdout_outcome(io::stdout().lock().write_all(text.as_bytes()))
}

/// What a write to stdout comes to: a reader that stopped early (`| head`) took what it
/// wanted, so only other errors fail the command.
fn stdout_outcome(written: io::Result<()>) -> Result<(), Failure> {
    match written {
        Err(err) if err.kind() != io::ErrorKind::BrokenPipe => Err(Failure::new(
            exit::FAILURE,
            format!("cannot write to stdout: {}", exit::os_reason(&err)),
        )),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

/// The version of every JSON document the commands print (their `"version"` key). Within a
/// version keys are only added: none is renamed or removed, nor changes its type or meaning
/// (docs/cli.md, "JSON output"). A change that breaks that raises it.
pub(crate) const JSON_VERSION: u32 = 1;

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
            locks: listing.locks().iter().map(LockJson::new).collect(),
            waiters: listing.waiters().iter().map(WaiterJson::new).collect(),
            problems: listing.problems().iter().map(ProblemJson::new).collect(),
            reclaimed: JsonPath::all(listing.reclaimed()),
            orphans: JsonPath::all(listing.orphans()),
            stale_tickets: JsonPath::all(listing.stale_tickets()),
            dry_run: listing.is_dry_run(),
        }
    }
}

/// The record's keys, as the lock file has them.
#[derive(Debug, Serialize)]
pub(crate) struct RecordJson {
    loop_name: String,
    scope: Vec<JsonPath>,
    pid: u32,
    started_at: String,
    singleton: bool,
    /// `"exclusive"` or `"shared"`; a file without our `mode` key is exclusive.
    mode: &'static str,
    /// The entries of `scope` that read as patterns.
    patterns: Vec<JsonPath>,
    /// The fencing token; `null` in a record the original wrote.
    token: Option<u64>,
}

impl RecordJson {
    fn new(record: &LockRecord) -> Self {
        Self::with_token(record, record.token())
    }

    /// The record with the token kept outside it (on etcd, the key's create revision).
    fn with_token(record: &LockRecord, token: Option<u64>) -> Self {
        Self {
            loop_name: record.loop_name().to_owned(),
            scope: JsonPath::all(record.scope_paths()),
            pid: record.pid(),
            started_at: record.started_at().to_owned(),
            singleton: record.singleton(),
            mode: record.mode().as_str(),
            patterns: record
                .scope_paths()
                .iter()
                .filter(|path| scope_lock::is_pattern(path))
                .cloned()
                .map(JsonPath)
                .collect(),
            token,
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

/// A command line: each argument bytes, written as paths are.
fn command_json(command: Option<Vec<std::ffi::OsString>>) -> Option<Vec<JsonPath>> {
    command.map(|args| args.into_iter().map(|arg| JsonPath(arg.into())).collect())
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

impl LockJson {
    fn new(lock: &LiveLock) -> Self {
        Self {
            // From the path, not `lock_name()`, which is text for people.
            name: JsonPath(lock_name_of(lock.path())),
            path: JsonPath(lock.path().to_path_buf()),
            liveness: lock.liveness(),
            command: command_json(lock.holder_command()),
            record: RecordJson::new(lock.record()),
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
    fn held(lock: &EtcdLock) -> Self {
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
    fn new(conflict: &Conflict) -> Self {
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
