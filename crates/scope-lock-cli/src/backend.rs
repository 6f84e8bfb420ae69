//! Where the locks are: the loops directory (`--loops-dir`), or etcd (`--etcd`), for every
//! command. The commands share the requests, conflicts and messages; only what each backend
//! alone has (lock files and their holders' processes, keys and leases) differs.

use std::path::{Path, PathBuf};

use scope_lock::etcd::{EtcdConfig, EtcdGuard, EtcdLockManager};
use scope_lock::{Conflict, Error, LockManager};

use crate::cli::Cli;
use crate::exit::{self, Failure};
use crate::held::HeldLock;
use crate::loops_dir::{LOOPS_DIR_VAR, LoopsDir};

/// The locks a command works on.
pub(crate) enum Backend {
    /// A loops directory's `.running/`.
    Local {
        manager: LockManager,
        loops_dir: LoopsDir,
    },
    /// One project's keys in etcd.
    Etcd(EtcdLockManager),
}

impl Backend {
    /// The backend the command line names: etcd with `--etcd` (or `SCOPE_LOCK_ETCD`), else the
    /// loops directory (which need not exist yet: see [`Backend::ensure_exists`]).
    pub(crate) fn from_cli(cli: &Cli) -> Result<Self, Failure> {
        if cli.etcd.is_empty() {
            let loops_dir =
                LoopsDir::choose(cli.loops_dir.clone(), std::env::var_os(LOOPS_DIR_VAR))?;
            let manager = LockManager::new(loops_dir.path()).with_invalid_grace(cli.invalid_grace);
            return Ok(Self::Local { manager, loops_dir });
        }
        let project = cli.project.as_deref().ok_or_else(|| {
            Failure::new(
                exit::USAGE,
                "--etcd needs --project NAME (or SCOPE_LOCK_PROJECT): the name every clone of \
                 the project gives, so that clones at different paths share their locks",
            )
        })?;
        let mut config = EtcdConfig::new(cli.etcd.iter().cloned(), project);
        if let Some(root) = &cli.root {
            config = config.with_root(root);
        }
        if let Some(ttl) = cli.lease_ttl {
            config = config.with_lease_ttl(ttl);
        }
        Ok(Self::Etcd(EtcdLockManager::connect(config)?))
    }

    /// Fails when the loops directory does not exist (see [`LoopsDir::ensure_exists`]); a
    /// project on etcd always does.
    pub(crate) fn ensure_exists(&self) -> Result<(), Failure> {
        match self {
            Self::Local { loops_dir, .. } => loops_dir.ensure_exists(),
            Self::Etcd(_) => Ok(()),
        }
    }

    /// Where the locks are, for messages and JSON: `.running/`, or the project's prefix of
    /// lock keys (`<prefix>/<project>/locks`).
    pub(crate) fn names_under(&self) -> PathBuf {
        match self {
            Self::Local { manager, .. } => manager.running_dir().to_path_buf(),
            Self::Etcd(manager) => locks_prefix(manager),
        }
    }

    /// What would block `request` now: an acquire of its loop (and instance) with `by_name`,
    /// else of its scope by any name.
    pub(crate) fn find_conflict(
        &self,
        request: &scope_lock::LockRequest,
        by_name: bool,
    ) -> Result<Option<Conflict>, Error> {
        match self {
            Self::Local { manager, .. } if by_name => manager.find_conflict(request),
            Self::Local { manager, .. } => manager.find_scope_conflict(request),
            Self::Etcd(manager) if by_name => manager.find_conflict(request),
            Self::Etcd(manager) => manager.find_scope_conflict(request),
        }
    }
}

/// The key prefix of a project's locks, as a path (lock names are what follows it).
pub(crate) fn locks_prefix(manager: &EtcdLockManager) -> PathBuf {
    let config = manager.config();
    Path::new(config.key_prefix())
        .join(config.project())
        .join("locks")
}

/// A lock on etcd can be lost: its lease expires when this process cannot renew it for a whole
/// TTL (stopped, or cut off), or someone deletes its key. CMD cannot hold it for us: nothing is
/// inherited, and the lock ends at the TTL if this process dies.
impl HeldLock for EtcdGuard {
    fn token(&self) -> u64 {
        EtcdGuard::token(self)
    }

    fn descriptor(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }

    fn on_lost(&self, then: Box<dyn FnOnce() + Send>) {
        EtcdGuard::on_lost(self, then);
    }

    fn is_lost(&self) -> bool {
        EtcdGuard::is_lost(self)
    }

    fn describe(&self) -> String {
        format!("etcd key {}", self.key())
    }

    fn location(&self) -> PathBuf {
        PathBuf::from(self.key())
    }

    fn release(self) -> Result<(), Error> {
        EtcdGuard::release(self)
    }
}
