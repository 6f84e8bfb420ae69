//! Cross-process path-scope locks that are held for their whole life.
//!
//! A *scope* is a set of paths. A loop (any long-running job) acquires its scope before it
//! starts; nobody else can acquire an overlapping scope until it releases, exits or dies.
//!
//! ```
//! use scope_lock::{LockManager, LockRequest};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let loops_dir = dir.path().join(".loops");
//! // LockManager::default() uses .loops/.running/ under the current directory.
//! let locks = LockManager::new(&loops_dir);
//! let guard = locks.try_acquire(&LockRequest::new("refactor").scope(["src/"]))?;
//! // ... the loop runs; its lock file is open and flocked all along ...
//! guard.release()?;
//! # Ok(()) }
//! ```
//!
//! The lock files are those of little-loops' `LockManager` (`scripts/little_loops/fsm/
//! concurrency.py`), so both can share one `.running/` directory. Unlike the original, where the
//! flock ended before `acquire()` returned (its BUG-423), here the lock **is** an open, flocked
//! descriptor owned by a [`ScopeGuard`]. The specification (the protocol step by step, what it
//! guarantees and the original's file format and rules) and the record of that bug, its fix
//! and the tests that prove it are in the crate's source repository, as `docs/protocol.md` and
//! `issues/BUG-423.md` (the repository has no public address yet, so they are not linked).
//!
//! # Threads
//!
//! [`LockManager`] and [`ScopeGuard`] are `Send` and `Sync` (checked when the crate compiles):
//! share a manager between threads, and release a guard on another thread than the one that
//! acquired it. Locks are per process, not per thread: a second acquire of an overlapping scope
//! from any thread of the holder's process is refused as a conflict held "by this process",
//! never a self-deadlock.
//!
//! # Cargo features
//!
//! - `etcd` (off): the module `etcd`, the same locks kept in etcd, for loops on several machines.
//!   `etcd-tls` (off) adds TLS to it.
//! - `tokio` (off): `LockManager::acquire_async` and `acquire_until_async`, which wait
//!   on tokio's blocking pool without holding a
//!   thread of the runtime and are cancelled by dropping their future, and the guard they
//!   return, `AsyncScopeGuard`, whose release and drop never block the runtime. Adds a
//!   dependency on `tokio`.
//! - `test-support` (off): constructors for hand-made [`LockRecord`]s, for tests that write
//!   lock files themselves, the pause points of the fault-injection tests, and the test
//!   fixture (`testing`). Not part of the stable API.
//!
//! Unix only (Linux and macOS); see docs/contributing.md, "Platforms".

#![deny(missing_docs, missing_debug_implementations)]
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod backoff;
mod cancel;
mod conflict;
mod error;
#[cfg(feature = "etcd")]
pub mod etcd;
mod fault;
mod glob;
mod guard;
mod holder;
mod listing;
mod manager;
mod mode;
mod protocol;
mod python_json;
mod record;
mod request;
mod scope;
mod sys;
#[cfg(feature = "test-support")]
pub mod testing;
mod wait;
#[cfg(feature = "tokio")]
mod with_tokio;

pub use cancel::CancelWait;
pub use conflict::{AcquireError, Conflict, ConflictRule};
pub use error::{Error, ErrorKind};
#[cfg(feature = "test-support")]
pub use fault::{PAUSE_AT_VAR, STEPS as PAUSE_STEPS};
pub use guard::ScopeGuard;
pub use holder::{ProcessStatus, process_holds_flock};
pub use listing::{FileKind, LiveLock, Liveness, LockListing, ProblemKind, ScanProblem, Waiter};
pub use manager::{DEFAULT_INVALID_GRACE, DEFAULT_SENTINEL_BOUND, LockManager};
pub use mode::LockMode;
pub use python_json::{deserialize_json_path, path_to_json};
pub use record::{LockRecord, MAX_RECORD_BYTES};
pub use request::{DEFAULT_LOOPS_DIR, LockRequest, RUNNING_DIR, lock_name_of};
pub use scope::{
    LITERAL_PREFIX, is_pattern, normalize_entry, normalize_entry_in, normalize_path,
    normalize_path_in, paths_overlap, resolve_scope, scopes_overlap,
};
pub use wait::{REPORT_INTERVAL, WaitObserver, Waiting};
#[cfg(feature = "tokio")]
pub use with_tokio::AsyncScopeGuard;

// The promise of "# Threads" above, kept by the compiler.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<LockManager>();
    send_and_sync::<ScopeGuard>();
    send_and_sync::<Error>();
    send_and_sync::<AcquireError>();
};

// The README's examples are compiled and run as doctests, so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
