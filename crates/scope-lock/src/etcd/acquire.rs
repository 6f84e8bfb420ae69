//! Steps 3 to 6 on etcd: decide on what was read, publish with one transaction that holds
//! only if nothing the decision depends on changed since (and reads the project when it does
//! not), and wait on a ticket for the one key in the way to be deleted.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{
    Compare, CompareOp, EventType, GetOptions, KeyValue, PutOptions, Txn, TxnOp, TxnOpResponse,
    TxnResponse, WatchOptions,
};
use tokio::sync::watch;

use super::EtcdGuard;
use super::shared::Shared;
use super::state::{LeaseKin, State};
use super::value::Value;
use crate::conflict::{AcquireError, Conflict, ConflictRule};
use crate::error::{Error, ErrorKind};
use crate::protocol::{Question, decide, normalize_scope_in};
use crate::record::LockRecord;
use crate::request::{LockRequest, json_that_fits};
use crate::scope::ScopeIndex;
use crate::wait::{WaitObserver, Waiting};

/// How many transactions in a row may lose the race to others before an attempt gives up
/// with [`ErrorKind::Busy`]: each lost race means someone else's change got in, so this many
/// means a project far busier than locks are for.
const MAX_LOST_RACES: u32 = 1000;

/// A request made ready for any number of attempts.
#[derive(Debug)]
pub(crate) struct Prepared<'a> {
    request: &'a LockRequest,
    /// The scope normalised against our root: what the decision compares.
    scope: Vec<PathBuf>,
    /// The record to publish: its scope relative to the root.
    record: LockRecord,
    key: String,
    /// What the decision looks at: for [`Question::Scope`], not the key the request would take.
    question: Question,
}

impl<'a> Prepared<'a> {
    /// `request` made ready to acquire, or to be asked `question` about.
    pub(crate) fn new(
        shared: &Shared,
        request: &'a LockRequest,
        question: Question,
    ) -> Result<Self, Error> {
        match question {
            Question::Request => request.validate()?,
            Question::Scope => request.validate_scope()?,
        }
        let scope = normalize_scope_in(request, shared.root.path())?;
        let mut relative = Vec::with_capacity(scope.len());
        let mut outside = Vec::new();
        for (entry, absolute) in request.effective_scope().iter().zip(&scope) {
            match shared.root.relative(absolute) {
                Some(rel) => relative.push(rel),
                None => outside.push(format!("{entry:?} ({absolute})")),
            }
        }
        if !outside.is_empty() {
            return Err(Error::input(
                ErrorKind::InvalidScope,
                format!(
                    "scope entries outside the project root {}: {}; on etcd a scope names \
                     paths of the project, the same in every clone",
                    shared.root.path().display(),
                    outside.join(", ")
                ),
            ));
        }
        let record = LockRecord::for_new_lease_lock(
            request.loop_name(),
            relative,
            request.is_singleton(),
            request.mode(),
        );
        json_that_fits(&record, &format!("{:?}", request.lock_name()))?;
        Ok(Self {
            request,
            scope: scope.into_iter().map(PathBuf::from).collect(),
            record,
            key: shared.keys.lock(request.lock_name()),
            question,
        })
    }

    /// What blocks us in `state`, with our ticket's number if we have one; the conflict names
    /// the host of whoever is in the way.
    pub(crate) fn decide(&self, state: &State, ticket: Option<u64>) -> Option<Conflict> {
        let conflict = decide(
            &state.listing,
            &state.queue,
            self.request,
            &ScopeIndex::new(&self.scope),
            (self.question == Question::Request).then_some(Path::new(&self.key)),
            ticket,
            &mut LeaseKin { ours: &state.ours },
        )?;
        let remote = state.remote_at(conflict.lock_path());
        Some(conflict.with_remote(remote))
    }
}

/// A waiter's place in the queue: its key and create revision.
#[derive(Debug)]
struct Ticket {
    key: String,
    revision: i64,
}

