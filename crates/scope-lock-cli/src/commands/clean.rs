//! `scope-lock clean`: reclaim stale locks and what killed acquirers left behind.
//!
//! The library's scan does the work, under the directory sentinel: it removes lock files whose
//! holders are gone and publications whose publishers died mid-way, moves unheld lock files
//! with unreadable records aside, and leaves live locks and every other file alone. This
//! command runs that scan and reports what it did.

use scope_lock::{LockManager, ProblemKind};

use crate::cli::CleanArgs;
use crate::exit::{self, Failure};
use crate::output::{self, ListingJson};

pub(crate) fn clean(manager: &LockManager, args: &CleanArgs) -> Result<u8, Failure> {
    let listing = manager.list_locks()?;
    let running_dir = manager.running_dir();
    if args.json {
        output::print_json(&ListingJson::new(running_dir, &listing))?;
        return Ok(exit::SUCCESS);
    }
    let mut out = String::new();
    for path in listing.reclaimed() {
        out.push_str(&format!("reclaimed {} (holder gone)\n", path.display()));
    }
    for problem in listing.problems() {
        let verb = match problem.kind() {
            ProblemKind::Invalid {
                moved_to: Some(_), ..
            } => "moved aside",
            _ => "left alone",
        };
        out.push_str(&format!("{verb}: {problem}\n"));
    }
    if listing.reclaimed().is_empty() && listing.problems().is_empty() {
        out.push_str(&format!("nothing to clean in {}\n", running_dir.display()));
    }
    let live = listing.locks().len();
    out.push_str(&format!(
        "{live} live lock{} left alone\n",
        if live == 1 { "" } else { "s" }
    ));
    output::print_text(&out)?;
    Ok(exit::SUCCESS)
}
