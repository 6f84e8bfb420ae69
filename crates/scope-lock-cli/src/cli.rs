//! The command line, declared with clap's derive: every subcommand, its flags and its help.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{OsStringValueParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use scope_lock::{LockMode, LockRequest};

use crate::table::{self, Columns};

/// The table of exit statuses, shown by `scope-lock --help` and `scope-lock run --help`: the one
/// place they are described. docs/cli.md shows it verbatim, and a test below ties each status in
/// it to the constant of `exit` that the code returns.
macro_rules! exit_status_table {
    () => {
        "\
Exit status:
  0    success (for `run`: CMD exited 0; for `check`: the scope is free)
  1    failure: the lock directory or a lock file could not be used, a holder could not be
       stopped, ... (the message names the path or input)
  2    usage: unknown flag, missing argument, invalid name or scope
  75   contention (EX_TEMPFAIL): a live lock holds the scope, or the lock directory stayed
       busy past its bound; try again later
  76   `run`: the lock was lost while CMD ran (on etcd: its lease expired); CMD was sent
       SIGTERM (after --lost-grace) and has ended
  N    `run`: CMD's own exit status; 128+N when CMD was killed by signal N;
       126 when CMD cannot be executed, 127 when it is not found"
    };
}

const ROOT_AFTER_HELP: &str = concat!(
    "\
Examples:
  scope-lock run --name docs-fixer --scope docs/ -- make docs
  scope-lock run --name site --scope docs/ --wait --timeout 600 -- make site
  scope-lock list
  scope-lock list --json | jq -r '.locks[].name'
  scope-lock check --scope docs/api && echo free
  scope-lock clean --dry-run
  scope-lock clean
  scope-lock break docs-fixer
  scope-lock break docs-fixer --kill
  source <(scope-lock completions bash)
  scope-lock man --dir ~/.local/share/man/man1

Environment:
  SCOPE_LOCK_LOOPS_DIR   the loops directory when --loops-dir is not given (default: .loops);
                         the lock files live in its .running/ directory
  SCOPE_LOCK_ETCD        etcd endpoints when --etcd is not given: the locks are kept there
  SCOPE_LOCK_PROJECT     the project's name on etcd when --project is not given
  SCOPE_LOCK_ROOT        the project root on etcd when --root is not given

",
    exit_status_table!()
);

/// Path-scope locks for shell scripts and CI jobs: run a command while holding a set of paths,
/// so that nobody else touches them at the same time.
///
/// Lock files are those of little-loops' LockManager (<loops dir>/.running/<name>.lock); both
/// can share one directory.
#[derive(Debug, Parser)]
#[command(name = "scope-lock", version, after_help = ROOT_AFTER_HELP)]
pub(crate) struct Cli {
    /// The loops directory; lock files live in its `.running/` directory [default:
    /// $SCOPE_LOCK_LOOPS_DIR, else .loops]. Only `run` creates it: the other commands fail on
    /// one that does not exist, rather than report every scope free in the wrong place.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        value_parser = clap::builder::OsStringValueParser::new()
    )]
    pub(crate) loops_dir: Option<OsString>,

    /// How long a lock file that nobody flocks, whose record cannot be read and that names no
    /// pid must stay unchanged before it is taken for garbage and moved aside (decimals
    /// allowed). Until then it may be little-loops' lock caught half written, and it blocks
    /// every scope.
    #[arg(
        long,
        global = true,
        value_name = "SECS",
        default_value = "60",
        allow_hyphen_values = true,
        value_parser = parse_seconds
    )]
    pub(crate) invalid_grace: Duration,

    /// Keep the locks in etcd, at these endpoints (comma-separated), instead of the loops
    /// directory: for loops on several machines. Needs --project.
    #[arg(
        long,
        global = true,
        value_name = "URL[,URL...]",
        env = "SCOPE_LOCK_ETCD",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub(crate) etcd: Vec<String>,

    /// With --etcd: the project's name, the same in every clone; its locks are the keys
    /// under <prefix>/<NAME>/.
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        env = "SCOPE_LOCK_PROJECT",
        hide_env_values = true
    )]
    pub(crate) project: Option<String>,

    /// With --etcd: the project root that scopes are relative to (default: the git toplevel
    /// of the current directory). A scope outside it is refused.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "SCOPE_LOCK_ROOT",
        hide_env_values = true
    )]
    pub(crate) root: Option<PathBuf>,

    /// With --etcd: the time to live of this process's lease (decimals allowed; default 5).
    /// A holder stopped or cut off from etcd for longer loses its locks, never sooner.
    #[arg(long, global = true, value_name = "SECS", value_parser = parse_seconds)]
    pub(crate) lease_ttl: Option<Duration>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    Run(RunArgs),
    List(ListArgs),
    Check(CheckArgs),
    Clean(CleanArgs),
    Break(BreakArgs),
    Completions(CompletionsArgs),
    Man(ManArgs),
}

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

