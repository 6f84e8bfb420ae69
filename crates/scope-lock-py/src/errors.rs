//! The crate's errors as Python exceptions.
//!
//! | crate [`ErrorKind`] | Python |
//! |---|---|
//! | `InvalidName`, `InvalidScope`, `InvalidRecord` | `ValueError` (the message quotes the input) |
//! | `NotALockFile` | `NotALockFileError(OSError)`, `filename` = the path |
//! | `UnsupportedFilesystem` | `UnsupportedFilesystemError(OSError)`, `filename` = the path |
//! | `AlreadyExists` | `FileExistsError`, `filename` = the path |
//! | `Io` | the `OSError` subclass of its errno (`PermissionError`, ...), `filename` = the path;
//! |  | without an errno, an `OSError` whose message is the crate's and `filename` the path |
//!
//! Every `OSError` keeps the crate's message (which names the path and says what was being
//! done) as its `strerror`.

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use scope_lock::{Error, ErrorKind};

// Defined in Python (`python/scope_lock/_errors.py`) so that their message stays ours while
// `filename` is set; see there.
pyo3::import_exception!(scope_lock._errors, NotALockFileError);
pyo3::import_exception!(scope_lock._errors, UnsupportedFilesystemError);
// Their base: an `OSError` with a path but no errno.
pyo3::import_exception!(scope_lock._errors, _PathError);
use _PathError as PathError;

/// Converts a crate error into the Python exception the table above names.
pub(crate) fn to_py(py: Python<'_>, err: &Error) -> PyErr {
    let message = err.to_string();
    let path = err.path().map(|p| p.to_string_lossy().into_owned());
    match err.kind() {
        ErrorKind::InvalidName | ErrorKind::InvalidScope | ErrorKind::InvalidRecord => {
            PyValueError::new_err(message)
        }
        ErrorKind::NotALockFile => with_filename::<NotALockFileError>(py, message, path),
        ErrorKind::UnsupportedFilesystem => {
            with_filename::<UnsupportedFilesystemError>(py, message, path)
        }
        ErrorKind::AlreadyExists => os_error(py, Some(17), message, path),
        _ => {
            let errno = err.io_error().and_then(std::io::Error::raw_os_error);
            os_error(py, errno, message, path)
        }
    }
}

/// `OSError(errno, message, path)`, which Python itself turns into the subclass of that errno
/// (`PermissionError` for `EACCES`, ...). Without an errno, a plain `OSError(message)` whose
/// `filename` is set.
fn os_error(py: Python<'_>, errno: Option<i32>, message: String, path: Option<String>) -> PyErr {
    match (errno, path) {
        (Some(errno), Some(path)) => PyOSError::new_err((errno, message, path)),
        (Some(errno), None) => PyOSError::new_err((errno, message)),
        (None, path) => with_filename::<PathError>(py, message, path),
    }
}

/// An exception of type `T` with `message` as its only argument and `filename` set.
fn with_filename<T: pyo3::PyTypeInfo>(
    py: Python<'_>,
    message: String,
    path: Option<String>,
) -> PyErr {
    let err = PyErr::new::<T, _>(message);
    if let Some(path) = path {
        // Setting an attribute of a fresh exception cannot fail short of memory exhaustion; if
        // it does, the exception still says the path in its message.
        let _ = err.value(py).setattr("filename", path);
    }
    err
}
