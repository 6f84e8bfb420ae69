//! `scope_lock._native`: the Rust half of the Python package `scope_lock`.
//!
//! The Python half (`python/scope_lock/`, its index `__init__.py`) has the API little-loops'
//! users know (`LockManager`, `ScopeLock`, `resolve_scope`); this module does the locking, with
//! the `scope-lock` crate. What it adds to the crate is what a Python process needs:
//!
//! - `manager`: the calls themselves, each of which lets go of the GIL while it may wait, over
//!   either backend: `directory` (a lock directory) or `etcd` (`LockManager(etcd=...,
//!   project=...)`);
//! - `held`: the table of guards that `LockManager.acquire` keeps until `release` (or the
//!   end of the process), and what happens to it in a child created by `os.fork`;
//! - `wait`: how long a call may wait, and a wait that Ctrl-C or a cancelled task ends;
//! - `convert` and `errors`: what crosses back to Python, records and conflicts as dicts, the
//!   crate's errors as exceptions (`OSError` subclasses carrying the path, `ValueError` for
//!   bad input);
//! - `scope`: the original's scope helpers.

use pyo3::prelude::*;

mod convert;
mod directory;
mod errors;
mod etcd;
mod held;
mod manager;
mod scope;
mod wait;

/// The extension module. Its contents are private to the package: use `scope_lock`.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // The package's version is the crate's: maturin takes it from Cargo.toml.
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<manager::Manager>()?;
    m.add_class::<wait::Cancel>()?;
    m.add_function(wrap_pyfunction!(scope::paths_overlap, m)?)?;
    m.add_function(wrap_pyfunction!(scope::scopes_overlap, m)?)?;
    m.add_function(wrap_pyfunction!(scope::normalize_path, m)?)?;
    m.add_function(wrap_pyfunction!(scope::resolve_scope, m)?)?;
    m.add_function(wrap_pyfunction!(held::forget_inherited, m)?)?;
    m.add_function(wrap_pyfunction!(held::release_all, m)?)?;
    Ok(())
}