/// A number of seconds, decimals allowed: `10`, `0.5`.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("`{text}` is not a number of seconds from 0 up"))
}

/// A scope entry: any path but the empty one, which names no path (the whole project is `.`).
/// Taken as the OS gives it, so a path that is not UTF-8 is locked byte for byte.
fn non_empty_path() -> impl TypedValueParser<Value = PathBuf> {
    OsStringValueParser::new().try_map(|path| {
        if path.is_empty() {
            return Err("an empty path names nothing; the whole project is `.`");
        }
        Ok(PathBuf::from(path))
    })
}

/// What to lock: shared by `run` and `check`.
#[derive(Debug, Args)]
pub(crate) struct LockArgs {
    /// The loop's name (the lock file is `<NAME>.lock` unless --instance-id is given).
    #[arg(long, value_name = "NAME")]
    pub(crate) name: String,

    /// Name the lock file after this instance, so several instances of one loop can hold
    /// disjoint scopes at once; may contain `/` to nest.
    #[arg(long, value_name = "ID")]
    pub(crate) instance_id: Option<String>,

    /// A path (file or directory, existing or not) to lock; repeat for more. None means the
    /// whole project (`.`). With `*`, `?`, `[...]` or a `**` component it is a glob over the
    /// paths it matches; `literal:PATH` is PATH as written.
    #[arg(long, value_name = "PATH", value_parser = non_empty_path())]
    pub(crate) scope: Vec<PathBuf>,

    /// Conflict with any live singleton of the same name, whatever the scopes.
    #[arg(long)]
    pub(crate) singleton: bool,

    /// Take a shared (read) lock, as flock(1)'s -s: other shared locks may hold overlapping
    /// scopes at the same time, exclusive ones (the default) may not. A shared lock waits in
    /// line behind an exclusive one that was waiting before it.
    #[arg(long, short = 's')]
    pub(crate) shared: bool,
}

impl LockArgs {
    pub(crate) fn request(&self) -> LockRequest {
        request(
            &self.name,
            &self.scope,
            self.instance_id.as_ref(),
            self.singleton,
            self.shared,
        )
    }
}

fn request(
    name: &str,
    scope: &[PathBuf],
    id: Option<&String>,
    singleton: bool,
    shared: bool,
) -> LockRequest {
    LockRequest::new(name)
        .scope(scope)
        .optional_instance_id(id)
        .singleton(singleton)
        .with_mode(if shared {
            LockMode::Shared
        } else {
            LockMode::Exclusive
        })
}

