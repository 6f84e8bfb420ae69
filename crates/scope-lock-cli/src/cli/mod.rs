//! The command line, declared with clap's derive: the global options and the exit statuses
//! here, each subcommand's flags and help in the file named as its code in `commands/`
//! (`run.rs`, `list.rs`, `check.rs`, `clean.rs`, `brk.rs`, `docs.rs`), and the lock a request
//! names, which `run` and `check` share, in `lock.rs`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{OsStringValueParser, TypedValueParser};
use clap::{Parser, Subcommand};

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

// Declared after `exit_status_table!`, which `run`'s help shows: a macro is seen only by
// the code that follows it.
mod brk;
mod check;
mod clean;
mod docs;
mod list;
mod lock;
mod run;

pub(crate) use brk::BreakArgs;
pub(crate) use check::CheckArgs;
pub(crate) use clean::CleanArgs;
pub(crate) use docs::{CompletionsArgs, ManArgs};
pub(crate) use list::ListArgs;
pub(crate) use run::RunArgs;

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

/// A number of seconds, decimals allowed: `10`, `0.5`.
pub(super) fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("`{text}` is not a number of seconds from 0 up"))
}

/// A scope entry: any path but the empty one, which names no path (the whole project is `.`).
/// Taken as the OS gives it, so a path that is not UTF-8 is locked byte for byte.
pub(super) fn non_empty_path() -> impl TypedValueParser<Value = PathBuf> {
    OsStringValueParser::new().try_map(|path| {
        if path.is_empty() {
            return Err("an empty path names nothing; the whole project is `.`");
        }
        Ok(PathBuf::from(path))
    })
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
