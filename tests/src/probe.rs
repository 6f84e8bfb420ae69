//! Probing a lock file from outside its holder: through a fresh open, which is a separate open
//! file description and so conflicts with the holder's flock, as another process's would.

use std::fs::{File, TryLockError};
use std::io;
use std::path::Path;

/// What a probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// No file at the path.
    Missing,
    /// The file is exclusively flocked by someone.
    Held,
    /// The file exists and nobody holds its flock.
    Free,
}

impl Probe {
    /// `missing`, `held` or `free`.
    pub fn name(self) -> &'static str {
        match self {
            Probe::Missing => "missing",
            Probe::Held => "held",
            Probe::Free => "free",
        }
    }
}

/// Opens `path` and tries its flock without waiting; a flock taken is dropped at once.
///
/// # Errors
///
/// Any I/O error but a missing file.
#[allow(
    clippy::disallowed_methods,
    reason = "a witness probes flocks on its own, independently of the library it checks"
)]
pub fn probe(path: &Path) -> io::Result<Probe> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Probe::Missing),
        Err(err) => return Err(err),
    };
    loop {
        return match file.try_lock() {
            Ok(()) => Ok(Probe::Free),
            Err(TryLockError::WouldBlock) => Ok(Probe::Held),
            Err(TryLockError::Error(err)) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(TryLockError::Error(err)) => Err(err),
        };
    }
}
