//! Exit statuses, and the error every command returns when it cannot do its job.
//!
//! What each status means to a user is described once, in `cli`'s `exit_status_table!` (shown
//! by `--help` and in docs/cli.md); a test there checks that its statuses are these constants.

use std::error::Error;
use std::fmt;
use std::io;

use scope_lock::ErrorKind;

/// Success; for `check`, the scope is free.
pub(crate) const SUCCESS: u8 = 0;
/// Something is wrong: a directory, a file, a process; the message names it.
pub(crate) const FAILURE: u8 = 1;
/// The command line is wrong (clap uses the same status for its own errors).
pub(crate) const USAGE: u8 = 2;
/// A live lock holds the scope: `EX_TEMPFAIL` from sysexits.h, "try again later".
pub(crate) const CONTENTION: u8 = 75;
/// `run`: the lock was lost while CMD ran (a lock on etcd whose lease expired), and CMD was
/// sent SIGTERM.
pub(crate) const LOST: u8 = 76;
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
        Self::new(status, with_causes(&err))
    }
}

/// `err` and every cause behind it on one line, `: ` between them ("cannot stat
/// /r/afile/.running: Not a directory"). The library's messages name the path and leave the
/// cause to [`Error::source`], so printing only the message drops the reason.
pub(crate) fn with_causes(err: &(dyn Error + 'static)) -> String {
    let mut line = describe(err);
    let mut cause = err.source();
    while let Some(err) = cause {
        line.push_str(": ");
        line.push_str(&describe(err));
        cause = err.source();
    }
    line
}

fn describe(err: &(dyn Error + 'static)) -> String {
    match err.downcast_ref::<io::Error>() {
        Some(err) => os_reason(err),
        None => err.to_string(),
    }
}

/// An I/O error as the system's own words ("Permission denied"), without the " (os error 13)"
/// that std's `Display` adds.
pub(crate) fn os_reason(err: &io::Error) -> String {
    let text = err.to_string();
    match err.raw_os_error() {
        Some(code) => match text.strip_suffix(&format!(" (os error {code})")) {
            Some(words) => words.to_owned(),
            None => text,
        },
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_is_on_the_line_in_the_systems_words() {
        let inner = io::Error::from_raw_os_error(rustix::io::Errno::NOTDIR.raw_os_error());
        let outer = io::Error::new(io::ErrorKind::NotADirectory, Wrapper(inner));
        assert_eq!(with_causes(&outer), "cannot stat /x: Not a directory");
        assert_eq!(
            os_reason(&io::Error::other("not an OS error")),
            "not an OS error"
        );
    }

    #[derive(Debug)]
    struct Wrapper(io::Error);

    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("cannot stat /x")
        }
    }

    impl Error for Wrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }
}
