//! `scope-lock check`: would an acquire conflict right now?

use crate::backend::Backend;
use crate::cli::CheckArgs;
use crate::exit::{self, Failure};
use crate::output::{self, CheckJson};

pub(crate) fn check(backend: &Backend, args: &CheckArgs) -> Result<u8, Failure> {
    // With --name, of this loop (and instance); else of the scope by any name.
    let conflict = backend.find_conflict(&args.request(), args.name.is_some())?;
    if conflict.is_none() {
        // A directory that is not there holds no lock: "free" would be true of the wrong place.
        backend.ensure_exists()?;
    }
    // The entries as compared: a relative or `..` path resolved, a pattern's fixed part
    // resolved, a `literal:` entry as the path it names, is what was checked.
    let resolved = args
        .scope
        .iter()
        .map(scope_lock::normalize_entry)
        .collect::<Result<Vec<_>, _>>()?;
    let names_under = backend.names_under();
    if args.json {
        let json = CheckJson::new(&names_under, conflict.as_ref(), &resolved);
        output::print_json(&json)?;
    }
    match conflict {
        None => {
            if !args.json {
                output::print_text(&format!(
                    "free: {} (locks in {})\n",
                    output::paths_text(&resolved),
                    names_under.display()
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
