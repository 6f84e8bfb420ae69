//! An attempt to acquire: steps 1 to 4 of docs/protocol.md ("How this crate takes a lock")
//! under one hold of the sentinel, and what makes a request ready for any number of them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ancestry::Ancestry;
use super::decide::decide;
use super::publish::{Published, publish, stale_file_in_the_way};
use super::queue::{self, Ticket};
use super::reclaim::Stale;
use super::scan::{Scan, scan};
use super::sentinel::{SentinelGuard, ensure_target_usable};
use super::token::next_token;
use crate::conflict::{AcquireError, Conflict, ConflictRule};
use crate::error::Error;
use crate::fault;
use crate::record::LockRecord;
use crate::request::{LOCK_SUFFIX, LockRequest};
use crate::scope::{self, ScopeIndex};
use crate::sys;

/// A request made ready once for any number of attempts: validated, its scope normalised,
/// its lock file named, its directory created.
pub(super) struct Prepared<'a> {
    pub(super) running_dir: PathBuf,
    request: &'a LockRequest,
    /// The record to publish (restamped at each attempt), its scope normalised.
    record: LockRecord,
    target: PathBuf,
    /// See [`Scan::invalid_grace`].
    invalid_grace: Duration,
}

impl<'a> Prepared<'a> {
    pub(super) fn new(
        running_dir: &'a Path,
        request: &'a LockRequest,
        invalid_grace: Duration,
    ) -> Result<Self, Error> {
        request.validate()?;
        let record = request.record(normalize_scope(request)?)?;
        // Resolved once, now: the guard must release this very file even if the process
        // changes its current directory while it holds the lock.
        let running_dir = std::path::absolute(running_dir)
            .map_err(|err| Error::io("cannot resolve the lock directory", running_dir, err))?;
        let target = lock_path(&running_dir, request);
        // Usually there already: one `open` instead of `create_dir_all`'s `mkdir` and `stat`.
        // (What is there is judged when the sentinel opens it.)
        if sys::Dir::open(&running_dir).is_err() {
            std::fs::create_dir_all(&running_dir)
                .map_err(|err| Error::io("cannot create lock directory", &running_dir, err))?;
        }
        Ok(Self {
            running_dir,
            request,
            record,
            target,
            invalid_grace,
        })
    }
}

/// What one attempt came to.
pub(super) enum Outcome {
    Published(Published),
    Blocked(Conflict),
}

/// Acquires `request` without waiting for the scope: one attempt.
pub(crate) fn try_acquire(
    running_dir: &Path,
    request: &LockRequest,
    bound: Duration,
    invalid_grace: Duration,
) -> Result<Published, AcquireError> {
    let prepared = Prepared::new(running_dir, request, invalid_grace)?;
    match attempt(&prepared, bound, &mut None, false)? {
        Outcome::Published(published) => Ok(published),
        Outcome::Blocked(conflict) => Err(AcquireError::Conflict(Box::new(conflict))),
    }
}

