//! What a waiting acquire tells its caller while it waits.
//!
//! The library prints nothing. A command line that wants cargo's kind of "Blocking waiting for
//! ..." line passes a [`WaitObserver`] to
//! [`LockManager::acquire_with`](crate::LockManager::acquire_with) and prints from it.

use std::time::Duration;

use crate::conflict::Conflict;

/// Told when a waiting acquire starts waiting, and then about once every
/// [`interval`](WaitObserver::interval) while it still waits. Never called when the scope was
/// free at once. A waiting acquire does not wake up just to look again: between reports it
/// sleeps until something happens to what blocks it (see
/// [`LockManager::acquire_until`](crate::LockManager::acquire_until)).
///
/// Any `FnMut(&Waiting<'_>)` is an observer:
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// use std::time::{Duration, Instant};
/// use scope_lock::{LockManager, LockRequest, Waiting};
///
/// let locks = LockManager::new(dir.path());
/// let mut print = |wait: &Waiting<'_>| {
///     if wait.is_first() {
///         eprintln!("Blocking waiting for scope: {}", wait.conflict());
///     }
/// };
/// let request = LockRequest::new("docs").scope(["docs"]);
/// let deadline = Instant::now() + Duration::from_secs(60);
/// let guard = locks.acquire_with(&request, deadline, &mut print)?;
/// # drop(guard);
/// # Ok(()) }
/// ```
pub trait WaitObserver {
    /// Called with what the acquire is waiting for.
    fn waiting(&mut self, wait: &Waiting<'_>);

    /// How often to be told again while the wait goes on; `None` for only once, when it
    /// starts. [`REPORT_INTERVAL`] unless overridden.
    fn interval(&self) -> Option<Duration> {
        Some(REPORT_INTERVAL)
    }
}

impl<F: FnMut(&Waiting<'_>)> WaitObserver for F {
    fn waiting(&mut self, wait: &Waiting<'_>) {
        self(wait);
    }
}

/// How often, at most, a [`WaitObserver`] hears that the wait goes on (it also hears at
/// once when the wait starts).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// One report of a waiting acquire.
#[derive(Debug)]
pub struct Waiting<'a> {
    pub(crate) conflict: &'a Conflict,
    pub(crate) waited: Duration,
    pub(crate) first: bool,
    pub(crate) ticket: Option<u64>,
}

impl Waiting<'_> {
    /// What blocks the request now: the holder (or the earlier waiter) and the rule.
    pub fn conflict(&self) -> &Conflict {
        self.conflict
    }

    /// How long the acquire has waited so far.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// Whether this is the first report of this wait (the moment it started waiting).
    pub fn is_first(&self) -> bool {
        self.first
    }

    /// The acquire's own place in the queue of waiters, when it has one.
    pub fn ticket(&self) -> Option<u64> {
        self.ticket
    }
}

/// The observer of a caller that gave none.
pub(crate) struct Silent;

impl WaitObserver for Silent {
    fn waiting(&mut self, _wait: &Waiting<'_>) {}

    fn interval(&self) -> Option<Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observer_hears_again_every_report_interval_unless_it_says_otherwise() {
        let closure = |_: &Waiting<'_>| {};
        assert_eq!(closure.interval(), Some(REPORT_INTERVAL));
        assert_eq!(Silent.interval(), None);
    }
}