/// Acquires `request`: one decision if `deadline` is `None`, else waits for the scope until
/// then.
pub(crate) async fn acquire<O: WaitObserver + ?Sized>(
    shared: &Arc<Shared>,
    request: &LockRequest,
    deadline: Option<Instant>,
    observer: &mut O,
) -> Result<EtcdGuard, AcquireError> {
    let prepared = Prepared::new(shared, request, Question::Request)?;
    let session = shared.session().await?;
    let lease = session.lease();
    let mut lost = session.lost();
    let mut ticket: Option<Ticket> = None;
    // The project as the last answer showed it, when it can be decided on without reading.
    let mut known: Option<State> = None;
    let started = Instant::now();
    let mut next_report: Option<Instant> = None;
    let mut races = 0;
    let result = loop {
        if session.is_lost() {
            break Err(lease_lost(lease).into());
        }
        let state = match known.take() {
            Some(state) => state,
            None => match shared.read(Some(lease)).await {
                Ok(state) => state,
                Err(err) => break Err(err.into()),
            },
        };
        let number = ticket
            .as_ref()
            .map(|it| u64::try_from(it.revision).unwrap_or(0));
        let Some(conflict) = prepared.decide(&state, number) else {
            match publish(shared, &prepared, lease, state.revision, ticket.as_ref()).await {
                Ok(Published::Token(token)) => {
                    ticket = None; // deleted by the same transaction
                    break Ok(EtcdGuard::new(
                        Arc::clone(shared),
                        &session,
                        prepared.key.clone(),
                        token,
                        prepared.record.clone(),
                    ));
                }
                Ok(Published::Lost(now)) => {
                    known = now.map(|state| *state);
                    races += 1;
                    if races >= MAX_LOST_RACES {
                        break Err(Error::input(
                            ErrorKind::Busy,
                            format!(
                                "gave up on {:?} after losing {races} races in a row to other \
                                 changes under {:?}",
                                request.lock_name(),
                                shared.keys.project()
                            ),
                        )
                        .into());
                    }
                    continue;
                }
                Err(err) => break Err(err.into()),
            }
        };
        let now = Instant::now();
        let Some(deadline) = deadline.filter(|deadline| now < *deadline) else {
            break Err(if deadline.is_some() {
                AcquireError::Timeout(Box::new(conflict))
            } else {
                AcquireError::Conflict(Box::new(conflict))
            });
        };
        if ticket.is_none() {
            match take_ticket(shared, &prepared, lease).await {
                // Decide again with our place in the queue, on the project as it was then.
                Ok((taken, now)) => {
                    ticket = Some(taken);
                    known = Some(now);
                    continue;
                }
                Err(err) => break Err(err.into()),
            }
        }
        let first = next_report.is_none();
        if next_report.is_none_or(|at| now >= at) {
            observer.waiting(&Waiting {
                conflict: &conflict,
                waited: now.duration_since(started),
                first,
                ticket: number,
            });
            next_report = Some(match observer.interval() {
                Some(interval) => now + interval,
                None => deadline,
            });
        }
        let wake = next_report.map_or(deadline, |at| at.min(deadline));
        let blocking = conflict.lock_path().to_string_lossy().into_owned();
        match wait_for_delete(shared, &blocking, state.revision + 1, wake, &mut lost).await {
            // The lock in our way is gone: decide again on what we knew, less it, and if that
            // is free publish at once, with no read (the publish compare stands for one). A
            // waiter ahead that is gone most often got its lock: that needs a read.
            Ok(true) if !matches!(conflict.rule, ConflictRule::Waiting { .. }) => {
                known = Some(state.without(&blocking));
            }
            Ok(_) => {}
            Err(err) => break Err(err.into()),
        }
    };
    if let Some(ticket) = ticket {
        // Leaving the queue; if this fails the ticket goes with the lease.
        shared
            .delete_if_created(&ticket.key, ticket.revision)
            .await
            .ok();
    }
    result
}

/// What a publish did.
enum Published {
    /// The lock is ours: its key's create revision, the fencing token.
    Token(u64),
    /// Someone else's change got in first; the project as the same answer showed it, when it
    /// came (decide again on it: no read needed).
    Lost(Option<Box<State>>),
}

/// The transaction: if nothing a decision at `revision` depends on changed since, put the lock
/// under our lease and remove our ticket; else read the project, in the same answer.
///
/// Without a ticket that is every key of the project. With one, it is every lock key and our
/// ticket still there: waiters who came after us have larger tickets, which the decision of a
/// waiter never looks at, so their arrival must not cost it the race (under contention there
/// is always one arriving).
async fn publish(
    shared: &Shared,
    prepared: &Prepared<'_>,
    lease: i64,
    revision: i64,
    ticket: Option<&Ticket>,
) -> Result<Published, Error> {
    let value = Value {
        record: prepared.record.restamped(),
        host: shared.host.clone(),
        lease,
    };
    let mut compares = Vec::with_capacity(2);
    let mut puts = vec![TxnOp::put(
        prepared.key.as_str(),
        value.to_json(),
        Some(PutOptions::new().with_lease(lease)),
    )];
    match ticket {
        None => compares.push(
            Compare::mod_revision(shared.keys.project(), CompareOp::Less, revision + 1)
                .with_prefix(),
        ),
        Some(ticket) => {
            compares.push(
                Compare::mod_revision(shared.keys.locks(), CompareOp::Less, revision + 1)
                    .with_prefix(),
            );
            compares.push(Compare::create_revision(
                ticket.key.as_str(),
                CompareOp::Equal,
                ticket.revision,
            ));
            puts.push(TxnOp::delete(ticket.key.as_str(), None));
        }
    }
    let txn = Txn::new()
        .when(compares)
        .and_then(puts)
        .or_else([read_project(shared)]);
    let what = format!("cannot publish {:?}", prepared.key);
    // Sent once: after a lost answer, a second try would fail its compare on our own put.
    let answer = match shared
        .request_once(what, |mut kv| async move { kv.txn(txn).await })
        .await
    {
        Ok(answer) => answer,
        Err(err) => {
            // It may have been published all the same: a key at our name on our lease is
            // this attempt's, which nobody will release. Removed, as far as etcd lets us.
            let unpublish = Txn::new()
                .when([Compare::lease(
                    prepared.key.as_str(),
                    CompareOp::Equal,
                    lease,
                )])
                .and_then([TxnOp::delete(prepared.key.as_str(), None)]);
            let unpublished = shared
                .request(String::new(), |mut kv| {
                    let unpublish = unpublish.clone();
                    async move { kv.txn(unpublish).await }
                })
                .await;
            // Nothing of this attempt is left: decide again, as after a lost race (a member
            // restarting or an election ends such errors in a moment).
            return match unpublished {
                Ok(_) => Ok(Published::Lost(None)),
                Err(_) => Err(err),
            };
        }
    };
    if !answer.succeeded() {
        return Ok(Published::Lost(
            project_in(shared, lease, &answer).map(Box::new),
        ));
    }
    let token = answer.header().map_or(0, |header| header.revision());
    Ok(Published::Token(u64::try_from(token).unwrap_or(0)))
}

