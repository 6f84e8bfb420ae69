//! Fencing tokens (docs/protocol.md, "Fencing tokens"): every lock published in a directory
//! gets a number above every one published there before, taken from a counter that only a
//! holder of the sentinel reads or advances.
//!
//! The counter is `.running/.fencing-token`: a dot name, so our scans skip it, and no `.lock`
//! suffix, so the original's `*.lock` glob never reads it as a lock. It lives beside the
//! locks, not in them, so it survives every lock being released or reclaimed.

use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::Path;

use super::in_the_way::{describe, open_error};
use super::sentinel::SentinelGuard;
use crate::error::{Error, ErrorKind};
use crate::sys;

/// The counter's name in `.running/`.
pub(crate) const COUNTER_NAME: &str = ".fencing-token";

/// Digits written: enough for every `u64`, so every write is the same size and overwrites
/// the whole of the previous one.
const COUNTER_DIGITS: usize = 20;

/// More than a counter of ours ever holds; a larger file is not ours.
const COUNTER_READ_LIMIT: usize = 64;

/// Advances the counter and returns the new token: the last one issued plus one (the first is
/// 1). Under the sentinel, so no two acquisitions see the same value.
///
/// The value is rewritten in place with one `pwrite` of fixed size, so a process killed at
/// any point leaves either the old value or the new one. A token taken by an attempt that
/// then fails is never issued again: tokens grow, with gaps.
pub(super) fn next_token(sentinel: &SentinelGuard) -> Result<u64, Error> {
    let dir = sentinel.dir();
    let path = dir.join(COUNTER_NAME);
    // Never through a symlink (`O_NOFOLLOW`), never blocking on a FIFO (`O_NONBLOCK`): a
    // co-user of a shared directory may have put either there.
    let file = dir
        .open_or_create_rw(COUNTER_NAME, sys::COUNTER_FILE_MODE)
        .map_err(|err| match dir.stat(COUNTER_NAME) {
            Ok(Some(stat)) if stat.file_type != sys::FileType::RegularFile => {
                not_a_counter(&path, describe(stat.file_type))
            }
            _ => open_error(dir, COUNTER_NAME, err),
        })?;
    let meta = file
        .metadata()
        .map_err(|err| Error::io("cannot stat", &path, err))?;
    if !meta.is_file() {
        return Err(not_a_counter(&path, describe(sys::file_type_of(&meta))));
    }
    // A second name of the same inode may be outside `.running/` (a hard link a co-user
    // made, where the kernel lets them): what we write must change nothing outside.
    if meta.nlink() > 1 {
        return Err(not_a_counter(
            &path,
            &format!("file with {} hard links", meta.nlink()),
        ));
    }
    if meta.len() > COUNTER_READ_LIMIT as u64 {
        return Err(not_a_counter(
            &path,
            &format!("file of {} bytes", meta.len()),
        ));
    }
    let last = read_counter(&file, &path)?;
    let next = last.checked_add(1).ok_or_else(|| {
        Error::at_path(
            ErrorKind::Interference,
            &path,
            "holds the largest token there is, so no later lock can be given a larger one",
        )
    })?;
    let text = format!("{next:0COUNTER_DIGITS$}\n");
    file.write_all_at(text.as_bytes(), 0)
        .map_err(|err| Error::io("cannot advance the fencing-token counter", &path, err))?;
    // A value written by hand may be longer than ours: cut what is left of it after ours, or
    // the next read would find our digits followed by its last ones. Cut after the write, so
    // that a process killed in between leaves an unreadable counter (an error naming it), never
    // a shorter number.
    if meta.len() > text.len() as u64 {
        file.set_len(text.len() as u64)
            .map_err(|err| Error::io("cannot advance the fencing-token counter", &path, err))?;
    }
    Ok(next)
}

/// The error for a `.fencing-token` that is not a counter of ours (`what` it is instead).
fn not_a_counter(path: &Path, what: &str) -> Error {
    Error::at_path(
        ErrorKind::NotALockFile,
        path,
        format!(
            "is a {what}, not the fencing-token counter (a regular file of one number); \
             refusing to use it. Remove it if nobody put it there on purpose: the next lock \
             creates a new counter (see docs/protocol.md, \"Fencing tokens\")"
        ),
    )
}

