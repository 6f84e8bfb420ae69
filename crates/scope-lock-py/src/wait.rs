//! The waiting acquire, interruptible from Python, and how long it may wait ([`Patience`]).
//!
//! The crate's wait runs without the GIL for as long as it lasts, and the crate offers no way
//! to stop it early. A Python program expects Ctrl-C (or any signal handler that raises) to
//! end a wait, so the wait's observer, which the crate calls when the wait starts and then
//! about once a second, takes the GIL for a moment and lets Python run its signal handlers.
//! If one raised, the observer unwinds out of the wait with [`std::panic::resume_unwind`]
//! (which, unlike `panic!`, runs no panic hook and prints nothing), and the unwind is caught
//! here. Everything the wait holds (its queue ticket, its directory watch) is released by
//! `Drop` on the way out, exactly as when it times out.
//!
//! A [`Cancel`] ends a wait from another thread (asyncio's cancellation) through the crate's
//! own [`CancelWait`]: the wait, asleep on its directory watch, is woken at once, so a
//! cancelled task's wait ends without waiting for the observer's next call.

use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::exceptions::asyncio::CancelledError;
use pyo3::prelude::*;
use scope_lock::{AcquireError, CancelWait, LockManager, LockRequest, ScopeGuard, Waiting};

/// The payload of the unwind that ends a wait a signal handler interrupted.
struct Interrupted(PyErr);

/// A request, from another thread, that a wait stop: how `hold_async` gives up the wait of a
/// cancelled task. It wakes the wait at once; the wait withdraws its ticket, releases a lock
/// it took meanwhile, and raises `asyncio.CancelledError`.
#[pyclass(module = "scope_lock._native", frozen)]
pub(crate) struct Cancel(CancelWait);

#[pymethods]
impl Cancel {
    #[new]
    fn new() -> Self {
        Self(CancelWait::new())
    }

    /// Asks the wait to stop; it raises `asyncio.CancelledError` when it does.
    fn cancel(&self) {
        self.0.cancel();
    }

    /// Whether `cancel` was called.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// Waits for `request` until `deadline` without the GIL. `Err` only when a signal handler
/// raised meanwhile (its exception), or `cancel` was cancelled (`asyncio.CancelledError`);
/// otherwise the crate's outcome.
pub(crate) fn acquire_until(
    py: Python<'_>,
    locks: &LockManager,
    request: &LockRequest,
    deadline: Instant,
    cancel: Option<&Cancel>,
) -> PyResult<Result<ScopeGuard, AcquireError>> {
    let mut check_signals = |_: &Waiting<'_>| {
        if let Err(err) = Python::attach(|py| py.check_signals()) {
            panic::resume_unwind(Box::new(Interrupted(err)));
        }
    };
    let outcome = py.detach(|| {
        panic::catch_unwind(AssertUnwindSafe(|| match cancel {
            Some(Cancel(cancel)) => {
                locks.acquire_cancellable(request, deadline, &mut check_signals, cancel)
            }
            None => locks.acquire_with(request, deadline, &mut check_signals),
        }))
    });
    match outcome {
        Ok(result) if cancel.is_some_and(Cancel::is_cancelled) => {
            // A lock taken as the cancel came: nobody awaits it any more.
            if let Ok(guard) = result {
                py.detach(|| drop(guard));
            }
            Err(CancelledError::new_err(
                "the wait for the scope was cancelled",
            ))
        }
        Ok(result) => Ok(result),
        Err(payload) => match payload.downcast::<Interrupted>() {
            Ok(interrupted) => Err(interrupted.0),
            // A real panic: let it go on as one.
            Err(payload) => panic::resume_unwind(payload),
        },
    }
}

/// How long an acquire may wait, from Python's `timeout` argument, read as filelock and the
/// standard library's waits read it: `None` waits forever, `0` tries once, a positive number
/// of seconds waits up to that. Positive infinity is forever too (it is the limit of "up to").
/// Negative numbers and NaN are errors rather than a guess: filelock reads `-1` as forever,
/// the original's loop read it as one attempt, so either guess would surprise someone.
pub(crate) enum Patience {
    Once,
    Until(Instant),
}

impl Patience {
    /// # Errors
    ///
    /// `ValueError` naming `timeout` for a negative number or NaN.
    pub(crate) fn from_timeout(timeout: Option<f64>) -> PyResult<Self> {
        let forever = || Self::Until(far_future());
        match timeout {
            None => Ok(forever()),
            Some(0.0) => Ok(Self::Once),
            Some(seconds) if seconds > 0.0 => Ok(Duration::try_from_secs_f64(seconds)
                .ok()
                .and_then(|wait| Instant::now().checked_add(wait))
                // Past what a deadline can be (infinity included): no different from forever.
                .map_or_else(forever, Self::Until)),
            Some(seconds) => Err(PyValueError::new_err(format!(
                "timeout must be None (wait forever), 0 (try once) or a positive number of \
                 seconds, not {}",
                python_float(seconds)
            ))),
        }
    }
}

/// A deadline no wait will reach: a century from now. The monotonic clock counts seconds since
/// boot in 64 bits, so the sum fits; were it ever not to, the wait would be one attempt.
fn far_future() -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(CENTURY).unwrap_or(now)
}

/// A float as Python's `repr` writes it, for the few that messages quote.
fn python_float(value: f64) -> String {
    if value.is_nan() {
        "nan".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        format!("{value:?}")
    }
}