/// The read of every key of the project, as one operation of a transaction.
fn read_project(shared: &Shared) -> TxnOp {
    TxnOp::get(shared.keys.project(), Some(GetOptions::new().with_prefix()))
}

/// The project as the last operation of `answer` (a [`read_project`]) read it, at the
/// answer's revision.
fn project_in(shared: &Shared, lease: i64, answer: &TxnResponse) -> Option<State> {
    let revision = answer.header()?.revision();
    let read = match answer.op_responses().pop()? {
        TxnOpResponse::Get(read) => read,
        _ => return None,
    };
    Some(State::new(
        &shared.keys,
        &shared.root,
        Some(lease),
        revision,
        read.kvs(),
    ))
}

/// Puts our ticket in the queue, under our lease: its create revision is our place. Returns it
/// with the project as it was just after, read by the same transaction.
async fn take_ticket(
    shared: &Shared,
    prepared: &Prepared<'_>,
    lease: i64,
) -> Result<(Ticket, State), Error> {
    let key = shared.keys.ticket(lease, shared.next_ticket());
    let value = Value {
        record: prepared.record.clone(),
        host: shared.host.clone(),
        lease,
    }
    .to_json();
    // Put only if absent, else read it: so that a repeat after a lost answer finds the
    // ticket the first try made, with its create revision, our place.
    let take = Txn::new()
        .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
        .and_then([
            TxnOp::put(
                key.as_str(),
                value,
                Some(PutOptions::new().with_lease(lease)),
            ),
            read_project(shared),
        ])
        .or_else([TxnOp::get(key.as_str(), None), read_project(shared)]);
    let answer = shared
        .request(format!("cannot queue at {key:?}"), |mut kv| {
            let take = take.clone();
            async move { kv.txn(take).await }
        })
        .await?;
    let revision = if answer.succeeded() {
        answer.header().map_or(0, |header| header.revision())
    } else {
        answer
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Get(get) => get.kvs().first().map(KeyValue::create_revision),
                _ => None,
            })
            .unwrap_or(0)
    };
    let state = project_in(shared, lease, &answer).ok_or_else(|| {
        Error::input(
            ErrorKind::Etcd,
            format!("etcd's answer to queueing at {key:?} has no read of the project"),
        )
    })?;
    Ok((Ticket { key, revision }, state))
}

/// Waits until `key` is deleted at or after revision `from`, or `until`, or the lease is lost,
/// whichever comes first; whether it saw the delete. No polling: one watch, woken by etcd.
async fn wait_for_delete(
    shared: &Shared,
    key: &str,
    from: i64,
    until: Instant,
    lost: &mut watch::Receiver<bool>,
) -> Result<bool, Error> {
    let until = tokio::time::Instant::from_std(until);
    let mut watcher = shared.client.watch_client();
    let options = WatchOptions::new().with_start_revision(from);
    let mut stream = match tokio::time::timeout_at(until, watcher.watch(key, Some(options))).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => return Err(Error::etcd(format!("cannot watch {key:?}"), err)),
        Err(_) => return Ok(false),
    };
    loop {
        tokio::select! {
            message = stream.message() => match message {
                Ok(Some(answer)) => {
                    let deleted = answer
                        .events()
                        .iter()
                        .any(|event| event.event_type() == EventType::Delete);
                    if deleted {
                        return Ok(true);
                    }
                    // A cancelled watch (its start compacted away) means: look again.
                    if answer.canceled() {
                        return Ok(false);
                    }
                }
                // The stream ended or broke: look again (a read that fails reports why).
                Ok(None) | Err(_) => return Ok(false),
            },
            () = tokio::time::sleep_until(until) => return Ok(false),
            _ = lost.wait_for(|lost| *lost) => return Ok(false),
        }
    }
}

/// The error of an acquire whose lease was lost while it waited.
pub(crate) fn lease_lost(lease: i64) -> Error {
    Error::input(
        ErrorKind::Lost,
        format!(
            "the etcd lease {lease:x} of this process expired (stopped or cut off from etcd for \
             longer than its TTL)"
        ),
    )
}

/// How long the release in a guard's drop may take.
pub(crate) const DROP_RELEASE_BOUND: Duration = Duration::from_secs(5);
