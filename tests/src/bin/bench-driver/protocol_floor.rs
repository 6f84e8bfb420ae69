//! The protocol's floor for a fair handoff (P3 and P4's "protocol floor"): what any lock
//! that keeps this protocol's guarantees must do at each turn, built from the floor's bare
//! steps (`floor.rs`) with every guarantee of P1's ladder, in a `.running/` holding what
//! ours holds in the same fleet (the holder's lock, a ticket per waiter).
//!
//! Each turn, in order:
//!
//! 1. the holder releases (B4): under the checked sentinel, it unlinks its name if that is
//!    still its inode and closes it; and, since it must wake the head of the queue and
//!    nobody else, it lists the queue and reads the lowest live ticket to learn whose it is
//!    (ours leaves that to the kernel: its waiters watch the file ahead of them);
//! 2. it wakes that waiter by the cheapest wake-up there is, a one-byte token into the
//!    waiter's FIFO (`ring.rs`): one process woken per turn;
//! 3. the head takes the checked sentinel (B3), probes every `*.lock` (the original's locks
//!    do not queue, so every lock file must be looked at), lists the queue and probes every
//!    ticket ahead of its own (B12; at the head there are none), advances the fencing token,
//!    publishes its lock (B2: a flocked dot file renamed into place without replacing) and
//!    withdraws its ticket, all in that one hold of the sentinel;
//! 4. the releaser asks again, a new request: it normalises its scope, takes the checked
//!    sentinel, probes every lock and the tickets its decision needs (the lowest when no lock
//!    blocks it; from the highest down to the highest live one, for its number) and files its
//!    ticket (a flocked file), behind everyone already waiting. If nobody is waiting and
//!    nothing holds the scope, it takes the lock again at once (a re-take, as ours does).
//!
//! A handoff (the witness log's `exit` to the next `enter`) is steps 1 to 3; step 4 runs
//! beside the next hold, as ours does. A waiter woken while it is not first (it had not
//! filed its ticket yet when the token came) waits again, as ours does. What ours does beyond
//! this is what its wait adds that no guarantee needs.

#![allow(
    clippy::disallowed_methods,
    reason = "the protocol floor takes its flocks bare, not through the library it is compared with"
)]

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use scope_lock::LockRecord;

use crate::floor::{self, FloorGuard, ScopeIndex, Sentinel};
use crate::ring;

fn running_dir(root: &Path) -> PathBuf {
    root.join("protocol-floor").join(".running")
}

fn err(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> String {
    let path = path.display().to_string();
    move |error| format!("protocol floor: {what} {path}: {error}")
}

/// Makes the FIFOs of `processes` in `root` and an empty `.running/` with its queue
/// (replacing those of an earlier round).
pub(crate) fn make(root: &Path, processes: u64) -> Result<(), String> {
    ring::make(root, processes)?;
    let top = root.join("protocol-floor");
    match fs::remove_dir_all(&top) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(err("removing", &top)(error)),
    }
    let queue = running_dir(root).join(".queue");
    fs::create_dir_all(&queue).map_err(err("creating", &queue))
}

/// A waiter's ticket: its number, its file (flocked while it is held), its path.
struct Ticket {
    number: u64,
    _file: File,
    path: PathBuf,
}

impl Ticket {
    /// Files `record` as ticket `number`: created new, flocked, written.
    fn file(running: &Path, number: u64, record: &LockRecord) -> Result<Self, String> {
        let path = running.join(".queue").join(format!("{number:020}"));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(err("creating", &path))?;
        file.try_lock()
            .map_err(|error| err("flocking", &path)(error.into()))?;
        file.write_all(record.to_json().as_bytes())
            .map_err(err("writing", &path))?;
        Ok(Self {
            number,
            _file: file,
            path,
        })
    }

    /// Withdraws it: unlinked (under the sentinel, or at the end of a run), then closed.
    fn withdraw(self) -> Result<(), String> {
        fs::remove_file(&self.path).map_err(err("removing", &self.path))
    }
}

