//! Exit statuses, and the error every command returns when it cannot do its job.

use std::fmt;

use scope_lock::ErrorKind;

/// Success; for `check`, the scope is free.
pub(crate) const SUCCESS: u8 = 0;
/// Something is wrong: a directory, a file, a process; the message names it.
pub(crate) const FAILURE: u8 = 1;
/// The command line is wrong (clap uses the same status for its own errors).
pub(crate) const USAGE: u8 = 2;
/// A live lock holds the scope: `EX_TEMPFAIL` from sysexits.h, "try again later".
pub(crate) const CONTENTION: u8 = 75;
/// `run`: CMD exists but cannot be executed (as POSIX shells report it).
pub(crate) const CANNOT_EXECUTE: u8 = 126;
/// `run`: CMD is not found (as POSIX shells report it).
pub(crate) const NOT_FOUND: u8 = 127;

/// A command that could not do its job: the message for stderr and the exit status.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(status: u8, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<scope_lock::Error> for Failure {
    fn from(err: scope_lock::Error) -> Self {
        let status = match err.kind() {
            // A name or scope given on the command line that cannot be one.
            ErrorKind::InvalidName | ErrorKind::InvalidScope => USAGE,
            // The directory's sentinel stayed locked past the manager's bound: someone else is
            // in the way, and trying again later may succeed.
            ErrorKind::Busy => CONTENTION,
            _ => FAILURE,
        };
        Self::new(status, err.to_string())
    }
}
