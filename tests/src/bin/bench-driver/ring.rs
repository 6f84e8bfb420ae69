//! The fair floor: N processes passing the turn in FIFO order by the cheapest wake-up there
//! is, a one-byte token written into the next process's FIFO. Process `k` holds the turn
//! after reading the token from `ring-k` and passes it by writing into `ring-(k+1 mod N)`, so
//! every turn wakes exactly one other process, as a fair lock's handoff must, and nothing
//! else happens: no files, no scans, no queue. What ours costs above this is what the lock
//! adds to a fair handoff; a flock mutex, whose releaser usually takes the lock back, pays
//! for almost no wake-ups and so measures fairness, not speed.
//!
//! Also the bare wake-up between two processes: a byte sent down a pipe to a child that
//! sends it straight back, half the round trip.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The token that passes the turn on.
pub(crate) const GO: u8 = b'g';
/// The token that says the window is over: pass it on once, then stop.
pub(crate) const STOP: u8 = b's';

/// Makes the FIFOs of a ring of `processes` in `root` (replacing any of an earlier round).
pub(crate) fn make(root: &Path, processes: u64) -> Result<(), String> {
    use rustix::fs::{CWD, FileType, Mode, mknodat};
    for k in 0..processes {
        let path = fifo(root, k);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(format!("{}: {err}", path.display())),
        }
        mknodat(CWD, &path, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
            .map_err(|err| format!("mkfifo {}: {err}", path.display()))?;
    }
    Ok(())
}

pub(crate) fn fifo(root: &Path, k: u64) -> PathBuf {
    root.join(format!("ring-{k}"))
}

/// One member of the ring: its own FIFO to read the turn from, the next one's to pass it on.
pub(crate) struct Member {
    inbox: File,
    next: File,
    /// Worker 0 holds the turn first, without reading.
    has_turn: bool,
}

impl Member {
    pub(crate) fn join(root: &Path, worker: u64, processes: u64) -> Result<Self, String> {
        // Read-write, so that opening never waits for the other end, and a write into the
        // FIFO of a member that has stopped still has a reader (ourselves) and cannot fail.
        let open = |k: u64| {
            let path = fifo(root, k);
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|err| format!("{}: {err}", path.display()))
        };
        Ok(Self {
            inbox: open(worker)?,
            next: open((worker + 1) % processes.max(1))?,
            has_turn: worker == 0,
        })
    }

    /// Waits for the turn; `false` when the token says the run is over.
    pub(crate) fn take_turn(&mut self) -> Result<bool, String> {
        if std::mem::take(&mut self.has_turn) {
            return Ok(true);
        }
        let mut token = [0u8];
        self.inbox
            .read_exact(&mut token)
            .map_err(|err| format!("reading the ring's token: {err}"))?;
        Ok(token[0] == GO)
    }

    /// Passes the turn on; with `stop`, tells the ring the run is over.
    pub(crate) fn pass(&mut self, stop: bool) -> Result<(), String> {
        self.next
            .write_all(&[if stop { STOP } else { GO }])
            .map_err(|err| format!("passing the ring's token: {err}"))
    }
}

/// `bench-driver pong`: sends every byte of stdin straight back on stdout, until end of input.
pub(crate) fn pong() -> Result<(), String> {
    let (mut input, mut output) = (std::io::stdin().lock(), std::io::stdout().lock());
    let mut byte = [0u8];
    loop {
        match input.read(&mut byte) {
            Ok(0) => return Ok(()),
            Ok(_) => output
                .write_all(&byte)
                .and_then(|()| output.flush())
                .map_err(|err| format!("pong: {err}"))?,
            Err(err) => return Err(format!("pong: {err}")),
        }
    }
}

/// The bare wake-up between two processes, µs, sorted: half of each of `trips` round trips of
/// one byte through a pair of pipes to a `pong` child.
pub(crate) fn wakeups(exe: &Path, trips: usize) -> Result<Vec<f64>, String> {
    let mut child = Command::new(exe)
        .arg("pong")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|err| format!("starting pong: {err}"))?;
    let result = (|| {
        let to = child.stdin.as_mut().ok_or("pong has no stdin")?;
        let from = child.stdout.as_mut().ok_or("pong has no stdout")?;
        let mut byte = [0u8];
        let mut halves = Vec::with_capacity(trips);
        // One trip first, so that the child is running and its pages are in.
        for trip in 0..=trips {
            let started = Instant::now();
            to.write_all(b"p")
                .and_then(|()| from.read_exact(&mut byte))
                .map_err(|err| format!("pong: {err}"))?;
            if trip > 0 {
                halves.push(started.elapsed().as_secs_f64() * 1e6 / 2.0);
            }
        }
        halves.sort_by(f64::total_cmp);
        Ok(halves)
    })();
    drop(child.stdin.take());
    let status = child.wait().map_err(|err| format!("reaping pong: {err}"))?;
    if result.is_ok() && !status.success() {
        return Err(format!("pong exited with {status}"));
    }
    result
}
