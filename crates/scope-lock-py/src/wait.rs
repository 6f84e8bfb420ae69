//! The waiting acquire, interruptible from Python.
//!
//! The crate's wait runs without the GIL for as long as it lasts, and the crate offers no way
//! to stop it early. A Python program expects Ctrl-C (or any signal handler that raises) to
//! end a wait, so the wait's observer, which the crate calls when the wait starts and then
//! about once a second, takes the GIL for a moment and lets Python run its signal handlers.
//! If one raised, the observer unwinds out of the wait with [`std::panic::resume_unwind`]
//! (which, unlike `panic!`, runs no panic hook and prints nothing), and the unwind is caught
//! here. Everything the wait holds (its queue ticket, its directory watch) is released by
//! `Drop` on the way out, exactly as when it times out.

use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

use pyo3::prelude::*;
use scope_lock::{AcquireError, LockManager, LockRequest, ScopeGuard, Waiting};

/// The payload of the unwind that ends a wait a signal handler interrupted.
struct Interrupted(PyErr);

/// Waits for `request` until `deadline` without the GIL. `Err` only when a signal handler
/// raised meanwhile (its exception); otherwise the crate's outcome.
pub(crate) fn acquire_until(
    py: Python<'_>,
    locks: &LockManager,
    request: &LockRequest,
    deadline: Instant,
) -> PyResult<Result<ScopeGuard, AcquireError>> {
    let mut check_signals = |_: &Waiting<'_>| {
        if let Err(err) = Python::attach(|py| py.check_signals()) {
            panic::resume_unwind(Box::new(Interrupted(err)));
        }
    };
    let outcome = py.detach(|| {
        panic::catch_unwind(AssertUnwindSafe(|| {
            locks.acquire_with(request, deadline, &mut check_signals)
        }))
    });
    match outcome {
        Ok(result) => Ok(result),
        Err(payload) => match payload.downcast::<Interrupted>() {
            Ok(interrupted) => Err(interrupted.0),
            // A real panic: let it go on as one.
            Err(payload) => panic::resume_unwind(payload),
        },
    }
}
