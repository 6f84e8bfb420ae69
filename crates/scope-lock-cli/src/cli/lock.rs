//! What a request locks, as `run` and `check` take it from the command line.

use std::path::PathBuf;

use clap::Args;
use scope_lock::{LockMode, LockRequest};

use super::non_empty_path;

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

pub(super) fn request(
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
