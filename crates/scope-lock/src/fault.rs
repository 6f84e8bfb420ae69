//! Pause points for fault-injection tests: places in acquire and release where a test can stop
//! a process, to kill it there with SIGKILL and check that nothing it leaves behind blocks
//! anyone (no lock live without a live holder, the sentinel never wedged, leftovers reclaimed
//! by the next acquire).
//!
//! Compiled in only with the `test-support` feature; without it, [`pause`] is an empty inline
//! function. With it, a process whose environment sets [`PAUSE_AT_VAR`] to one of [`STEPS`]
//! prints `paused <step>` on its standard output when it reaches that step, and then blocks
//! forever, waiting to be killed. The wait is not a sleep standing in for ordering: the test
//! reads the line, so it knows the process is exactly there.

/// The environment variable that names the step to pause at.
#[cfg(feature = "test-support")]
pub const PAUSE_AT_VAR: &str = "SCOPE_LOCK_PAUSE_AT";

/// Every pause point, in the order a successful acquire and release pass them.
#[cfg(feature = "test-support")]
pub const STEPS: &[&str] = &[
    "acquire:sentinel-held",
    "acquire:staged-created",
    "acquire:staged-written",
    "acquire:staged-locked",
    "acquire:published",
    "release:sentinel-held",
    "release:unlinked",
];

/// Stops here, forever, when [`PAUSE_AT_VAR`] names `step`.
#[cfg(feature = "test-support")]
pub(crate) fn pause(step: &'static str) {
    use std::io::Write as _;
    use std::sync::OnceLock;

    static PAUSE_AT: OnceLock<Option<String>> = OnceLock::new();
    debug_assert!(STEPS.contains(&step), "unknown pause point {step}");
    let pause_at = PAUSE_AT.get_or_init(|| std::env::var(PAUSE_AT_VAR).ok());
    if pause_at.as_deref() != Some(step) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "paused {step}");
    let _ = stdout.flush();
    drop(stdout);
    loop {
        std::thread::park();
    }
}

/// Without `test-support`: nothing.
#[cfg(not(feature = "test-support"))]
#[inline(always)]
pub(crate) fn pause(_step: &'static str) {}
