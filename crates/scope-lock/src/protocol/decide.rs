//! Step 3, the decision (docs/protocol.md, "How this crate takes a lock"): the first live lock
//! that blocks a request by the overlap rules, else the earlier waiter that goes first; the
//! locks and tickets of our ancestors are left out ([`ancestry`](super::ancestry)). The etcd
//! backend decides with the same function, over the keys it read, and a [`Kinship`] in which
//! nobody is an ancestor ([`crate::etcd`]).

use std::path::{Path, PathBuf};

use super::ancestry::Kinship;
use super::queue::{Queue, Queued};
use crate::conflict::{Conflict, ConflictRule};
use crate::listing::LockListing;
use crate::record::LockRecord;
use crate::request::LockRequest;
use crate::scope::{self, ScopeIndex};

/// What blocks `request` (whose normalised scope is `scope` and whose lock file would be
/// `target`; `None` when only the scope is asked about, whatever the lock file): a live lock ([`first_conflict`]), else a waiter ahead of us in the queue
/// ([`waiter_ahead`]). `ticket` is our own place in the queue, if we have one. `ancestry` is
/// our ancestry, read at most once for all the decisions of one hold of the sentinel.
pub(crate) fn decide(
    listing: &LockListing,
    queue: &Queue,
    request: &LockRequest,
    scope: &ScopeIndex<'_>,
    target: Option<&Path>,
    ticket: Option<u64>,
    ancestry: &mut impl Kinship,
) -> Option<Conflict> {
    if ticket.is_some() {
        // A waiter behind an earlier one cannot go before it, whatever the locks: report (and
        // so wait for) the one just ahead of it, so that a release wakes only the head of the
        // queue, and a waiter leaving wakes only the one behind it. Waiting on the head
        // instead would wake every waiter at every turn, each to take the sentinel and find
        // the next head.
        waiter_ahead(listing, queue, request, scope, ticket, ancestry)
            .or_else(|| first_conflict(listing, request, scope, target, ancestry))
    } else {
        first_conflict(listing, request, scope, target, ancestry)
            .or_else(|| waiter_ahead(listing, queue, request, scope, ticket, ancestry))
    }
}

/// The first live lock that blocks `request`, in path order.
fn first_conflict(
    listing: &LockListing,
    request: &LockRequest,
    scope: &ScopeIndex<'_>,
    target: Option<&Path>,
    ancestry: &mut impl Kinship,
) -> Option<Conflict> {
    if let Some(problem) = listing.problems.iter().find(|p| p.blocks()) {
        // Why it blocks, and what the user can do about it.
        let reason = problem.what();
        return Some(Conflict {
            lock_path: problem.path.clone(),
            holder: None,
            rule: ConflictRule::Unreadable { reason },
            by_this_process: false,
            remote: None,
        });
    }
    for lock in &listing.locks {
        let record = &lock.record;
        let rule = if target == Some(lock.path.as_path()) {
            // Never carved out for ancestors: the file cannot hold two records.
            ConflictRule::SameName
        } else {
            let Some(rule) = scope_rule(request, scope, record) else {
                continue;
            };
            if ancestry.is_ancestor(record, lock.id) {
                continue;
            }
            rule
        };
        return Some(Conflict {
            lock_path: lock.path.clone(),
            holder: Some(record.clone()),
            rule,
            by_this_process: ancestry.is_this_process(record, lock.id),
            remote: None,
        });
    }
    None
}

/// The rule by which a holder (or waiter) with `record` blocks `request`, scopes and
/// singletons only: the same singleton name, else the first overlapping pair of paths, unless
/// both are shared (whatever their modes, singletons exclude each other).
fn scope_rule(
    request: &LockRequest,
    scope: &ScopeIndex<'_>,
    record: &LockRecord,
) -> Option<ConflictRule> {
    if request.is_singleton() && record.singleton() && record.loop_name() == request.loop_name() {
        return Some(ConflictRule::Singleton);
    }
    if !request.mode().excludes(record.mode()) {
        return None;
    }
    let (ours, theirs) = first_overlap_with(scope, record)?;
    Some(ConflictRule::Overlap {
        ours: ours.to_string_lossy().into_owned(),
        theirs,
    })
}