/// List the live locks and the waiters, and every lock file that is not a live lock (with the
/// reason). A look: it changes nothing.
///
/// One row per holder (its name, loop, pid, since when, its scope and, where it can be read,
/// its command line) and per waiter (`run --wait`, in ticket order: what it waits for and
/// since when). A lock's liveness is `flock` (its file is flocked: written by this tool or the
/// library) or `pid` (its pid is alive: written by little-loops itself). Like lslocks(8), it
/// takes -o, --noheadings and --raw. Stale locks, unreadable files and dead waiters' tickets
/// are reported, with what `scope-lock clean` would do about them; `list` never removes or
/// moves anything and needs no write access to the directory. `--json` prints one JSON
/// document instead (see docs/cli.md, "JSON output").
#[derive(Debug, Args)]
#[command(after_help = list_after_help())]
pub(crate) struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(short = 'J', long, conflicts_with_all = ["output", "noheadings", "raw"])]
    pub(crate) json: bool,

    /// The columns to show, comma-separated, any case (see below); `+COLUMNS` adds them to
    /// the default ones.
    #[arg(short = 'o', long, value_name = "COLUMNS")]
    pub(crate) output: Option<Columns>,

    /// Print no heading line. Reports beside the table go to stderr.
    #[arg(short = 'n', long)]
    pub(crate) noheadings: bool,

    /// Columns one space apart, unaligned, each space, control character and backslash in a
    /// cell written `\xHH`, an empty cell `-`. Reports beside the table go to stderr.
    #[arg(short = 'r', long)]
    pub(crate) raw: bool,
}

fn list_after_help() -> String {
    format!(
        "{}\nExamples:\n  \
         scope-lock list\n  \
         scope-lock list -o name,pid,command --noheadings\n  \
         scope-lock list --raw -o +path | while read -r name loop pid rest; do ...; done\n  \
         scope-lock list --json | jq -r '.locks[].name'\n  \
         SCOPE_LOCK_LOOPS_DIR=/srv/repo/.loops scope-lock list",
        table::columns_help()
    )
}

/// Would acquiring this scope conflict right now? Exit 0 when free, 75 when not.
///
/// The answer can be out of date as soon as it is printed; to hold a scope, use `run`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  scope-lock check --scope docs/
  scope-lock check --name nightly --singleton --scope .
  if scope-lock check --scope docs/ 2>/dev/null; then echo free; fi")]
pub(crate) struct CheckArgs {
    /// Check as this loop: a live lock file of the same name (the instance id, else NAME)
    /// conflicts too. Without it, only the scope is checked, whatever the lock files' names.
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,

    /// Check as this instance of --name (a live lock file of the same name conflicts).
    #[arg(long, value_name = "ID", requires = "name")]
    pub(crate) instance_id: Option<String>,

    /// A path to check; repeat for more.
    #[arg(long, value_name = "PATH", required = true, value_parser = non_empty_path())]
    pub(crate) scope: Vec<PathBuf>,

    /// Check as a singleton of --name.
    #[arg(long, requires = "name")]
    pub(crate) singleton: bool,

    /// Check for a shared (read) lock: other shared locks do not make it busy.
    #[arg(long, short = 's')]
    pub(crate) shared: bool,

    /// Print JSON (`{"free": ..., "conflict": ...}`) on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

impl CheckArgs {
    /// The request checked: of --name, or, without it, of the scope alone, whose loop name
    /// nothing looks at (a singleton needs --name).
    pub(crate) fn request(&self) -> LockRequest {
        let name = self.name.as_deref().unwrap_or_default();
        let (id, singleton) = (self.instance_id.as_ref(), self.singleton);
        request(name, &self.scope, id, singleton, self.shared)
    }
}

/// Reclaim stale locks and what killed acquirers and waiters left behind.
///
/// A lock is stale when its holder is gone (its file is no longer flocked; for little-loops'
/// own files, its pid no longer exists). Live locks are never touched, and neither is any file
/// that is not a lock file (`.pid`, `.log`, `.state.json`, `.events.jsonl`, `user-stop.marker`
/// and the like stay). A lock file whose record cannot be read and that nobody holds is moved
/// aside to a dot file, never deleted. The ticket a `run --wait` killed while waiting left in
/// the waiting queue (.running/.queue/) is removed; a live waiter's ticket is left. With
/// --dry-run, nothing is changed: the same scan says what it would reclaim, move aside and
/// remove.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  scope-lock clean
  scope-lock clean --dry-run
  scope-lock clean --dry-run --json")]
pub(crate) struct CleanArgs {
    /// Print JSON (the same document as `list --json`).
    #[arg(long)]
    pub(crate) json: bool,

