//! The waiting queue: one ticket per waiter, so that waiters whose scopes overlap are served
//! in the order they started waiting.
//!
//! A ticket is a file `.running/.queue/<number>` holding the waiter's [`LockRecord`], open and
//! exclusively flocked by the waiter for as long as it waits, exactly like a lock. So:
//!
//! - its liveness is its flock: a waiter that is killed leaves a file whose flock is free, and
//!   the next scan of the queue (an acquire's, or a listing's) removes it; it never blocks
//!   anyone;
//! - a waiter that stops waiting (it got the lock, timed out, or was dropped) removes its file
//!   itself.
//!
//! Numbers come from a counter read under the directory sentinel: one more than the highest
//! live ticket. Every live ticket is a file, so a new number is higher than every live one, and
//! that is all arrival order needs; no counter file can be lost or corrupted, and no clock is
//! consulted. The directory's name starts with a dot, so the original's glob (`*.lock` in
//! `.running/`) and our own scans of lock files never look inside.

use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use super::reclaim::{Entry, Stale, reclaim};
use super::sentinel::SentinelGuard;
use crate::error::{Error, ErrorKind};
use crate::listing::ScanProblem;
use crate::python_json::push_json_string;
use crate::record::{LockRecord, MAX_RECORD_BYTES};
use crate::sys::{self, Dir, FileId, FileType};

impl From<Queued> for crate::listing::Waiter {
    fn from(ticket: Queued) -> Self {
        Self {
            ticket: ticket.number,
            path: ticket.path,
            record: ticket.record,
            lock_name: ticket.lock_name,
            id: ticket.id,
        }
    }
}

/// The queue's directory, inside `.running/`.
pub(crate) const QUEUE_DIR: &str = ".queue";

/// How many numbers to try when a stale ticket that could not be removed holds one.
const TAKE_ATTEMPTS: usize = 64;

/// The queue's directory for `running_dir` (to watch it).
pub(crate) fn queue_dir(running_dir: &Path) -> PathBuf {
    running_dir.join(QUEUE_DIR)
}

/// A live waiter's ticket, as a scan of the queue finds it.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    pub(crate) number: u64,
    pub(crate) path: PathBuf,
    pub(crate) record: LockRecord,
    /// The name of the lock its waiter will take, where the ticket says (see [`ticket_json`]).
    pub(crate) lock_name: Option<String>,
    /// The ticket's inode, whose flock holder proves who waits (see `ancestry`).
    pub(crate) id: FileId,
}

/// What a scan of the queue found.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    /// The live tickets, lowest number first.
    pub(crate) tickets: Vec<Queued>,
    /// The tickets of waiters that are gone, removed (or, by a dry run, left in place),
    /// sorted by path.
    pub(crate) stale: Vec<PathBuf>,
    /// Tickets of waiters that are gone which could not be removed.
    pub(crate) problems: Vec<ScanProblem>,
}

/// Reads the queue under the sentinel, removing the tickets of waiters that are gone (their
/// flock is free), or with [`Stale::DryRun`] only noting them. A ticket that is held but
/// cannot be read is skipped: it cannot be ordered against, and skipping it costs fairness,
/// never exclusion (locks alone decide that). Only regular files named like tickets are
/// judged, and a queue directory that is a symlink is not followed: nothing else is ours.
/// The directory is opened once, from the sentinel's `.running/`, and every ticket is opened,
/// checked and removed through that descriptor: a queue swapped for a symlink meanwhile
/// cannot send a removal anywhere else.
pub(crate) fn scan(stale: Stale, sentinel: &SentinelGuard) -> Result<Queue, Error> {
    scan_ahead_of(None, stale, sentinel)
}

/// [`scan`], judging only the tickets numbered below `ours` when a waiter with that ticket
/// asks: those behind it can never block it (see `decide`), and reading each costs an open,
/// a stat, a flock and a read. A dead waiter's ticket behind it is left for the scan of a
/// request without a ticket, or a listing, which judge every ticket; meanwhile it blocks
/// nobody, since only the tickets ahead of a request count against it.
pub(crate) fn scan_ahead_of(
    ours: Option<u64>,
    stale: Stale,
    sentinel: &SentinelGuard,
) -> Result<Queue, Error> {
    let mut listed = Listed::list(stale, sentinel)?;
    if let Some(ours) = ours {
        listed.keep_below(ours);
    }
    while listed.judge_lowest() {}
    Ok(listed.into_queue())
}

