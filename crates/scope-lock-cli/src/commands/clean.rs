//! `scope-lock clean`: reclaim stale locks and what killed acquirers left behind.
//!
//! The library's scan does the work, under the directory sentinel: it removes lock files whose
//! holders are gone, publications whose publishers died mid-way and the tickets of waiters
//! killed while waiting (`.running/.queue/`), moves unheld lock files with unreadable records
//! aside, and leaves live locks, live waiters' tickets and every other file alone. This
//! command runs that scan and reports what it did. With `--dry-run` it runs the library's
//! dry run instead, the same scan changing nothing, and reports what it would do.
//!
//! On etcd there is nothing to clean: a holder's keys are attached to its lease, which etcd
//! ends when the holder dies or stops renewing it for a whole TTL, and nothing else is ever
//! written. `clean` says so and lists what is held, changing nothing.

use scope_lock::etcd::EtcdLockManager;
use scope_lock::{LockManager, ProblemKind};

use crate::backend::Backend;
use crate::cli::CleanArgs;
use crate::exit::{self, Failure};
use crate::output::{self, EtcdListingJson, ListingJson};

pub(crate) fn clean(backend: &Backend, args: &CleanArgs) -> Result<u8, Failure> {
    match backend {
        Backend::Local { manager, .. } => clean_directory(manager, args),
        Backend::Etcd(manager) => clean_etcd(manager, args),
    }
}

fn clean_etcd(manager: &EtcdLockManager, args: &CleanArgs) -> Result<u8, Failure> {
    let listing = manager.list_locks()?;
    if args.json {
        output::print_json(&EtcdListingJson::new(manager, &listing))?;
        return Ok(exit::SUCCESS);
    }
    let live = listing.locks().len();
    let mut out = format!(
        "nothing to clean on etcd (project {}): the keys of a holder that died or stopped \
         renewing its lease go with the lease, after its TTL\n{live} live lock{} left alone\n",
        manager.config().project(),
        if live == 1 { "" } else { "s" }
    );
    if args.dry_run {
        out.push_str("dry run: nothing was changed\n");
    }
    output::print_text(&out)?;
    Ok(exit::SUCCESS)
}

fn clean_directory(manager: &LockManager, args: &CleanArgs) -> Result<u8, Failure> {
    let listing = if args.dry_run {
        manager.list_locks_dry_run()?
    } else {
        manager.list_locks()?
    };
    let running_dir = manager.running_dir();
    // What was done, or with --dry-run, what would be.
    let (reclaim, remove, leave, left) = if listing.is_dry_run() {
        (
            "would reclaim",
            "would remove",
            "would leave alone",
            "would be left alone",
        )
    } else {
        ("reclaimed", "removed", "left alone", "left alone")
    };
    if args.json {
        output::print_json(&ListingJson::new(running_dir, &listing))?;
        return Ok(exit::SUCCESS);
    }
    let mut out = String::new();
    for path in listing.reclaimed() {
        out.push_str(&format!("{reclaim} {} (holder gone)\n", path.display()));
    }
    for path in listing.orphans() {
        out.push_str(&format!(
            "{remove} {} (left by an acquirer killed while publishing)\n",
            path.display()
        ));
    }
    for path in listing.stale_tickets() {
        out.push_str(&format!(
            "{remove} {} (ticket of a waiter killed while waiting)\n",
            path.display()
        ));
    }
    for problem in listing.problems() {
        let verb = match problem.kind() {
            ProblemKind::MovedAside {
                moved_to: Some(_), ..
            } => "moved aside",
            ProblemKind::WouldMoveAside { .. } => "would move aside",
            _ => leave,
        };
        out.push_str(&format!("{verb}: {problem}\n"));
    }
    if listing.reclaimed().is_empty()
        && listing.orphans().is_empty()
        && listing.stale_tickets().is_empty()
        && listing.problems().is_empty()
    {
        out.push_str(&format!("nothing to clean in {}\n", running_dir.display()));
    }
    let live = listing.locks().len();
    out.push_str(&format!(
        "{live} live lock{} {left}\n",
        if live == 1 { "" } else { "s" }
    ));
    if listing.is_dry_run() {
        out.push_str("dry run: nothing was changed\n");
    }
    output::print_text(&out)?;
    Ok(exit::SUCCESS)
}
