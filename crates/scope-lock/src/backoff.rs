//! Jittered exponential backoff, for the two waits that have nothing to block on: trying the
//! directory sentinel (flock has no timed form) and watching a lock of the original's, which
//! holds no flock and so can only be polled.

use std::time::{Duration, Instant};

/// Delays that start at `first`, double up to `cap`, and are each drawn at random from the upper
/// half of the current step, so that processes that woke together spread out instead of
/// retrying in lockstep.
#[derive(Debug)]
pub(crate) struct Backoff {
    step: Duration,
    cap: Duration,
    state: u64,
}

impl Backoff {
    pub(crate) fn new(first: Duration, cap: Duration) -> Self {
        // Any seed that differs between processes and calls will do: this is jitter, not
        // security. The pid and the clock's nanoseconds give that.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let seed = (u64::from(std::process::id()) << 32) ^ u64::from(nanos) ^ 0x9E37_79B9_7F4A_7C15;
        Self {
            step: first,
            cap,
            state: seed | 1,
        }
    }

    /// The next delay, never past `deadline` (zero once it has passed).
    pub(crate) fn next_delay(&mut self, deadline: Instant) -> Duration {
        // xorshift64: enough randomness for jitter, no dependency.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let half = self.step / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
        let delay = half + Duration::from_nanos(self.state % nanos);
        self.step = (self.step * 2).min(self.cap);
        delay.min(deadline.saturating_duration_since(Instant::now()))
    }

    /// Sleeps for the next delay; `false` (without sleeping) once `deadline` has passed.
    pub(crate) fn sleep_until_next(&mut self, deadline: Instant) -> bool {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(self.next_delay(deadline));
        true
    }
}

/// `now + timeout`, or a deadline so far away it never comes when that overflows (a timeout of
/// `Duration::MAX` means "no bound" to the caller, and we must not panic on it).
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_and_stop_at_the_deadline() {
        let far = Instant::now() + Duration::from_secs(3600);
        let mut backoff = Backoff::new(Duration::from_millis(2), Duration::from_millis(16));
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next_delay(far)).collect();
        // Step k is drawn from [step/2, step): 1-2 ms, 2-4 ms, 4-8 ms, then 8-16 ms for ever.
        assert!(delays[0] >= Duration::from_millis(1) && delays[0] < Duration::from_millis(2));
        for delay in &delays[3..] {
            assert!(*delay >= Duration::from_millis(8) && *delay < Duration::from_millis(16));
        }
        assert_eq!(backoff.next_delay(Instant::now()), Duration::ZERO);
        assert!(!backoff.sleep_until_next(Instant::now()));
    }

    #[test]
    fn an_unbounded_timeout_does_not_overflow() {
        assert!(deadline_after(Duration::MAX) > Instant::now() + Duration::from_secs(3600));
    }
}