/// The queue's tickets as listed under the sentinel, judged (opened, probed, read, or
/// removed when their waiter is gone) only as a decision needs them, lowest or highest first:
/// a request without a ticket needs the first waiter that blocks it and, to take a number,
/// the highest live ticket, not every waiter between.
pub(crate) struct Listed<'s> {
    /// `None` when there is no queue (or it is not ours to read: a symlink).
    dir: Option<Dir>,
    path: PathBuf,
    /// The tickets not judged yet, by number, lowest first.
    unjudged: std::collections::VecDeque<(u64, std::ffi::OsString)>,
    stale: Stale,
    sentinel: &'s SentinelGuard,
    queue: Queue,
}

impl<'s> Listed<'s> {
    /// Lists the queue of `sentinel`'s `.running/` (see [`scan`] for what is judged, and how).
    pub(crate) fn list(stale: Stale, sentinel: &'s SentinelGuard) -> Result<Self, Error> {
        let path = sentinel.dir().join(QUEUE_DIR);
        let mut listed = Self {
            dir: None,
            path,
            unjudged: std::collections::VecDeque::new(),
            stale,
            sentinel,
            queue: Queue::default(),
        };
        let dir = match sentinel.dir().open_dir(QUEUE_DIR) {
            Ok(dir) => dir,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(listed),
            // A symlink: `Ticket::take` refuses to queue there, so no waiter of ours can be
            // where it points, and nothing there is ours to remove. (What the name is now is
            // asked again only to tell a symlink, or a directory swapped back meanwhile, from
            // a file in the way, which is an error.)
            Err(err)
                if sys::is_not_a_dir(&err)
                    && sentinel
                        .dir()
                        .stat(QUEUE_DIR)
                        .ok()
                        .flatten()
                        .is_some_and(|stat| {
                            matches!(stat.file_type, FileType::Symlink | FileType::Directory)
                        }) =>
            {
                return Ok(listed);
            }
            Err(err) => return Err(Error::io("cannot list", &listed.path, err)),
        };
        let entries = dir
            .entries()
            .map_err(|err| Error::io("cannot list", &listed.path, err))?;
        let mut unjudged = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|err| Error::io("cannot list", &listed.path, err))?;
            if let Some(number) = entry.name.to_str().and_then(parse_number) {
                unjudged.push((number, entry.name));
            }
        }
        unjudged.sort_unstable_by_key(|(number, _)| *number);
        listed.unjudged = unjudged.into();
        listed.dir = Some(dir);
        Ok(listed)
    }

    /// Leaves out the tickets numbered `ours` and above: a waiter with that ticket is never
    /// blocked by them.
    pub(crate) fn keep_below(&mut self, ours: u64) {
        self.unjudged.retain(|(number, _)| *number < ours);
    }

    /// Judges from the highest ticket down until the highest live one is known: every
    /// ticket above it judged, and found stale. Called after judging from the lowest up
    /// only, so every ticket not judged yet is above every live one known: the first live
    /// one found from the top is the highest (or, with none, the highest judged before).
    pub(crate) fn judge_to_highest_live(&mut self) {
        while let Some((number, name)) = self.unjudged.pop_back() {
            if self.judge(number, name) {
                break;
            }
        }
    }

    /// Whether every listed ticket has been judged.
    pub(crate) fn is_complete(&self) -> bool {
        self.unjudged.is_empty()
    }

    /// The lowest and highest numbers not judged yet.
    pub(crate) fn unjudged_range(&self) -> Option<(u64, u64)> {
        Some((self.unjudged.front()?.0, self.unjudged.back()?.0))
    }

    /// Judges the lowest ticket not judged yet; `false` when there was none.
    pub(crate) fn judge_lowest(&mut self) -> bool {
        let Some((number, name)) = self.unjudged.pop_front() else {
            return false;
        };
        self.judge(number, name);
        true
    }

    /// Judges the highest ticket not judged yet; `false` when there was none.
    pub(crate) fn judge_highest(&mut self) -> bool {
        let Some((number, name)) = self.unjudged.pop_back() else {
            return false;
        };
        self.judge(number, name);
        true
    }

    /// The live tickets judged so far, in number order, and the stale ones removed.
    pub(crate) fn queue(&self) -> &Queue {
        &self.queue
    }

    /// What was judged, as [`scan`] reports it.
    pub(crate) fn into_queue(mut self) -> Queue {
        self.queue.stale.sort();
        self.queue
    }

    /// Judges one ticket; `true` when it is a live waiter's, now in [`Self::queue`].
    fn judge(&mut self, number: u64, name: std::ffi::OsString) -> bool {
        let Some(dir) = &self.dir else {
            return false;
        };
        let Ok(file) = dir.open_file(&name) else {
            // Gone since the listing, or not a file we can open: nothing to order against.
            return false;
        };
        // Only regular files are tickets; anything else is not ours to judge, let alone remove.
        let id = match file.metadata() {
            Ok(meta) if meta.is_file() => sys::id_of(&meta),
            _ => return false,
        };
        let entry = Entry::new(dir, name);
        let queue = &mut self.queue;
        match sys::try_lock_exclusive(&file) {
            // Its waiter is gone. We hold the sentinel, so nobody can be taking this number
            // anew; still, as for a stale lock, only the inode we probed is unlinked.
            Ok(true) => {
                reclaim(
                    &entry,
                    &file,
                    self.stale,
                    (&mut queue.stale, &mut queue.problems),
                    self.sentinel,
                );
                false
            }
            Ok(false) => {
                let bytes = sys::read_sized(&file, 0, MAX_RECORD_BYTES + 1).ok();
                let record = bytes
                    .as_deref()
                    .and_then(|bytes| LockRecord::from_json(bytes).ok());
                let (Some(record), Some(bytes)) = (record, bytes) else {
                    return false;
                };
                // Numbers are file names, so no two tickets share one: the search never
                // finds this number, and says where it goes.
                let (Ok(at) | Err(at)) = queue
                    .tickets
                    .binary_search_by_key(&number, |ticket| ticket.number);
                queue.tickets.insert(
                    at,
                    Queued {
                        number,
                        path: entry.path,
                        record,
                        lock_name: lock_name_in(&bytes),
                        id,
                    },
                );
                true
            }
            Err(_) => false,
        }
    }
}