/// The first of our paths that overlaps one of `record`'s, with that path of theirs as text.
/// Compared as paths, byte for byte: the original's may not be UTF-8.
fn first_overlap_with<'a>(
    ours: &ScopeIndex<'a>,
    record: &LockRecord,
) -> Option<(&'a PathBuf, String)> {
    let paths = record.scope_paths();
    if paths.iter().all(|path| path.is_absolute()) {
        // As recorded: nothing to normalise, nothing to copy.
        let (i, j) = ours.first_overlap(paths.iter().map(PathBuf::as_path))?;
        return Some((ours.paths().get(i)?, record.scope().get(j)?.clone()));
    }
    let theirs = holder_scope(record);
    let (i, j) = ours.first_overlap(theirs.iter().map(|(path, _)| path.as_path()))?;
    Some((ours.paths().get(i)?, theirs.get(j)?.1.clone()))
}

/// Whether two records' scopes or singletons collide (a waiter against a holder), by the
/// rules of [`scope_rule`].
fn records_collide(waiter: &LockRecord, holder: &LockRecord) -> bool {
    (waiter.singleton() && holder.singleton() && waiter.loop_name() == holder.loop_name())
        || (waiter.mode().excludes(holder.mode())
            && first_overlap_with(&ScopeIndex::new(waiter.scope_paths()), holder).is_some())
}

/// A live waiter that arrived before us and whose scope collides with ours: it goes first, so
/// that overlapping waiters are served in arrival order. Modes count as for locks: a reader
/// passes a reader waiting ahead (both will hold together), never a writer, so that no writer
/// waits for ever behind readers that keep coming. With a `ticket`, the last such waiter
/// ahead of it (while that one waits it cannot go, whatever those further ahead do);
/// without one, the earliest of all (the head of the queue, the one that goes next).
///
/// Two exceptions keep the queue from deadlocking what runs without it. A waiter that is one of
/// our ancestors is skipped, as its lock would be. And a waiter that is itself blocked by a
/// lock of ours or of an ancestor's is skipped: it cannot go before that lock is released,
/// which may depend on us (a loop holding a scope runs a nested loop over part of it while
/// someone waits for the whole).
fn waiter_ahead(
    listing: &LockListing,
    queue: &Queue,
    request: &LockRequest,
    scope: &ScopeIndex<'_>,
    ticket: Option<u64>,
    ancestry: &mut impl Kinship,
) -> Option<Conflict> {
    let mut blocking = |waiter: &Queued| {
        let record = &waiter.record;
        scope_rule(request, scope, record)?;
        if ancestry.is_ancestor(record, waiter.id) {
            return None;
        }
        let waits_on_our_ancestry = listing.locks.iter().any(|lock| {
            records_collide(record, &lock.record) && ancestry.contains(&lock.record, lock.id)
        });
        if waits_on_our_ancestry {
            return None;
        }
        Some(Conflict {
            lock_path: waiter.path.clone(),
            holder: Some(record.clone()),
            rule: ConflictRule::Waiting {
                ticket: waiter.number,
            },
            by_this_process: ancestry.is_this_process(record, waiter.id),
            remote: None,
        })
    };
    // The tickets are in number order.
    let mut ahead = queue
        .tickets
        .iter()
        .filter(|waiter| ticket.is_none_or(|ours| waiter.number < ours));
    match ticket {
        Some(_) => ahead.rev().find_map(blocking),
        None => ahead.find_map(&mut blocking),
    }
}

/// A holder's scope as compared, each entry as a path (byte for byte, see
/// [`LockRecord::scope_paths`]) and as text for messages: absolute entries as recorded
/// (normalised when acquired); relative ones, which only legacy files have, normalised here as
/// the original does.
fn holder_scope(record: &LockRecord) -> Vec<(PathBuf, String)> {
    record
        .scope_paths()
        .iter()
        .zip(record.scope())
        .map(|(path, text)| {
            if path.is_absolute() {
                (path.clone(), text.clone())
            } else {
                let resolved = scope::normalize_path(path).unwrap_or_else(|_| path.clone());
                let text = resolved.to_string_lossy().into_owned();
                (resolved, text)
            }
        })
        .collect()
}