/// One attempt, under one hold of the sentinel: sentinel, target check, scan (locks and
/// queue), decide, publish. `ticket` is this waiter's place in the queue, if it has one; with
/// `join_queue`, a blocked attempt that has none takes one, in the same hold of the sentinel
/// that saw the conflict, so arrival order is the order in which waiters found the scope taken.
pub(super) fn attempt(
    prepared: &Prepared<'_>,
    bound: Duration,
    ticket: &mut Option<Ticket>,
    join_queue: bool,
) -> Result<Outcome, Error> {
    let Prepared {
        running_dir,
        request,
        record,
        target,
        invalid_grace,
    } = prepared;
    let sentinel = SentinelGuard::lock(running_dir, bound)?;
    fault::pause("acquire:sentinel-held");
    ensure_target_usable(target, &sentinel)?;
    let listing = scan(Scan::clean(*invalid_grace), &sentinel)?;
    let ours = ticket.as_ref().map(Ticket::number);
    let index = ScopeIndex::new(record.scope_paths());
    let mut ancestry = Ancestry::of_this_process();
    // A waiter with a ticket is decided against every ticket ahead of it, and none behind;
    // a request without one against as few as its decision needs, lowest first: the first
    // waiter that blocks it is ahead of every ticket not judged yet.
    let mut listed = queue::Listed::list(Stale::Clean, &sentinel)?;
    if let Some(ours) = ours {
        listed.keep_below(ours);
        while listed.judge_lowest() {}
    }
    let decided = |listed: &queue::Listed<'_>, ancestry: &mut Ancestry, ticket| {
        decide(
            &listing,
            listed.queue(),
            request,
            &index,
            Some(target),
            ticket,
            ancestry,
        )
    };
    let conflict = loop {
        let conflict = decided(&listed, &mut ancestry, ours);
        if conflict.is_some() || !listed.judge_lowest() {
            break conflict;
        }
    };
    if let Some(conflict) = conflict {
        if join_queue && ticket.is_none() {
            // A number above every live ticket: the highest is found judging from the top.
            listed.judge_to_highest_live();
            let taken = Ticket::take(
                listed.queue(),
                &record.restamped(),
                request.lock_name(),
                &sentinel,
            )?;
            let number = taken.number();
            *ticket = Some(taken);
            // From now on a waiter with a ticket: what it waits for is the waiter just ahead
            // of it, if any, not the lock that every waiter behind a holder would watch. That
            // is the highest waiter that blocks it, settled once no ticket above it is left
            // to judge.
            let as_waiter = loop {
                let as_waiter = decided(&listed, &mut ancestry, Some(number));
                let settled = match as_waiter.as_ref().map(Conflict::rule) {
                    Some(ConflictRule::Waiting { ticket }) => listed
                        .unjudged_range()
                        .is_none_or(|(_, highest)| *ticket > highest),
                    _ => listed.is_complete(),
                };
                if settled || !listed.judge_highest() {
                    break as_waiter;
                }
            };
            ancestry.remember();
            return Ok(Outcome::Blocked(as_waiter.unwrap_or(conflict)));
        }
        ancestry.remember();
        return Ok(Outcome::Blocked(conflict));
    }
    stale_file_in_the_way(&listing, target, &sentinel)?;
    let token = next_token(&sentinel)?;
    let published = publish(target, record.restamped(), token, &sentinel)?;
    // Leave the queue in the same hold of the sentinel that publishes the lock: whoever looks
    // next sees our lock, never neither.
    drop(ticket.take());
    // The new lock is flocked by `file` already; the sentinel can go.
    drop(sentinel);
    Ok(Outcome::Published(published))
}

/// The lock file `request` takes in `running_dir`.
pub(crate) fn lock_path(running_dir: &Path, request: &LockRequest) -> PathBuf {
    running_dir.join(format!("{}{LOCK_SUFFIX}", request.lock_name()))
}

pub(super) fn normalize_scope(request: &LockRequest) -> Result<Vec<PathBuf>, Error> {
    request
        .effective_scope()
        .into_iter()
        .map(scope::normalize_entry)
        .collect()
}

/// [`normalize_scope`] against `base` instead of the current directory: the etcd backend's
/// scopes are relative to the project root. As text: etcd's records and keys are, so a path
/// that is not UTF-8 is refused there.
#[cfg(feature = "etcd")]
pub(crate) fn normalize_scope_in(request: &LockRequest, base: &Path) -> Result<Vec<String>, Error> {
    request
        .effective_scope()
        .into_iter()
        .map(|entry| {
            scope::normalize_entry_in(base, entry)?
                .into_os_string()
                .into_string()
                .map_err(|raw| {
                    Error::input(
                        crate::error::ErrorKind::InvalidScope,
                        format!(
                            "invalid scope entry {entry:?}: resolves to {raw:?}, which is not \
                             UTF-8, and scopes on etcd are text"
                        ),
                    )
                })
        })
        .collect()
}
