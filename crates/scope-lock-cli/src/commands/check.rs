//! `scope-lock check`: would an acquire conflict right now?

use scope_lock::{Conflict, Error, LockManager};

use crate::cli::CheckArgs;
use crate::exit::{self, Failure};
use crate::loops_dir::LoopsDir;
use crate::output::{self, CheckJson};

pub(crate) fn check(
    manager: &LockManager,
    args: &CheckArgs,
    loops_dir: &LoopsDir,
) -> Result<u8, Failure> {
    let conflict = find(manager, args)?;
    if conflict.is_none() {
        // A directory that is not there holds no lock: "free" would be true of the wrong place.
        loops_dir.ensure_exists()?;
    }
    // The entries as compared: a relative or `..` path resolved, a pattern's fixed part
    // resolved, a `literal:` entry as the path it names, is what was checked.
    let resolved = args
        .scope
        .iter()
        .map(scope_lock::normalize_entry)
        .collect::<Result<Vec<_>, _>>()?;
    if args.json {
        let json = CheckJson::new(manager.running_dir(), conflict.as_ref(), &resolved);
        output::print_json(&json)?;
    }
    match conflict {
        None => {
            if !args.json {
                output::print_text(&format!(
                    "free: {} (locks in {})\n",
                    output::paths_text(&resolved),
                    manager.running_dir().display()
                ))?;
            }
            Ok(exit::SUCCESS)
        }
        Some(conflict) => {
            eprintln!("scope-lock: busy: {conflict}");
            Ok(exit::CONTENTION)
        }
    }
}

/// What would block an acquire: of this loop (and instance) with --name, else of the scope by
/// any name.
fn find(manager: &LockManager, args: &CheckArgs) -> Result<Option<Conflict>, Error> {
    let request = args.request();
    match args.name {
        Some(_) => manager.find_conflict(&request),
        None => manager.find_scope_conflict(&request),
    }
}
