//! What the proof of ancestry reads from the system (`/proc`, through [`sys`]), behind a trait
//! so that the rules of [`Ancestry`](super::Ancestry) can be tested on made-up facts.

use crate::sys::{self, FileId, ProcessIdentity};

/// What the proof reads from the system; a trait so that the rules can be tested on any facts.
pub(crate) trait World {
    /// This process's pid.
    fn own_pid(&self) -> u32;
    /// This process's identity, `None` when `/proc` is not provably our namespace's.
    fn own_identity(&self) -> Option<ProcessIdentity>;
    /// Our ancestors' pids, nearest first, without us and without pid 1, and whether the
    /// chain was read to its end (not cut short by a parent that could not be read).
    fn ancestors(&self) -> (Vec<u32>, bool);
    /// The pids `/proc/locks` names as holding an flock on `file`.
    fn flock_holders(&self, file: FileId) -> Vec<u32>;
    /// Whether a descriptor of process `pid` holds the flock on `file`.
    fn holds_flock_through_fd(&self, pid: u32, file: FileId) -> bool;
    /// When process `pid` started, in clock ticks after boot, as `/proc` says.
    fn start_ticks(&self, pid: u32) -> Option<u64>;
    /// Whether a pid number names one process system-wide (no pid namespaces here).
    fn pids_are_global(&self) -> bool;
}

/// The running system.
#[derive(Debug, Default)]
pub(crate) struct System;

impl World for System {
    fn own_pid(&self) -> u32 {
        std::process::id()
    }

    fn own_identity(&self) -> Option<ProcessIdentity> {
        sys::own_identity()
    }

    fn ancestors(&self) -> (Vec<u32>, bool) {
        sys::ancestor_pids()
    }

    fn flock_holders(&self, file: FileId) -> Vec<u32> {
        sys::flock_holders_of(file)
    }

    fn holds_flock_through_fd(&self, pid: u32, file: FileId) -> bool {
        // Unreadable descriptors (another user's process) prove nothing; /proc/locks may.
        sys::holds_flock_through_fd(pid, file).unwrap_or(false)
    }

    fn start_ticks(&self, pid: u32) -> Option<u64> {
        sys::start_ticks_of(pid)
    }

    fn pids_are_global(&self) -> bool {
        !sys::HAS_PID_NAMESPACES
    }
}
