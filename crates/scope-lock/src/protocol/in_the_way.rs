//! Errors that say what sits where a lock file, the sentinel or a directory must be.

use std::io;
use std::path::Path;

use crate::error::{Error, ErrorKind};
use crate::listing::FileKind;
use crate::sys::{self, FileType};

/// Maps a failure to open `name` in `dir` to an error that says what is in the way when it is
/// not a file.
pub(super) fn open_error(dir: &sys::Dir, name: &str, err: io::Error) -> Error {
    let path = dir.join(name);
    match dir.stat(name) {
        Ok(Some(stat)) if stat.file_type != FileType::RegularFile => {
            not_a_lock_file(&path, stat.file_type)
        }
        _ => Error::io("cannot open", &path, err),
    }
}

pub(super) fn not_a_lock_file(path: &Path, file_type: FileType) -> Error {
    Error::at_path(
        ErrorKind::NotALockFile,
        path,
        format!(
            "is a {}, not a regular lock file; refusing to use it",
            describe(file_type)
        ),
    )
}

pub(super) fn describe(file_type: FileType) -> &'static str {
    FileKind::of(file_type).map_or("regular file", FileKind::as_str)
}
