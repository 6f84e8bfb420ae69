//! The etcd backend (feature `etcd`): the same scopes, requests, conflicts and decisions as the
//! local lock directory, with etcd keeping the locks, for loops that run on several machines.
//! Start here; `docs/etcd.md` is the user's side.
//!
//! # The protocol, step by step
//!
//! The local protocol's steps (`crate::protocol`) map one to one; what a directory, a
//! sentinel and an flock do there, keys, revisions and leases do here.
//!
//! 1. **Session** (`session.rs`): one lease per manager, granted with the TTL and renewed by a
//!    background keep-alive (etcd's own `concurrency.Session`). Every key we write is attached
//!    to it: **liveness is the lease**, as it is the flock locally. A holder that dies or is cut
//!    off loses its keys when the lease expires, never before; a holder that cannot confirm a
//!    renewal for a whole TTL takes its lease for lost and says so ([`EtcdGuard::is_lost`]).
//! 2. **Read** (`state.rs`): every key under `<prefix>/<project>/` (`keys.rs`) in one range
//!    read at revision R: the locks (`locks/<lock name>`) and the waiters' tickets
//!    (`queue/…`), each a [`LockRecord`](crate::LockRecord) whose scope is relative to the
//!    project root (`root.rs`, `value.rs`), rebased onto this clone's root.
//! 3. **Decide**: the local decision, `protocol::decide`, on what was read: the same
//!    overlap, singleton, same-name and waiters-ahead rules, so whatever they learn (globs,
//!    shared scopes) the etcd backend learns too. Process ancestry means nothing across
//!    machines, so nothing replaces the local carve-out for nested loops: a key's holder is
//!    "this process" when it is on our lease, and never an ancestor (`state.rs`).
//! 4. **Publish** (`acquire.rs`): one transaction, *if nothing the decision depends on
//!    changed since R*, *then put the lock key under our lease and delete our ticket*, *else
//!    read the project* (so that a lost race is decided again on that answer, with no read of
//!    its own). For a first attempt that is one compare over the modification revisions of
//!    every key of the project; for a waiter with a ticket, over the lock keys, and its ticket
//!    still there: waiters who came later cannot change its decision (only those ahead count),
//!    so their arrival does not cost it the race. This is the directory sentinel's job, done
//!    by etcd's revisions. The lock key's create revision is the **fencing token**
//!    ([`EtcdGuard::token`]): it grows with every acquisition.
//! 5. **Release** (`guard.rs`): delete the lock key if its create revision is still our token.
//! 6. **Wait** (`acquire.rs`): a waiter puts a ticket under its lease, in a transaction that
//!    also reads the project; the ticket's create revision is its place (FIFO among
//!    overlapping waiters, as the local queue's numbers). It decides again with it on that
//!    read, and while something blocks it, watches the one key in its way from R+1 and wakes
//!    on its deletion (a release, a waiter ahead that got its lock or gave up, an expired
//!    lease): no polling. When the key was a lock, it decides on what it read less that key
//!    and, if free, publishes at once: a key deleted since R only ever frees, and the
//!    compare refuses the publish if anything it depends on was created or changed. A waiter
//!    ahead that is gone has most often just taken its lock, so that wake reads again.
//!    Deadlines and [`WaitObserver`](crate::WaitObserver) reports as locally.
//!
//! # Threads and runtimes
//!
//! [`EtcdLockManager`] is blocking and [`AsyncEtcdLockManager`] async; both run their etcd
//! work on one thread of the manager's own (a tokio runtime), which also keeps the lease
//! alive while the caller's threads do other things.

mod acquire;
mod config;
mod guard;
mod keys;
mod manager;
mod retry;
mod root;
mod session;
mod shared;
mod state;
mod value;

pub use config::{DEFAULT_KEY_PREFIX, DEFAULT_LEASE_TTL, DEFAULT_REQUEST_TIMEOUT, EtcdConfig};
pub use guard::EtcdGuard;
pub use manager::{AsyncEtcdLockManager, EtcdListing, EtcdLock, EtcdLockManager};

// The promise of "Threads and runtimes", kept by the compiler.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<EtcdLockManager>();
    send_and_sync::<AsyncEtcdLockManager>();
    send_and_sync::<EtcdGuard>();
};
