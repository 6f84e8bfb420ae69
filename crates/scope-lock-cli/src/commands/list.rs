//! `scope-lock list`: every live lock, every lock file that is not one, what was reclaimed.

use scope_lock::LockManager;

use crate::cli::ListArgs;
use crate::exit::{self, Failure};
use crate::output::{self, ListingJson};

pub(crate) fn list(manager: &LockManager, args: &ListArgs) -> Result<u8, Failure> {
    let listing = manager.list_locks()?;
    let running_dir = manager.running_dir();
    if args.json {
        output::print_json(&ListingJson::new(running_dir, &listing))?;
    } else {
        output::print_text(&output::listing_text(running_dir, &listing))?;
    }
    Ok(exit::SUCCESS)
}
