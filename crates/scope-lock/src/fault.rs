//! Pause points for fault-injection tests: places in acquire and release where a test can stop
//! a process, either to kill it there with SIGKILL and check that nothing it leaves behind
//! blocks anyone (no lock live without a live holder, the sentinel never wedged, leftovers
//! reclaimed by the next acquire), or to change the directory while the process stands there
//! and then let it go on, which makes a race happen in one chosen order.
//!
//! Compiled in only with the `test-support` feature; without it, [`pause`] is an empty inline
//! function. With it, a process whose environment sets [`PAUSE_AT_VAR`] to one of [`STEPS`]
//! prints `paused <step>` on its standard output when it reaches that step, and then reads its
//! standard input up to the next newline: a line there resumes it. If its input is closed (or
//! unreadable) before a line comes, nothing can resume it, and it blocks until it is killed.
//! The wait is not a sleep standing in for ordering: the test reads the `paused` line, so it
//! knows the process is exactly there, and what it does before writing the line happens
//! before the process goes on.
//!
//! The pause reads the descriptor itself, a byte at a time, not through [`std::io::stdin`]: the
//! process may hold that handle's lock while it calls the library (the regression worker
//! does), and a buffered read could take input meant for the caller. So the caller must not
//! have read ahead of the line it last acted on: a test writes the resuming line only after
//! it has read `paused`.

/// The environment variable that names the step to pause at.
#[cfg(feature = "test-support")]
pub const PAUSE_AT_VAR: &str = "SCOPE_LOCK_PAUSE_AT";

/// Every pause point, in the order a successful acquire and release pass them.
#[cfg(feature = "test-support")]
pub const STEPS: &[&str] = &[
    // An attempt holds the directory sentinel and has not looked at the directory yet.
    "acquire:sentinel-held",
    // A scan (an acquire's, or a cleaning listing's) has seen that the path of a stale lock
    // file (or of a dead waiter's ticket) still names the file it judged, and is about to
    // unlink it; reached only when `.running/` holds a stale lock or the queue a stale ticket
    // (a test that removes it here makes the unlink fail with NotFound).
    "scan:reclaim-checked",
    // The directory of a nested lock name (`.running/team/` of `team/run-1`) was found missing
    // and is about to be created; reached only for such a name (a test that creates the
    // directory here makes the mkdir fail with AlreadyExists).
    "acquire:directory-missing",
    // The staged file (hidden name) exists and is empty.
    "acquire:staged-created",
    // The staged file holds the record, not yet flocked.
    "acquire:staged-written",
    // The staged file is flocked; the no-overwrite rename to the lock's name comes next (a
    // test that creates that name here makes the rename fail).
    "acquire:staged-locked",
    // The lock file has its name, and is flocked; the acquire has not returned yet.
    "acquire:published",
    // A waiting acquire found the scope taken (and has its ticket) and has not yet watched the
    // directories of what blocks it; reached only by a waiting acquire that is blocked (a
    // test that releases the holder here, in a directory not watched yet, checks that the
    // wait looks again rather than wait for an event that came before its watch).
    "wait:blocked",
    // A release holds the sentinel and has not looked at its lock file yet.
    "release:sentinel-held",
    // A release has seen that its path still names its file, and is about to unlink it (a
    // test that removes the file here makes the unlink fail with NotFound).
    "release:checked",
    // The lock file is unlinked, its descriptor (and so its flock) not yet closed.
    "release:unlinked",
];

/// Stops here when [`PAUSE_AT_VAR`] names `step`: says `paused <step>` and waits for a line on
/// standard input (forever if the input closes first).
#[cfg(feature = "test-support")]
pub(crate) fn pause(step: &'static str) {
    use std::io::Write as _;
    use std::os::fd::AsFd as _;
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
    if !resume_line(std::io::stdin().as_fd()) {
        loop {
            std::thread::park();
        }
    }
}

/// Reads `input` up to and including a newline; false if it closed or failed first.
#[cfg(feature = "test-support")]
fn resume_line(input: std::os::fd::BorrowedFd<'_>) -> bool {
    let mut byte = [0_u8; 1];
    loop {
        match rustix::io::read(input, &mut byte) {
            Ok(0) => return false,
            Ok(_) if byte[0] == b'\n' => return true,
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => return false,
        }
    }
}

/// Without `test-support`: nothing.
#[cfg(not(feature = "test-support"))]
#[inline(always)]
pub(crate) fn pause(_step: &'static str) {}

#[cfg(all(test, feature = "test-support"))]
mod tests {
    use super::resume_line;
    use std::io::Write as _;
    use std::os::fd::AsFd as _;

    /// What `resume_line` says when its input is a pipe that was given `written` and then
    /// closed.
    fn resumes_on(written: &[u8]) -> bool {
        let (reader, mut writer) = std::io::pipe().expect("a pipe");
        writer.write_all(written).expect("write to the pipe");
        drop(writer);
        resume_line(reader.as_fd())
    }

    #[test]
    fn a_newline_resumes_even_after_other_bytes() {
        assert!(resumes_on(b"\n"));
        assert!(resumes_on(b"go on\n"));
    }

    #[test]
    fn input_that_closes_before_a_newline_does_not_resume() {
        assert!(!resumes_on(b""));
        assert!(!resumes_on(b"go on"));
    }

    #[test]
    fn input_that_cannot_be_read_does_not_resume() {
        // Reading the write end of a pipe fails (EBADF): a pause must not take that for a line.
        let (_reader, writer) = std::io::pipe().expect("a pipe");
        assert!(!resume_line(writer.as_fd()));
    }
}
