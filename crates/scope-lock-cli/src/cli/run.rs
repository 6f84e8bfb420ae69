//! `scope-lock run`: its flags and help.

use std::ffi::OsString;
use std::time::Duration;

use clap::Args;

use super::lock::LockArgs;
use super::parse_seconds;

/// Run CMD holding a scope lock; fail fast (exit 75, CMD not run) when the scope is held,
/// unless --wait or -w SECS says to wait for it.
///
/// Exits with CMD's status (128+N if CMD was killed by signal N). If a live lock holds an
/// overlapping scope, one line on stderr names the holder. With --wait, scope-lock waits for
/// the scope as long as it takes; with -w SECS, for at most SECS (75 if they pass).
///
/// A `run` inside CMD (a nested run: CMD, or anything it starts, runs `scope-lock run` again)
/// may take a scope that overlaps its parent's: a lock held by one of a process's ancestors
/// never blocks it, so a job can run its own steps under locks of their own without locking
/// itself out.
///
/// SIGINT and SIGTERM that a process sends to scope-lock are passed on to CMD; the lock is
/// released once CMD has ended. Ctrl-C in a terminal is not passed on when CMD is in
/// scope-lock's process group, since the terminal signalled CMD too; a signal sent to the whole
/// group by a process (kill -INT -PGID) does reach CMD twice. CMD inherits the lock's descriptor
/// (as with flock(1)): if scope-lock itself is killed, the lock lives on until CMD ends.
#[derive(Debug, Args)]
#[command(
    override_usage = "scope-lock run [OPTIONS] --name <NAME> <CMD> [ARGS]...\n       \
                      scope-lock run [OPTIONS] --name <NAME> -c <COMMAND>",
    after_help = concat!(
    "Examples:\n",
    "  scope-lock run --name docs-fixer --scope docs/ --scope README.md make docs\n",
    "  scope-lock run --name nightly --singleton -- ./nightly.sh --full\n",
    "  scope-lock run --name review --shared --scope src/ -- ./review.sh\n",
    "  scope-lock run --name site --scope docs/ -w 600 make site\n",
    "  scope-lock run --name site --scope docs/ --wait -c 'make site && make check'\n",
    "  scope-lock run --name gen --instance-id gen/run-7 --scope out/7 -- make -C out/7\n",
    "\n",
    "Compared with flock(1):\n",
    "  - It fails fast by default (flock waits): a held scope means another job is working on\n",
    "    those paths, and a script should decide to queue behind it (--wait, -w SECS), not\n",
    "    find out later that it did. -n is accepted and changes nothing.\n",
    "  - A conflict exits 75 (EX_TEMPFAIL, \"try again later\"), not 1, so that it cannot be\n",
    "    taken for a failure of CMD or of scope-lock; -E 1 gives flock's status.\n",
    "  - -w SECS and --timeout SECS are one option, and imply waiting, as flock's -w does.\n",
    "  - -c runs its command line with `sh -c` (flock uses $SHELL): a script means the same\n",
    "    whatever the login shell of whoever runs it.\n",
    "  - It locks a scope of paths under a name, not a file or a descriptor: there is no\n",
    "    unlock (-u) and no `flock FD` form, since a lock needs a record that says who holds\n",
    "    which paths. -s takes a shared lock, as flock's does.\n",
    "  - Options come before CMD: everything from CMD on is CMD's, as with flock. `--` before\n",
    "    CMD is needed only when CMD starts with `-`.\n",
    "\n",
    exit_status_table!(),
))]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) lock: LockArgs,

    /// If the scope is held, wait for it (in arrival order among overlapping waiters) instead
    /// of exiting 75, as long as it takes. One "Blocking: waiting for scope ..." line goes to
    /// stderr when the wait starts.
    #[arg(long)]
    pub(crate) wait: bool,

    /// Wait for the scope for at most SECS seconds (decimals allowed), then exit 75; implies
    /// --wait (flock's -w). 0 tries once.
    #[arg(
        short = 'w',
        long,
        value_name = "SECS",
        allow_hyphen_values = true,
        value_parser = parse_seconds
    )]
    pub(crate) timeout: Option<Duration>,

    /// Do not wait if the scope is held: the default, accepted for flock(1)'s -n.
    #[arg(short = 'n', long, conflicts_with_all = ["wait", "timeout"])]
    pub(crate) nonblock: bool,

    /// The exit status when the scope is held (or the wait timed out), 1 to 255; 75 unless
    /// given (flock(1)'s -E; its default is 1).
    #[arg(
        short = 'E',
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u8).range(1..)
    )]
    pub(crate) conflict_exit_code: Option<u8>,

    /// Run COMMAND with `sh -c` instead of CMD (flock's -c).
    #[arg(
        short = 'c',
        long = "command",
        value_name = "COMMAND",
        conflicts_with = "cmd"
    )]
    pub(crate) shell_command: Option<OsString>,

    /// If the lock is lost while CMD runs (on etcd, when this process could not renew its
    /// lease for a whole TTL: stopped, or cut off), send CMD SIGTERM after SECS seconds
    /// (decimals allowed) unless it has ended by then; scope-lock then exits 76 once CMD has
    /// ended. A local lock is never lost.
    #[arg(long, value_name = "SECS", default_value = "0", value_parser = parse_seconds)]
    pub(crate) lost_grace: Duration,

    /// Report the outcome as one JSON line on stderr, once it is known (stdout is CMD's):
    /// `ran` with CMD's status, `busy` or `timed_out` with the holder, or `failed` (see
    /// docs/cli.md, "JSON output"). scope-lock's own other lines on stderr are left out.
    #[arg(long)]
    pub(crate) json: bool,

    /// The command to run, and its arguments: everything from the first word that is not an
    /// option on (`--` before it when it starts with `-`).
    #[arg(
        id = "cmd",
        value_name = "CMD",
        trailing_var_arg = true,
        num_args = 1..,
        required_unless_present = "shell_command"
    )]
    pub(crate) command: Vec<OsString>,
}

impl RunArgs {
    /// Whether to wait for a held scope: --wait, or a timeout to wait up to.
    pub(crate) fn waits(&self) -> bool {
        self.wait || self.timeout.is_some()
    }

    /// The program and its arguments: CMD as given, or `sh -c COMMAND`.
    pub(crate) fn program(&self) -> Vec<OsString> {
        match &self.shell_command {
            Some(line) => vec!["sh".into(), "-c".into(), line.clone()],
            None => self.command.clone(),
        }
    }
}
