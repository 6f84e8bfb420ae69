//! The platform layer: every system call the lock protocol makes goes through `imp`.
//!
//! Keeping them in one place means a reviewer can check, in one file, that every lock is an
//! `flock(2)` on an open file description (never an `fcntl` record lock, which the kernel drops
//! when *any* descriptor of the file is closed), that `EINTR` is retried, and that lock files are
//! opened without following symlinks and without blocking on FIFOs. The lock calls are
//! enforced: `clippy.toml` forbids std's `File::lock` family everywhere else. (Resolving scope
//! paths, in `scope.rs`, reads the filesystem too; it is not part of the protocol.)

#[cfg(unix)]
#[path = "unix.rs"]
pub(crate) mod imp;

#[cfg(not(unix))]
compile_error!(
    "scope-lock supports Unix only (Linux and macOS): its locks are flock(2) locks on open file \
     descriptions, which other platforms do not offer with the same semantics"
);
