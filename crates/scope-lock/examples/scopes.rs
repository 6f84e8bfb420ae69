//! The README's example: acquire a scope, be refused an overlapping one, release.
//! Run from a scratch directory: it creates `.loops/.running/` in the current directory.

use scope_lock::{LockManager, LockRequest};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let locks = LockManager::default(); // .loops/.running/ under the current directory

    let guard = locks.try_acquire(
        &LockRequest::new("docs-fixer")
            .scope(["docs/", "README.md"]) // empty scope = the whole project
            .instance_id("docs-fixer-run-7") // optional: the lock file's name
            .singleton(false),
    )?;
    // The lock file is open and flocked for as long as `guard` lives.

    match locks.try_acquire(&LockRequest::new("site").scope(["docs/api"])) {
        Err(err) if err.conflict().is_some() => println!("busy: {err}"),
        // "scope is locked: /repo/docs/api overlaps /repo/docs: held by loop `docs-fixer`
        //  (pid 4242, this process) since 2026-11-27T21:33:58.129615+00:00 in ..."
        other => drop(other),
    }

    guard.release()?; // or just drop it
    Ok(())
}