/// What a ticket holds: the waiter's record, as a lock file would hold it, and the name of the
/// lock it will take (`"lock_name"`), which `list` shows. The record alone names the loop, not
/// the lock: an instance id is only in the lock file's name, and a ticket is named by its
/// number. The key is one more in the record's object, which every reader of records ignores
/// (unknown keys are), so older versions read these tickets as before; a ticket without it
/// (theirs) is listed without a name. Left out when it would make the ticket longer than a
/// record may be: a ticket nobody can read would cost its waiter its place.
fn ticket_json(record: &LockRecord, lock_name: &str) -> String {
    let json = record.to_json();
    let Some(open) = json.strip_suffix('}') else {
        return json;
    };
    let mut named = String::with_capacity(json.len() + lock_name.len() + 20);
    named.push_str(open);
    named.push_str(", \"lock_name\": ");
    push_json_string(&mut named, lock_name);
    named.push('}');
    if u64::try_from(named.len()).map_or(true, |len| len > MAX_RECORD_BYTES) {
        json
    } else {
        named
    }
}

/// The `"lock_name"` a ticket holds, if any ([`ticket_json`]).
fn lock_name_in(ticket: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Named {
        lock_name: Option<String>,
    }
    serde_json::from_slice::<Named>(ticket).ok()?.lock_name
}

/// A ticket's file name is its number, in decimal, zero-padded so that names sort like numbers.
fn file_name(number: u64) -> String {
    format!("{number:020}")
}

fn parse_number(name: &str) -> Option<u64> {
    if name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse().ok()
    } else {
        None
    }
}

/// This waiter's place in the queue. Dropping it withdraws it.
#[derive(Debug)]
pub(crate) struct Ticket {
    number: u64,
    /// The queue's directory, held open: the ticket is withdrawn through it.
    dir: Dir,
    name: String,
    path: PathBuf,
    file: Option<File>,
    id: FileId,
    owner_pid: u32,
}

