//! `scope-lock break`: its flags and help.

use clap::Args;

/// Show who holds a lock; with --kill, stop its holders and wait until the lock is free.
///
/// A holder is a process that has a descriptor of the lock file holding its flock (read from
/// /proc), never the pid the file names, which proves nothing. --kill sends SIGTERM to the
/// topmost holder (a `scope-lock run`, which passes it on to CMD), SIGKILL to every holder if
/// the lock is still held after the grace period, and waits until the lock is free. It never
/// signals pid 1, itself or its ancestors, a process of another pid namespace, or one whose uid
/// is not the lock file's owner; each signal goes through a pidfd, so a reused pid is never
/// hit. When no holder may be signalled, it says why and what to do instead.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  scope-lock break docs-fixer
  scope-lock break docs-fixer --kill
  scope-lock break gen/run-7 --kill --grace 30
  scope-lock break half-written --force")]
pub(crate) struct BreakArgs {
    /// The lock's name: its instance id, or its loop name (as `list` shows it).
    #[arg(value_name = "NAME")]
    pub(crate) name: String,

    /// Signal the holders (SIGTERM, then SIGKILL) and wait until the lock is free.
    #[arg(long)]
    pub(crate) kill: bool,

    /// Seconds to wait after SIGTERM before SIGKILL, and after SIGKILL before giving up.
    #[arg(long, value_name = "SECS", default_value_t = 10, requires = "kill")]
    pub(crate) grace: u64,

    /// Move the lock file aside now (to a dot file beside it, never deleted) if nobody flocks
    /// it and its record cannot be read: for a file that blocks every scope because nothing
    /// proves it alive or dead, when you know no little-loops process is writing it.
    #[arg(long, conflicts_with = "kill")]
    pub(crate) force: bool,

    /// Print one JSON document at the end instead of lines as they happen (see docs/cli.md,
    /// "JSON output"); a failure is in it too, with the status unchanged.
    #[arg(long)]
    pub(crate) json: bool,
}
