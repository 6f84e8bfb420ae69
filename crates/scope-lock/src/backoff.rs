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
        Self::with_seed(first, cap, seed(std::process::id(), nanos))
    }

    fn with_seed(first: Duration, cap: Duration, seed: u64) -> Self {
        Self {
            step: first,
            cap,
            // xorshift stays at zero once there: the one state it must never start from.
            state: seed | 1,
        }
    }

    /// The next delay, never past `deadline` (zero once it has passed).
    pub(crate) fn next_delay(&mut self, deadline: Instant) -> Duration {
        self.state = xorshift64(self.state);
        let half = self.step / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
        let delay = half + Duration::from_nanos(self.state % nanos);
        self.step = (self.step * 2).min(self.cap);
        delay.min(deadline.saturating_duration_since(Instant::now()))
    }
}

/// A seed that differs for every process id and every clock reading (the pid fills the high
/// half, the nanoseconds the low one).
fn seed(pid: u32, nanos: u32) -> u64 {
    (u64::from(pid) << 32) ^ u64::from(nanos) ^ 0x9E37_79B9_7F4A_7C15
}

/// One step of Marsaglia's xorshift64 (shifts 13, 7, 17): enough randomness for jitter, and no
/// dependency.
fn xorshift64(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
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
    }

    #[test]
    fn the_generator_is_xorshift64() {
        // The first outputs of xorshift64 (13, 7, 17) from the state 1, as the reference
        // algorithm (Marsaglia, "Xorshift RNGs", 2003) computes them.
        let mut x = 1;
        let outputs: Vec<u64> = (0..4)
            .map(|_| {
                x = xorshift64(x);
                x
            })
            .collect();
        assert_eq!(
            outputs,
            [
                1_082_269_761,
                1_152_992_998_833_853_505,
                11_177_516_664_432_764_457,
                17_678_023_832_001_937_445
            ]
        );
    }

    #[test]
    fn seeds_differ_between_processes_and_between_clock_readings() {
        let mut seen = std::collections::HashSet::new();
        for pid in [0, 1, 2, 3, 1000, u32::MAX] {
            for nanos in [0, 1, 2, 3, 999_999_999] {
                assert!(seen.insert(seed(pid, nanos)), "pid {pid}, nanos {nanos}");
            }
        }
    }

    #[test]
    fn delays_at_the_cap_are_spread_out_for_every_seed() {
        let far = Instant::now() + Duration::from_secs(3600);
        let step = Duration::from_millis(16);
        // Zero is the seed xorshift would stay stuck at; one maps to it if mishandled.
        for seed in [0, 1, 2, u64::MAX, 0x9E37_79B9_7F4A_7C15] {
            let mut backoff = Backoff::with_seed(step, step, seed);
            let delays: std::collections::BTreeSet<Duration> =
                (0..32).map(|_| backoff.next_delay(far)).collect();
            assert!(delays.len() >= 30, "seed {seed:#x}: {delays:?}");
            assert!(
                delays.iter().all(|d| *d >= step / 2 && *d < step),
                "seed {seed:#x}: {delays:?}"
            );
        }
    }

    #[test]
    fn an_unbounded_timeout_does_not_overflow() {
        // It means a century: a deadline a few days or years off would come.
        let before = Instant::now();
        let never = deadline_after(Duration::MAX);
        assert!(never >= before + Duration::from_secs(99 * 365 * 24 * 3600));
    }
}
