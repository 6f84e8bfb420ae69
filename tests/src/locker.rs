//! One face for both implementations, so that every scenario runs unchanged against the fix
//! and against the pre-fix port.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use scope_lock::{AcquireError, LockManager, LockMode, LockRequest, ScopeGuard};

use crate::pre_fix::PreFixLockManager;

/// Which implementation a scenario runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// The `scope-lock` crate.
    Fixed,
    /// The port of the code BUG-423 was filed against.
    PreFix,
}

/// The environment variable that points the suite at the pre-fix port (`pre-fix`).
pub const IMPL_VAR: &str = xtask_contract::env::IMPL;

impl Impl {
    /// `SCOPE_LOCK_IMPL`, `fixed` when unset.
    ///
    /// # Panics
    ///
    /// On a value other than `fixed` or `pre-fix`: a typo must not silently test the wrong thing.
    pub fn from_env() -> Self {
        match std::env::var(IMPL_VAR) {
            Err(_) => Impl::Fixed,
            Ok(value) => value
                .parse()
                .unwrap_or_else(|err| panic!("{IMPL_VAR}: {err}")),
        }
    }

    /// `fixed` or `pre-fix`.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Fixed => "fixed",
            Impl::PreFix => xtask_contract::env::IMPL_PRE_FIX,
        }
    }
}

impl FromStr for Impl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fixed" => Ok(Impl::Fixed),
            xtask_contract::env::IMPL_PRE_FIX => Ok(Impl::PreFix),
            other => Err(format!(
                "unknown implementation {other:?} (fixed or pre-fix)"
            )),
        }
    }
}

/// A lock a scenario believes it holds.
#[derive(Debug)]
pub enum Held {
    /// The fix's guard.
    Fixed(ScopeGuard),
    /// The port's `acquire` returned true for this name.
    PreFix {
        /// The loop name.
        name: String,
        /// Its lock file.
        path: PathBuf,
    },
}

impl Held {
    /// The lock file.
    pub fn path(&self) -> &Path {
        match self {
            Held::Fixed(guard) => guard.path(),
            Held::PreFix { path, .. } => path,
        }
    }

    /// The lock's fencing token: the fix's; the port has none.
    pub fn token(&self) -> Option<u64> {
        match self {
            Held::Fixed(guard) => Some(guard.token()),
            Held::PreFix { .. } => None,
        }
    }
}

/// The outcome of one acquire attempt.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "a test's value, made once per attempt and matched at once: boxing the guard buys nothing"
)]
pub enum Attempt {
    /// Acquired.
    Held(Held),
    /// Someone else holds an overlapping scope.
    Conflict,
    /// Anything else, with its message.
    Failed(String),
}

/// A release that did not succeed.
#[derive(Debug)]
pub struct ReleaseFailure {
    /// The lock file was already gone: the original's `FileNotFoundError`.
    pub not_found: bool,
    /// The error.
    pub message: String,
}

impl fmt::Display for ReleaseFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.not_found {
            write!(f, "NotFound on release: {}", self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

/// How long the fix's calls wait for the directory sentinel here. The library's default (5 s)
/// ends a wait that long with `Busy`, as it should for a stuck holder; but a fleet of many
/// processes taking the sentinel thousands of times on two loaded cores has seen one process
/// lose the race for it for 5 s (CI at load averages 10-20), which stopped the fleet with
/// `still locked by pid N after 5s` though no lock was ever wrong. The suite's question is
/// exclusion, so its fleets wait longer; `acceptance::sl_1` tests the bound itself.
const SENTINEL_BOUND: Duration = Duration::from_secs(60);

/// Either implementation, on one loops directory.
pub struct Locker {
    which: Impl,
    fixed: LockManager,
    pre_fix: PreFixLockManager<'static>,
}

impl Locker {
    /// A locker of implementation `which` on `<loops_dir>/.running`.
    pub fn new(which: Impl, loops_dir: &Path) -> Self {
        Self {
            which,
            fixed: LockManager::new(loops_dir).with_sentinel_bound(SENTINEL_BOUND),
            pre_fix: PreFixLockManager::new(loops_dir),
        }
    }

    /// One non-blocking acquire of `scope` under the loop name `name`.
    pub fn try_acquire(&self, name: &str, scope: &[String]) -> Attempt {
        self.try_acquire_in(name, scope, LockMode::Exclusive)
    }

    /// [`try_acquire`](Self::try_acquire) in `mode`. The port knows only exclusive locks: a
    /// shared attempt there fails.
    pub fn try_acquire_in(&self, name: &str, scope: &[String], mode: LockMode) -> Attempt {
        match self.which {
            Impl::Fixed => match self.fixed.try_acquire(
                &LockRequest::new(name)
                    .scope(scope.iter().cloned())
                    .with_mode(mode),
            ) {
                Ok(guard) => Attempt::Held(Held::Fixed(guard)),
                Err(AcquireError::Conflict(_)) => Attempt::Conflict,
                Err(err) => Attempt::Failed(err.to_string()),
            },
            Impl::PreFix if mode == LockMode::Shared => {
                Attempt::Failed("the pre-fix port has no shared locks".to_owned())
            }
            Impl::PreFix => match self.pre_fix.acquire(name, scope) {
                Ok(true) => Attempt::Held(Held::PreFix {
                    name: name.to_owned(),
                    path: self.pre_fix.lock_path(name),
                }),
                Ok(false) => Attempt::Conflict,
                Err(err) => Attempt::Failed(err.to_string()),
            },
        }
    }

    /// Releases `held`.
    ///
    /// # Errors
    ///
    /// The implementation's release error.
    pub fn release(&self, held: Held) -> Result<(), ReleaseFailure> {
        self.release_with(held, &|| {})
    }

    /// Releases `held` while `meanwhile` runs as close as the implementation allows to the
    /// moment the file is removed: in the port, between its `exists()` and its `unlink()`; in
    /// the fix, which exposes no such window, just before `release` (its check and unlink then
    /// run under the directory sentinel).
    ///
    /// # Errors
    ///
    /// The implementation's release error.
    pub fn release_with(&self, held: Held, meanwhile: &dyn Fn()) -> Result<(), ReleaseFailure> {
        match held {
            Held::Fixed(guard) => {
                meanwhile();
                guard.release().map_err(|err| ReleaseFailure {
                    not_found: err.io_error().map(io::Error::kind) == Some(io::ErrorKind::NotFound),
                    message: err.to_string(),
                })
            }
            Held::PreFix { name, .. } => {
                self.pre_fix
                    .release_with(&name, meanwhile)
                    .map_err(|err| ReleaseFailure {
                        not_found: err.kind() == io::ErrorKind::NotFound,
                        message: err.to_string(),
                    })
            }
        }
    }
}
