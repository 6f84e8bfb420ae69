//! Scopes: what the paths a lock holds are, with the original's rules (`docs/protocol.md`, A3)
//! and glob entries ("Glob entries"). A request's entries go through three steps, one file
//! each, and are then compared with the holders' by a fourth:
//!
//! - `template.rs`: `${context.<var>}` replaced ([`resolve_scope`]);
//! - `path.rs`: an entry normalised as a path ([`normalize_path_in`]);
//! - `entry.rs`: an entry normalised as a request stores it, path, glob or `literal:`
//!   ([`normalize_entry_in`]);
//! - `overlap.rs`: whether two scopes overlap ([`scopes_overlap`]), and the index that finds
//!   the first pair that does for one scope against many holders.
//!
//! An entry as stored (in a request's record or anyone's lock file) is read as the plain path
//! it spells, and, when a component looks like a pattern, also as that pattern: two entries
//! overlap when any reading of one overlaps any reading of the other. Reading both ways never
//! misses an overlap, whoever wrote the entry and whatever they meant by it; a request makes
//! what it means exact by how it writes the entry.

mod entry;
mod overlap;
mod path;
mod template;
#[cfg(test)]
mod tests;

pub use entry::{LITERAL_PREFIX, is_pattern, normalize_entry, normalize_entry_in};
pub(crate) use overlap::ScopeIndex;
pub use overlap::{paths_overlap, scopes_overlap};
#[cfg(feature = "etcd")]
pub(crate) use path::current_dir;
pub use path::{normalize_path, normalize_path_in};
pub use template::resolve_scope;