/// One process of the fleet.
pub(crate) struct Member {
    worker: u64,
    /// Every member's FIFO, ours included, by worker number.
    fifos: Vec<File>,
    running: PathBuf,
    name: String,
    scope: Vec<String>,
    ticket: Option<Ticket>,
    guard: Option<FloorGuard>,
    /// The first worker holds first, without being woken.
    has_turn: bool,
}

impl Member {
    /// Joins as `worker` of `processes` and files its ticket, numbered in worker order (the
    /// first worker's turn comes first).
    pub(crate) fn join(root: &Path, worker: u64, processes: u64) -> Result<Self, String> {
        let running = running_dir(root);
        let scope = vec![root.join("project").to_string_lossy().into_owned()];
        let name = format!("floor-{worker}");
        let ticket = Some(Ticket::file(&running, worker + 1, &record(&name, &scope))?);
        // Read-write, as the ring's: opening never waits for the other end.
        let fifos = (0..processes)
            .map(|k| {
                let path = ring::fifo(root, k);
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(err("opening", &path))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            worker,
            fifos,
            running,
            name,
            scope,
            ticket,
            guard: None,
            has_turn: worker == 0,
        })
    }

    /// Waits until it is woken as the head of the queue and takes the lock (step 3), unless
    /// it holds it already (a re-take); `false` when the run is over.
    pub(crate) fn acquire(&mut self) -> Result<bool, String> {
        while self.guard.is_none() {
            if !std::mem::take(&mut self.has_turn) && !self.woken()? {
                return Ok(false);
            }
            self.attempt()?;
        }
        Ok(true)
    }

    /// Reads the next token from our FIFO: `false` for the stop.
    fn woken(&mut self) -> Result<bool, String> {
        let mut token = [0u8];
        let inbox = usize::try_from(self.worker).map_err(|error| error.to_string())?;
        self.fifos[inbox]
            .read_exact(&mut token)
            .map_err(|error| format!("protocol floor: reading a token: {error}"))?;
        Ok(token[0] == ring::GO)
    }

    /// One attempt under the sentinel, as a waiter with a ticket: it holds the lock after
    /// it, or is blocked still (woken before its ticket was first).
    fn attempt(&mut self) -> Result<(), String> {
        let sentinel =
            Sentinel::lock(&self.running, true).map_err(err("locking", &self.running))?;
        if self.held_lock()?.is_some() {
            return Ok(());
        }
        let ours = self
            .ticket
            .as_ref()
            .map_or(u64::MAX, |ticket| ticket.number);
        let queue = sentinel
            .look_up_queue()
            .map_err(err("listing the queue of", &self.running))?;
        for (_, path) in queue.iter().take_while(|(number, _)| *number < ours) {
            if floor::probe(path).map_err(err("probing", path))?.is_some() {
                return Ok(());
            }
        }
        self.publish()?;
        drop(sentinel);
        Ok(())
    }

    /// Publishes our lock and withdraws our ticket; the caller holds the sentinel.
    fn publish(&mut self) -> Result<(), String> {
        floor::advance_token(&self.running)
            .map_err(err("advancing the token in", &self.running))?;
        let guard = floor::publish(&self.running, &self.name, &self.scope, true)
            .map_err(err("publishing in", &self.running))?;
        self.guard = Some(guard);
        if let Some(ticket) = self.ticket.take() {
            ticket.withdraw()?;
        }
        Ok(())
    }

    /// Releases and wakes the head of the queue (steps 1 and 2); with `again`, asks again
    /// (step 4).
    pub(crate) fn release(&mut self, again: bool) -> Result<(), String> {
        let head = self.release_finding_head(true)?;
        if let Some(head) = head {
            self.wake(head, ring::GO)?;
        }
        if again {
            self.ask_again()?;
        }
        Ok(())
    }

