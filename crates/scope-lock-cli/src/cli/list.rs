//! `scope-lock list`: its flags and help.

use clap::Args;

use crate::table::{self, Columns};

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
