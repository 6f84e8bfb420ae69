//! `scope-lock clean`: its flags and help.

use clap::Args;

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
