//! Step 2 on etcd: the project's keys read at one revision, as the local scan and queue read
//! them, so that the local decision ([`crate::protocol::decide`]) runs on them unchanged.

use std::collections::HashSet;
use std::path::PathBuf;

use etcd_client::{Client, GetOptions, KeyValue};

use super::keys::{KeyKind, Keys};
use super::retry::retrying;
use super::root::Root;
use super::value::Value;
use crate::conflict::Remote;
use crate::error::Error;
use crate::listing::{LiveLock, Liveness, LockListing, ProblemKind, ScanProblem};
use crate::protocol::{Kinship, Queue, Queued};
use crate::record::LockRecord;
use crate::sys::FileId;

/// What the project held at one revision.
#[derive(Debug)]
pub(crate) struct State {
    /// The revision read at: a decision publishes only if nothing changed after it.
    pub(crate) revision: i64,
    /// The locks, rebased onto our root (for the decision and its messages).
    pub(crate) listing: LockListing,
    /// The waiters' tickets, by create revision.
    pub(crate) queue: Queue,
    /// The keys on our own lease: "this process" (see [`LeaseKin`]).
    pub(crate) ours: HashSet<FileId>,
    /// Every lock and ticket as recorded (scopes relative to the root), for listings.
    pub(crate) held: Vec<super::EtcdLock>,
    pub(crate) waiting: Vec<super::EtcdLock>,
}

/// Reads every key of the project at the current revision.
pub(crate) async fn read(
    client: &Client,
    keys: &Keys,
    root: &Root,
    own_lease: Option<i64>,
    request_timeout: std::time::Duration,
) -> Result<State, Error> {
    let what = || format!("cannot read the locks under {:?} from etcd", keys.project());
    let answer = retrying(request_timeout, what(), || {
        let mut kv = client.kv_client();
        async move {
            kv.get(keys.project(), Some(GetOptions::new().with_prefix()))
                .await
        }
    })
    .await?;
    let revision = answer.header().map_or(0, |header| header.revision());
    Ok(State::new(keys, root, own_lease, revision, answer.kvs()))
}

impl State {
    /// The project as `kvs` (every key under it, read at `revision`) shows it.
    pub(crate) fn new(
        keys: &Keys,
        root: &Root,
        own_lease: Option<i64>,
        revision: i64,
        kvs: &[KeyValue],
    ) -> Self {
        let mut state = Self {
            revision,
            listing: LockListing::default(),
            queue: Queue::default(),
            ours: HashSet::new(),
            held: Vec::new(),
            waiting: Vec::new(),
        };
        for kv in kvs {
            state.add(keys, root, own_lease, kv);
        }
        state.queue.tickets.sort_by_key(|ticket| ticket.number);
        state.waiting.sort_by_key(|ticket| ticket.token);
        state
    }

    /// This state less `key`, seen deleted after it was read. Still the state at
    /// `revision` for everything else: a decision that finds the scope free in it holds for
    /// whatever was deleted since too (a deleted key only ever frees), and the publish
    /// compare refuses it if anything was created or changed.
    pub(crate) fn without(mut self, key: &str) -> Self {
        let gone = |path: &PathBuf| path.as_os_str() == key;
        self.listing.locks.retain(|lock| !gone(&lock.path));
        self.listing.problems.retain(|problem| !gone(&problem.path));
        self.queue.tickets.retain(|ticket| !gone(&ticket.path));
        self.held.retain(|lock| lock.key != key);
        self.waiting.retain(|lock| lock.key != key);
        self
    }

    fn add(&mut self, keys: &Keys, root: &Root, own_lease: Option<i64>, kv: &KeyValue) {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        // `None` for a ticket.
        let lock_name = match keys.classify(&key) {
            KeyKind::Lock(name) => Some(name.to_owned()),
            KeyKind::Ticket => None,
            KeyKind::Other => return,
        };
        let create_revision = u64::try_from(kv.create_revision()).unwrap_or(0);
        // Create revisions are unique to a key's creation: the key's identity for the
        // decision's "whose is it" questions.
        let id = FileId::new(0, create_revision);
        if own_lease.is_some_and(|lease| lease == kv.lease()) {
            self.ours.insert(id);
        }
        let value = Value::from_json(kv.value());
        let rebased = value
            .as_ref()
            .map_err(ToString::to_string)
            .and_then(|value| {
                rebase(root, &value.record).ok_or_else(|| {
                    format!(
                        "its scope {:?} is not relative to the project root",
                        value.record.scope()
                    )
                })
            });
        let path = PathBuf::from(&key);
        match (&lock_name, rebased) {
            (Some(name), Ok(record)) => {
                self.listing.locks.push(LiveLock {
                    path,
                    lock_name: name.clone(),
                    record,
                    liveness: Liveness::Flock,
                    id,
                });
            }
            (None, Ok(record)) => self.queue.tickets.push(Queued {
                number: create_revision,
                path,
                record,
                lock_name: None,
                id,
            }),
            // A lock nobody can read is held, of unknown scope: it blocks every request, as
            // locally; a ticket nobody can read is skipped (it costs fairness, not exclusion).
            (Some(_), Err(reason)) => self.listing.problems.push(ScanProblem {
                path,
                kind: ProblemKind::BlocksHeldInvalid { reason },
            }),
            (None, Err(_)) => {}
        }
        if let Ok(value) = value {
            let is_lock = lock_name.is_some();
            let lock = super::EtcdLock {
                lock_name: lock_name.unwrap_or_else(|| value.record.loop_name().to_owned()),
                key,
                token: create_revision,
                host: value.host,
                lease: value.lease,
                record: value.record,
            };
            if is_lock {
                self.held.push(lock);
            } else {
                self.waiting.push(lock);
            }
        }
    }
}

impl State {
    /// The host and name of the lock or waiter at `key`, for a conflict's message.
    pub(crate) fn remote_at(&self, key: &std::path::Path) -> Option<Remote> {
        let at = |lock: &&super::EtcdLock| std::path::Path::new(&lock.key) == key;
        let remote = |lock: &super::EtcdLock, token| Remote {
            host: lock.host.clone(),
            name: lock.lock_name.clone(),
            token,
        };
        if let Some(lock) = self.held.iter().find(at) {
            return Some(remote(lock, Some(lock.token)));
        }
        self.waiting
            .iter()
            .find(at)
            .map(|waiter| remote(waiter, None))
    }
}

/// A holder's record with its scope rebased onto our root; `None` when it cannot be.
fn rebase(root: &Root, record: &LockRecord) -> Option<LockRecord> {
    let scope = record
        .scope()
        .iter()
        .map(|entry| root.rebase(entry))
        .collect::<Option<Vec<String>>>()?;
    Some(record.with_scope(scope))
}

/// Who a key's holder is to us on etcd: this process when the key is on our lease, never an
/// ancestor. Process ancestry means nothing across machines (a pid names a process on one
/// host), so the local carve-out for nested loops has no counterpart: a nested loop that asks
/// for part of its parent's scope is refused, or waits, like anyone else.
#[derive(Debug)]
pub(crate) struct LeaseKin<'a> {
    pub(crate) ours: &'a HashSet<FileId>,
}

impl Kinship for LeaseKin<'_> {
    fn is_ancestor(&mut self, _record: &LockRecord, _file: FileId) -> bool {
        false
    }

    fn is_this_process(&mut self, _record: &LockRecord, file: FileId) -> bool {
        self.ours.contains(&file)
    }

    fn contains(&mut self, record: &LockRecord, file: FileId) -> bool {
        self.is_this_process(record, file)
    }
}