/// The last token issued: 0 for a counter just created (empty).
fn read_counter(file: &File, path: &Path) -> Result<u64, Error> {
    let mut text = Vec::with_capacity(COUNTER_READ_LIMIT);
    // From the start: the descriptor was opened just now. `read_to_end` retries an
    // interrupted read itself.
    file.take(COUNTER_READ_LIMIT as u64)
        .read_to_end(&mut text)
        .map_err(|err| Error::io("cannot read the fencing-token counter", path, err))?;
    if text.is_empty() {
        return Ok(0);
    }
    std::str::from_utf8(&text)
        .ok()
        .map(str::trim_end)
        // Digits only: `parse` takes a leading `+` too (and refuses an empty string).
        .filter(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| {
            Error::at_path(
                ErrorKind::InvalidRecord,
                path,
                format!(
                    "is the fencing-token counter but holds {:?}, not a number; write into \
                     it a number at least as large as the largest token any resource has \
                     seen (`scope-lock list` shows those of the locks held now)",
                    String::from_utf8_lossy(&text)
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn counter_in(dir: &Path) -> Result<SentinelGuard, Error> {
        SentinelGuard::lock(dir, std::time::Duration::from_secs(5))
    }

    #[test]
    fn tokens_start_at_one_and_grow_by_one_under_the_sentinel() -> TestResult {
        let dir = tempfile::tempdir()?;
        let sentinel = counter_in(dir.path())?;
        assert_eq!(next_token(&sentinel)?, 1);
        assert_eq!(next_token(&sentinel)?, 2);
        assert_eq!(next_token(&sentinel)?, 3);
        let text = std::fs::read_to_string(dir.path().join(COUNTER_NAME))?;
        assert_eq!(text, "00000000000000000003\n");
        Ok(())
    }

    /// A counter written by hand (a user restoring it, say) is read whatever its width.
    #[test]
    fn a_counter_written_by_hand_goes_on_from_its_value() -> TestResult {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join(COUNTER_NAME), "41\n")?;
        let sentinel = counter_in(dir.path())?;
        assert_eq!(next_token(&sentinel)?, 42);
        Ok(())
    }

    #[test]
    fn a_counter_that_is_not_a_number_is_an_error_naming_it() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(COUNTER_NAME);
        let sentinel = counter_in(dir.path())?;
        for junk in [
            "x\n",
            "-3\n",
            "+3\n",
            "\n",
            " 1",
            "99999999999999999999999\n",
        ] {
            std::fs::write(&path, junk)?;
            let err = next_token(&sentinel).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidRecord, "{junk:?}: {err}");
            assert!(err.to_string().contains(COUNTER_NAME), "{err}");
            assert!(err.to_string().contains("not a number"), "{err}");
        }
        std::fs::write(&path, format!("{}\n", u64::MAX))?;
        let err = next_token(&sentinel).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Interference, "{err}");
        // Refusing changes nothing.
        assert_eq!(std::fs::read_to_string(&path)?, format!("{}\n", u64::MAX));
        Ok(())
    }

    #[test]
    fn a_counter_that_is_a_symlink_is_never_followed() -> TestResult {
        let dir = tempfile::tempdir()?;
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "7\n")?;
        std::os::unix::fs::symlink(&elsewhere, dir.path().join(COUNTER_NAME))?;
        let sentinel = counter_in(dir.path())?;
        let err = next_token(&sentinel).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotALockFile, "{err}");
        assert!(err.to_string().contains(COUNTER_NAME), "{err}");
        assert!(err.to_string().contains("symlink"), "{err}");
        assert_eq!(std::fs::read_to_string(&elsewhere)?, "7\n");
        Ok(())
    }

    /// A value written by hand wider than ours is cut after ours is written, so that the next
    /// read finds our number and nothing after it.
    #[test]
    fn a_counter_wider_than_ours_is_cut_to_our_width() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(COUNTER_NAME);
        std::fs::write(&path, format!("{:0>30}\n", 41))?;
        let sentinel = counter_in(dir.path())?;
        assert_eq!(next_token(&sentinel)?, 42);
        assert_eq!(next_token(&sentinel)?, 43);
        assert_eq!(std::fs::read_to_string(&path)?, "00000000000000000043\n");
        Ok(())
    }

    /// A file longer than any counter of ours is refused, not read in part: its first bytes
    /// may be a smaller number than the whole (a token that goes back).
    #[test]
    fn a_counter_longer_than_ours_is_refused_not_read_in_part() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(COUNTER_NAME);
        let long = format!("{:0>100}\n", 5);
        std::fs::write(&path, &long)?;
        let sentinel = counter_in(dir.path())?;
        let err = next_token(&sentinel).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotALockFile, "{err}");
        assert!(err.to_string().contains(COUNTER_NAME), "{err}");
        assert!(err.to_string().contains("101 bytes"), "{err}");
        assert_eq!(std::fs::read_to_string(&path)?, long);
        // As long as the longest counter read, it is read whole.
        std::fs::write(&path, format!("{:0>63}\n", 5))?;
        assert_eq!(next_token(&sentinel)?, 6);
        Ok(())
    }

    /// A second name of the counter's inode may be a file outside `.running/`: nothing is
    /// written through it.
    #[test]
    fn a_counter_with_another_name_elsewhere_is_never_written() -> TestResult {
        let dir = tempfile::tempdir()?;
        let running = dir.path().join("running");
        std::fs::create_dir(&running)?;
        let outside = dir.path().join("someone-elses-file");
        std::fs::write(&outside, "7\n")?;
        std::fs::hard_link(&outside, running.join(COUNTER_NAME))?;
        let sentinel = counter_in(&running)?;
        let err = next_token(&sentinel).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotALockFile, "{err}");
        assert!(err.to_string().contains("2 hard links"), "{err}");
        assert_eq!(std::fs::read_to_string(&outside)?, "7\n");
        Ok(())
    }

    /// A FIFO or a directory in the counter's place is refused with an error naming it; the
    /// FIFO is opened without blocking, so nothing waits for a writer that never comes.
    #[test]
    fn a_counter_that_is_a_fifo_or_a_directory_is_refused_without_waiting() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(COUNTER_NAME);
        let sentinel = counter_in(dir.path())?;
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &path,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o666),
            0,
        )?;
        let err = next_token(&sentinel).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotALockFile, "{err}");
        assert!(err.to_string().contains(COUNTER_NAME), "{err}");
        assert!(err.to_string().contains("FIFO"), "{err}");
        std::fs::remove_file(&path)?;
        std::fs::create_dir(&path)?;
        let err = next_token(&sentinel).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotALockFile, "{err}");
        assert!(err.to_string().contains("directory"), "{err}");
        // Said as the counter's problem, with what to do about it, not as a lock file's.
        assert!(
            err.to_string().contains("not the fencing-token counter"),
            "{err}"
        );
        Ok(())
    }
}
