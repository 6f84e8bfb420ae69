//! The crate's errors as Python exceptions.
//!
//! | crate [`ErrorKind`] | Python |
//! |---|---|
//! | `InvalidName`, `InvalidScope`, `InvalidRecord` | `ValueError` (the message quotes the input) |
//! | `NotALockFile` | `NotALockFileError(OSError)` |
//! | `UnsupportedFilesystem` | `UnsupportedFilesystemError(OSError)` |
//! | `Busy` | `LockDirectoryBusyError(OSError, TimeoutError)` |
//! | `Io` | the `OSError` subclass of its errno (`PermissionError`, ...) |
//! | `Interference`, any other | `OSError` |
//!
//! Every one but `ValueError` has `filename` set to the path at fault, and its message is the
//! crate's (which names the path and says what was being done) followed by the cause.

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use scope_lock::{Error, ErrorKind};

// Defined in Python (`python/scope_lock/_errors.py`) so that their message stays ours while
// `filename` is set; see there.
pyo3::import_exception!(scope_lock._errors, NotALockFileError);
pyo3::import_exception!(scope_lock._errors, UnsupportedFilesystemError);
pyo3::import_exception!(scope_lock._errors, LockDirectoryBusyError);
// Their base: an `OSError` with a path but no errno.
pyo3::import_exception!(scope_lock._errors, _PathError);
use _PathError as PathError;

/// Converts a crate error into the Python exception the table above names.
pub(crate) fn to_py(py: Python<'_>, err: &Error) -> PyErr {
    let cause = err.io_error();
    let message = match cause {
        Some(cause) => format!("{err}: {cause}"),
        None => err.to_string(),
    };
    let path = err.path().map(|p| p.to_string_lossy().into_owned());
    match err.kind() {
        ErrorKind::InvalidName | ErrorKind::InvalidScope | ErrorKind::InvalidRecord => {
            PyValueError::new_err(message)
        }
        ErrorKind::NotALockFile => with_filename::<NotALockFileError>(py, message, path),
        ErrorKind::UnsupportedFilesystem => {
            with_filename::<UnsupportedFilesystemError>(py, message, path)
        }
        ErrorKind::Busy => with_filename::<LockDirectoryBusyError>(py, message, path),
        _ => match (cause.and_then(std::io::Error::raw_os_error), path) {
            // Python itself turns `OSError(errno, ...)` into the subclass of that errno.
            (Some(errno), Some(path)) => PyOSError::new_err((errno, message, path)),
            (Some(errno), None) => PyOSError::new_err((errno, message)),
            (None, path) => with_filename::<PathError>(py, message, path),
        },
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
        // it does, the exception still names the path in its message.
        let _ = err.value(py).setattr("filename", path);
    }
    err
}