    /// Step 1: under the checked sentinel, the lock unlinked and closed, and (`find_head`)
    /// the worker whose ticket is lowest among the live ones.
    fn release_finding_head(&mut self, find_head: bool) -> Result<Option<u64>, String> {
        let Some(guard) = self.guard.take() else {
            return Ok(None);
        };
        let sentinel =
            Sentinel::lock(&self.running, true).map_err(err("locking", &self.running))?;
        guard
            .unlink_and_close()
            .map_err(err("releasing in", &self.running))?;
        let mut head = None;
        if find_head {
            let queue = sentinel
                .look_up_queue()
                .map_err(err("listing the queue of", &self.running))?;
            for (_, path) in &queue {
                if let Some(record) = floor::probe(path).map_err(err("probing", path))? {
                    head = record
                        .loop_name()
                        .strip_prefix("floor-")
                        .and_then(|k| k.parse().ok());
                    break;
                }
            }
        }
        drop(sentinel);
        Ok(head)
    }

    fn wake(&mut self, worker: u64, token: u8) -> Result<(), String> {
        let k = usize::try_from(worker).map_err(|error| error.to_string())?;
        self.fifos
            .get_mut(k)
            .ok_or_else(|| format!("protocol floor: no worker {worker}"))?
            .write_all(&[token])
            .map_err(|error| format!("protocol floor: waking worker {worker}: {error}"))
    }

    /// The run is over: releases without waking anyone, withdraws any ticket, and passes
    /// the stop on to the next worker, which passes it on in turn.
    pub(crate) fn stop(&mut self) -> Result<(), String> {
        self.release_finding_head(false)?;
        if let Some(ticket) = self.ticket.take() {
            ticket.withdraw()?;
        }
        let next = (self.worker + 1) % u64::try_from(self.fifos.len().max(1)).unwrap_or(1);
        self.wake(next, ring::STOP)
    }

    /// Step 4: a new request; it queues behind whoever holds or waits, or takes the free
    /// scope again.
    fn ask_again(&mut self) -> Result<(), String> {
        floor::normalise(&self.scope)
            .map_err(|error| format!("protocol floor: normalising: {error}"))?;
        let sentinel =
            Sentinel::lock(&self.running, true).map_err(err("locking", &self.running))?;
        let blocked_by_lock = self.held_lock()?.is_some();
        let queue = sentinel
            .look_up_queue()
            .map_err(err("listing the queue of", &self.running))?;
        let probe = |path: &Path| floor::probe(path).map_err(err("probing", path));
        let mut lowest_live = None;
        if !blocked_by_lock {
            if let Some((number, path)) = queue.first() {
                lowest_live = probe(path)?.map(|_| *number);
            }
            if lowest_live.is_none() {
                self.publish()?;
                drop(sentinel);
                return Ok(());
            }
        }
        let mut highest_live = None;
        for (number, path) in queue.iter().rev() {
            if Some(*number) == lowest_live || probe(path)?.is_some() {
                highest_live = Some(*number);
                break;
            }
        }
        let number = highest_live.map_or(1, |number| number + 1);
        self.ticket = Some(Ticket::file(
            &self.running,
            number,
            &record(&self.name, &self.scope),
        )?);
        drop(sentinel);
        Ok(())
    }

    /// Probes every `*.lock`: the first live one that overlaps our scope.
    fn held_lock(&self) -> Result<Option<PathBuf>, String> {
        let index = ScopeIndex::new(&self.scope);
        let mut held = None;
        floor::scan(&self.running, |path, live, record| {
            if held.is_none() && live && index.overlaps(record.scope()) {
                held = Some(path.to_path_buf());
            }
        })
        .map_err(err("scanning", &self.running))?;
        Ok(held)
    }
}

fn record(name: &str, scope: &[String]) -> LockRecord {
    LockRecord::new(
        name,
        scope.to_vec(),
        std::process::id(),
        "2026-11-29T12:00:00.000000+00:00",
    )
    .with_flock_liveness()
}
