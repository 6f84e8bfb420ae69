//! The original's scope helpers, which its users call: whether paths and scopes overlap, a
//! path normalised, and `resolve_scope`'s templates.

use std::ffi::OsString;
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors;

/// Whether two normalised paths overlap (equal, or one contains the other).
#[pyfunction]
pub(crate) fn paths_overlap(path1: PathBuf, path2: PathBuf) -> bool {
    scope_lock::paths_overlap(path1, path2)
}

/// Whether any path of one scope overlaps any path of the other.
#[pyfunction]
pub(crate) fn scopes_overlap(scope1: Vec<PathBuf>, scope2: Vec<PathBuf>) -> bool {
    scope_lock::scopes_overlap(&scope1, &scope2)
}

/// A scope entry normalised like `Path(path).resolve()`, as a `str` (surrogate escapes for
/// bytes that are not UTF-8, as `os.fsdecode` writes them).
#[pyfunction]
pub(crate) fn normalize_path(py: Python<'_>, path: PathBuf) -> PyResult<OsString> {
    scope_lock::normalize_path(path)
        .map(PathBuf::into_os_string)
        .map_err(|err| errors::to_py(py, &err))
}

/// `${context.<var>}` templates replaced with `str(context[var])`. The values are rendered by
/// Python's own `str()` here, so any object renders as the original renders it.
#[pyfunction]
pub(crate) fn resolve_scope(
    scope: Vec<PathBuf>,
    context: &Bound<'_, PyDict>,
) -> PyResult<Vec<OsString>> {
    let mut rendered = Vec::with_capacity(context.len());
    for (key, value) in context.iter() {
        // The original looks variables up by the string in the template; other keys can never
        // match one.
        if let Ok(key) = key.extract::<String>() {
            rendered.push((key, value.str()?.to_string()));
        }
    }
    Ok(scope_lock::resolve_scope(&scope, rendered)
        .into_iter()
        .map(PathBuf::into_os_string)
        .collect())
}