impl Ticket {
    /// Takes the next number after every ticket in `queue` (which must have been read under the
    /// same `sentinel`) and files `record` under it, flocked.
    pub(crate) fn take(
        queue: &Queue,
        record: &LockRecord,
        lock_name: &str,
        sentinel: &SentinelGuard,
    ) -> Result<Self, Error> {
        let path = sentinel.dir().join(QUEUE_DIR);
        // Made with `.running/`'s mode whatever our umask, so that every user who may use
        // `.running/` may queue there too.
        let dir = sentinel.dir().open_or_make_dir(QUEUE_DIR).map_err(|err| {
            if sys::is_not_a_dir(&err) {
                Error::at_path(
                    ErrorKind::NotALockFile,
                    &path,
                    "is not a directory; cannot queue waiters there",
                )
            } else {
                Error::io("cannot create the waiting queue", &path, err)
            }
        })?;
        let first = match queue.tickets.last() {
            None => 1,
            Some(last) => last.number.checked_add(1).ok_or_else(|| {
                Error::at_path(
                    ErrorKind::Interference,
                    &last.path,
                    format!(
                        "a live ticket holds the highest number there is ({}), so no waiter \
                         can queue behind it; it cannot come from 2^64 waiters, so some process \
                         filed it outside the protocol: stop that process (it holds the \
                         ticket's flock)",
                        last.number
                    ),
                )
            })?,
        };
        // Numbers past u64::MAX do not exist: near the top, fewer than TAKE_ATTEMPTS are tried.
        let numbers = (first..=u64::MAX).take(TAKE_ATTEMPTS);
        let tried = numbers.clone().count();
        for number in numbers {
            let name = file_name(number);
            let path = dir.join(&name);
            let file = match dir.create_new(&name, sys::SHARED_FILE_MODE) {
                Ok(file) => file,
                // A stale ticket we could not remove, or a stray file: try the next number.
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(Error::io("cannot create ticket", &path, err)),
            };
            let id = match sys::file_id(&file) {
                Ok(id) => id,
                Err(err) => {
                    let _ = dir.remove_file(&name);
                    return Err(Error::io("cannot stat", &path, err));
                }
            };
            // From here on, dropping `ticket` on an error removes the file again.
            let ticket = Self {
                number,
                dir,
                name,
                path,
                file: Some(file),
                id,
                owner_pid: std::process::id(),
            };
            ticket.fill(&ticket_json(record, lock_name))?;
            return Ok(ticket);
        }
        Err(Error::io(
            "cannot take a ticket in",
            &path,
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{tried} ticket numbers from {first} on are all taken by files that cannot be removed"
                ),
            ),
        ))
    }

    /// Locks the new ticket's file and writes the waiter's record into it. Readers read tickets
    /// only under the sentinel, which the taker holds, so nobody sees it half-written.
    fn fill(&self, json: &str) -> Result<(), Error> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let locked = sys::try_lock_exclusive(file)
            .map_err(|err| Error::io("cannot lock", &self.path, err))?;
        if !locked {
            return Err(Error::at_path(
                ErrorKind::Interference,
                &self.path,
                "a freshly created ticket is already locked by someone else",
            ));
        }
        (&*file)
            .write_all(json.as_bytes())
            .map_err(|err| Error::io("cannot write", &self.path, err))
    }

    /// This ticket's number.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// Withdraws the ticket: unlinks its file if the name is still ours, then closes it.
    ///
    /// No sentinel is needed, unlike a lock's release: nobody reclaims a ticket whose flock we
    /// hold, and nobody can take its number while the file exists, so until our unlink the
    /// name can only be ours. Withdrawing therefore never waits.
    fn withdraw(&mut self) {
        let Some(file) = self.file.take() else {
            return;
        };
        // A forked child only closes its copy (as for locks).
        if std::process::id() == self.owner_pid
            && self.dir.id_of(&self.name).ok().flatten() == Some(self.id)
        {
            let _ = self.dir.remove_file(&self.name);
        }
        drop(file);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.withdraw();
    }
}

#[cfg(test)]
mod tests;
