//! `scope-lock check`: its flags and help.

use std::path::PathBuf;

use clap::Args;
use scope_lock::LockRequest;

use super::lock::request;
use super::non_empty_path;

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