    /// Change nothing; say what would be reclaimed, moved aside and removed.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

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

/// Print SHELL's completion script for scope-lock, generated from this command line.
///
/// Load it in the shell you are in, or from the shell's startup file (below), or install it
/// where the shell looks for completions; each shell reads that directory when it starts, so
/// open a new one, and install again after upgrading scope-lock.
#[derive(Debug, Args)]
#[command(after_help = "\
Load (in the shell, or from ~/.bashrc, ~/.zshrc after compinit, ~/.config/fish/config.fish):
  bash: source <(scope-lock completions bash)
  zsh:  source <(scope-lock completions zsh)
  fish: scope-lock completions fish | source

Install:
  bash: mkdir -p ~/.local/share/bash-completion/completions
        scope-lock completions bash > ~/.local/share/bash-completion/completions/scope-lock
        (needs the bash-completion package loaded; for every user:
        > /usr/share/bash-completion/completions/scope-lock)
  zsh:  mkdir -p ~/.zfunc && scope-lock completions zsh > ~/.zfunc/_scope-lock
        (with `fpath+=~/.zfunc` before `compinit` in ~/.zshrc)
  fish: mkdir -p ~/.config/fish/completions
        scope-lock completions fish > ~/.config/fish/completions/scope-lock.fish")]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

/// Print the manual page scope-lock(1) (roff), generated from this command line; with --dir,
/// write it and a page for each subcommand (scope-lock-run(1), ...) into DIR.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  scope-lock man | man -l -
  scope-lock man --dir ~/.local/share/man/man1    # then: man scope-lock-run")]
pub(crate) struct ManArgs {
    /// Write scope-lock.1 and scope-lock-<command>.1 into this directory (made if missing)
    /// instead of printing scope-lock(1).
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<std::path::PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// The exit statuses are described once, in `exit_status_table!`: docs/cli.md must show
    /// that text verbatim, and each status in it must be the constant the code returns.
    #[test]
    fn the_exit_statuses_are_described_once_and_match_the_code() {
        use crate::exit;

        let table = exit_status_table!();
        let docs_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md");
        let docs = std::fs::read_to_string(docs_path)
            .unwrap_or_else(|err| panic!("cannot read {docs_path}: {err}"));
        assert!(
            docs.contains(&format!("```text\n{table}\n```\n")),
            "{docs_path} does not show the exit statuses of `scope-lock --help` verbatim:\n{table}"
        );

        // A row starts with its status after two spaces; its continuation lines are indented
        // further.
        let rows: Vec<&str> = table
            .lines()
            .filter_map(|line| line.strip_prefix("  "))
            .filter(|row| !row.starts_with(' '))
            .collect();
        let statuses: Vec<&str> = rows
            .iter()
            .filter_map(|row| row.split_whitespace().next())
            .collect();
        let shown: Vec<u8> = statuses.iter().filter_map(|it| it.parse().ok()).collect();
        assert_eq!(
            shown,
            [
                exit::SUCCESS,
                exit::FAILURE,
                exit::USAGE,
                exit::CONTENTION,
                exit::LOST
            ],
            "the table's statuses: {statuses:?}"
        );
        let commands_own = table
            .split_once("\n  N ")
            .map(|(_, rest)| rest.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        for status in [
            format!("{} when CMD cannot be executed", exit::CANNOT_EXECUTE),
            format!("{} when it is not found", exit::NOT_FOUND),
        ] {
            assert!(
                commands_own.contains(&status),
                "the row of CMD's own statuses does not say `{status}`: {commands_own:?}"
            );
        }
    }

    #[test]
    fn timeouts_are_non_negative_seconds() {
        assert_eq!(parse_seconds("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_seconds("0"), Ok(Duration::ZERO));
        for bad in ["-1", "soon", "", "NaN", "inf"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
