//! `scope-lock check`: would an acquire conflict right now?

use scope_lock::LockManager;

use crate::cli::CheckArgs;
use crate::exit::{self, Failure};
use crate::output::{self, CheckJson};

pub(crate) fn check(manager: &LockManager, args: &CheckArgs) -> Result<u8, Failure> {
    let request = args.request();
    let conflict = manager.find_conflict(&request)?;
    let running_dir = manager.running_dir();
    if args.json {
        output::print_json(&CheckJson::new(running_dir, conflict.as_ref()))?;
    }
    match conflict {
        None => {
            if !args.json {
                output::print_text(&format!("free: {}\n", request.scope_entries().join(" ")))?;
            }
            Ok(exit::SUCCESS)
        }
        Some(conflict) => {
            eprintln!(
                "scope-lock: busy: {}",
                output::describe_conflict(running_dir, &conflict)
            );
            Ok(exit::CONTENTION)
        }
    }
}
