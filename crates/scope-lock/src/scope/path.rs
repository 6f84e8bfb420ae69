//! A scope entry as a path: normalised the way the original normalises it (Python's non-strict
//! `Path(p).resolve()`, `docs/protocol.md` A3), byte for byte.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, ErrorKind};

/// How many symlinks one normalisation may follow; the kernel's own limit is 40.
pub(super) const MAX_SYMLINKS: usize = 40;

/// The current directory, which relative entries are taken against, as every normalisation
/// without a base reports it cannot be read.
pub(crate) fn current_dir() -> Result<PathBuf, Error> {
    std::env::current_dir()
        .map_err(|err| Error::io("cannot read the current directory", Path::new("."), err))
}

/// Normalises a scope entry like Python's non-strict `Path(p).resolve()`: absolute against the
/// current directory, `.` dropped, `..` collapsed, symlinks of the existing prefix followed, a
/// missing tail appended as written. Byte for byte: a path that is not UTF-8 stays as it is.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let here = std::env::current_dir()?;
/// assert_eq!(scope_lock::normalize_path("nonexistent/./b/../c")?, here.join("nonexistent/c"));
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`ErrorKind::InvalidScope`] for an entry with a NUL byte or a symlink loop;
/// [`ErrorKind::Io`] when the current directory cannot be read. The message quotes the entry.
pub fn normalize_path(path: impl AsRef<Path>) -> Result<PathBuf, Error> {
    normalize_path_in(&current_dir()?, path)
}

/// [`normalize_path`] against `base` instead of the current directory; `base` is taken as
/// already resolved, as the current directory always is.
///
/// ```
/// # fn main() -> Result<(), scope_lock::Error> {
/// use std::path::Path;
/// let base = Path::new("/nonexistent-repo");
/// assert_eq!(scope_lock::normalize_path_in(base, "src/../docs/")?, Path::new("/nonexistent-repo/docs"));
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// As [`normalize_path`].
pub fn normalize_path_in(base: &Path, path: impl AsRef<Path>) -> Result<PathBuf, Error> {
    let path = path.as_ref();
    let invalid = |why: &str| {
        Error::input(
            ErrorKind::InvalidScope,
            format!("invalid scope entry {path:?}: {why}"),
        )
    };
    if path.as_os_str().as_bytes().contains(&0) {
        return Err(invalid("contains a NUL byte"));
    }
    let mut resolver = Resolver {
        followed: 0,
        seen: HashMap::new(),
    };
    resolver
        .join(base.to_path_buf(), path)
        .map_err(|problem| invalid(&problem))
}

/// Python's `posixpath._joinrealpath`, non-strict, as a small state machine: each component is
/// appended; a symlink is replaced by its resolved target; anything that cannot be `lstat`ed is
/// kept as written.
struct Resolver {
    followed: usize,
    /// Symlinks seen so far: `None` while being resolved (seeing it again is a loop).
    seen: HashMap<PathBuf, Option<PathBuf>>,
}

impl Resolver {
    fn join(&mut self, mut path: PathBuf, rest: &Path) -> Result<PathBuf, String> {
        for component in rest.components() {
            match component {
                Component::RootDir => path = PathBuf::from("/"),
                Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => {
                    path.pop();
                }
                Component::Normal(name) => path = self.step(path, name)?,
            }
        }
        Ok(path)
    }

    fn step(&mut self, path: PathBuf, name: &OsStr) -> Result<PathBuf, String> {
        let candidate = path.join(name);
        let is_symlink = fs::symlink_metadata(&candidate)
            .map(|meta| meta.file_type().is_symlink())
            .unwrap_or(false);
        if !is_symlink {
            return Ok(candidate);
        }
        match self.seen.get(&candidate) {
            Some(Some(resolved)) => return Ok(resolved.clone()),
            Some(None) => {
                return Err(format!("symlink loop at {}", candidate.display()));
            }
            None => {}
        }
        let Ok(target) = fs::read_link(&candidate) else {
            return Ok(candidate);
        };
        self.followed += 1;
        if self.followed > MAX_SYMLINKS {
            return Err(format!(
                "more than {MAX_SYMLINKS} symlinks to follow at {}",
                candidate.display()
            ));
        }
        self.seen.insert(candidate.clone(), None);
        let resolved = self.join(path, &target)?;
        self.seen.insert(candidate, Some(resolved.clone()));
        Ok(resolved)
    }
}
