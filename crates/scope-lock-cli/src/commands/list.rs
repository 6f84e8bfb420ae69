//! `scope-lock list`: the live locks and the waiters, and every lock file that is not a live
//! lock. A look that changes nothing: the library's dry run, which writes nothing (not even the
//! directory sentinel), so `list` works on a directory it may not write; what `clean` would do
//! is reported, not done. On etcd: every lock and waiter of the project.

use scope_lock::LockListing;

use crate::backend::Backend;
use crate::cli::ListArgs;
use crate::exit::{self, Failure};
use crate::output::{self, EtcdListingJson, ListingJson};
use crate::table::{self, Style};

pub(crate) fn list(backend: &Backend, args: &ListArgs) -> Result<u8, Failure> {
    let style = Style {
        headings: !args.noheadings,
        raw: args.raw,
    };
    let plain = style.headings && !style.raw;
    let (rows, reports) = match backend {
        Backend::Local { manager, .. } => {
            let listing = manager.list_locks_dry_run()?;
            let running_dir = manager.running_dir();
            if args.json {
                output::print_json(&ListingJson::new(running_dir, &listing))?;
                return Ok(exit::SUCCESS);
            }
            let empty = listing.locks().is_empty() && listing.waiters().is_empty();
            let rows = if empty && plain && args.output.is_none() {
                format!("no live locks or waiters in {}\n", running_dir.display())
            } else {
                table::render(&listing, args.output.as_ref(), style)
            };
            (rows, reports(&listing))
        }
        Backend::Etcd(manager) => {
            let listing = manager.list_locks()?;
            if args.json {
                output::print_json(&EtcdListingJson::new(manager, &listing))?;
                return Ok(exit::SUCCESS);
            }
            let config = manager.config();
            let empty = listing.locks().is_empty() && listing.waiters().is_empty();
            let rows = if empty && plain && args.output.is_none() {
                format!(
                    "no live locks or waiters in project {} on etcd {}\n",
                    config.project(),
                    config.endpoints().join(",")
                )
            } else {
                table::render_etcd(&listing, args.output.as_ref(), style)
            };
            (rows, String::new())
        }
    };
    if plain {
        output::print_text(&(rows + &reports))?;
    } else {
        // Scripts read the rows from stdout; what else was found is for people.
        output::print_text(&rows)?;
        eprint!("{reports}");
    }
    Ok(exit::SUCCESS)
}
/// What the look found beside the live locks and waiters, and what `clean` would do about it.
fn reports(listing: &LockListing) -> String {
    let mut out = String::new();
    if !listing.problems().is_empty() {
        out.push_str("\nnot live locks:\n");
        for problem in listing.problems() {
            out.push_str(&format!("  {problem}\n"));
        }
    }
    let removable = [
        (listing.reclaimed(), "stale (holder gone)"),
        (
            listing.orphans(),
            "left by acquirers killed while publishing",
        ),
        (
            listing.stale_tickets(),
            "tickets of waiters killed while waiting",
        ),
    ];
    for (paths, what) in removable {
        if !paths.is_empty() {
            out.push_str(&format!("\n{what}; `scope-lock clean` would remove:\n"));
            for path in paths {
                out.push_str(&format!("  {}\n", path.display()));
            }
        }
    }
    out
}
