//! Sharing `.running/` with the original manager and with whatever people and crashes leave
//! there: a file we did not write is never moved aside or reclaimed unless it is
//! provably stale (B10), every `*.lock` name is seen, we never publish what we cannot read
//! back, a guard releases its own file wherever the process's current directory has gone,
//! listing needs read access only, and a waiter that may not write to the queue is told so.
//!
//! Tests that need another current directory or another user run part of themselves in a child
//! process: this test binary again, filtered to the ignored [`child_entry`], with the role in
//! [`ROLE`]. As root (CI containers) the child drops to `nobody` (uid 65534) with
//! `CommandExt::uid`; as an ordinary user it already is one.

use std::env;
use std::error::Error;
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use scope_lock::testing;
use scope_lock::testing::{DEAD_PID, TestResult, expect_conflict, fixture, problem_at};
use scope_lock::{
    AcquireError, ConflictRule, ErrorKind, LockManager, LockRecord, LockRequest, ProblemKind,
};

const STARTED: &str = "2026-01-01T00:00:00.000000+00:00";

/// The unprivileged user a root test process runs its child as.
const NOBODY: u32 = 65534;

/// A process that is alive and is not one of our ancestors (so the ancestor rule cannot be
/// what keeps its lock): `cat` waiting on a pipe. Dropping it closes the pipe and reaps it.
struct LiveProcess(Child);

impl LiveProcess {
    fn spawn() -> Result<Self, Box<dyn Error>> {
        Ok(Self(
            Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()?,
        ))
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for LiveProcess {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// The bytes Python's `json.dump` writes for a record of the original whose strings are given
/// already escaped (so a test can put in `\udce9`, as `surrogateescape` produces).
fn python_record(loop_name: &str, scope: &[&str], pid: u32) -> Vec<u8> {
    let scope: Vec<String> = scope.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        r#"{{"loop_name": "{loop_name}", "scope": [{}], "pid": {pid}, "started_at": "{STARTED}"}}"#,
        scope.join(", ")
    )
    .into_bytes()
}

/// Asserts that the file at `path` is still there with exactly `bytes`.
#[track_caller]
fn assert_untouched(path: &Path, bytes: &[u8]) {
    match fs::read(path) {
        Ok(now) => assert!(now == bytes, "{} was changed", path.display()),
        Err(err) => panic!("{} is gone: {err}", path.display()),
    }
}

// ---------------------------------------------------------------------------------------------
// Defect 1: the original's live lock that our parser once refused
// ---------------------------------------------------------------------------------------------

#[test]
fn a_live_original_lock_with_surrogate_escapes_blocks_and_stays() -> TestResult {
    let f = fixture()?;
    let holder = LiveProcess::spawn()?;
    // Python writes the non-UTF-8 byte 0xE9 of a path as the lone surrogate \udce9.
    let theirs = format!("{}/caf\\udce9", f.root.display());
    let bytes = python_record("caf\\udce9", &[&theirs], holder.pid());
    let path = f.write_lock_file("original", &bytes)?;

    let conflict = expect_conflict(f.acquire("mine", ""));
    assert_eq!(conflict.lock_path(), path, "{conflict}");
    assert_eq!(conflict.holder().map(LockRecord::pid), Some(holder.pid()));
    assert_untouched(&path, &bytes);
    Ok(())
}

#[test]
fn overlap_with_the_originals_non_utf8_paths_is_decided_on_their_bytes() -> TestResult {
    let f = fixture()?;
    let holder = LiveProcess::spawn()?;
    // The original holds `caf<0xE9>`, a name that is not UTF-8.
    let theirs = format!("{}/caf\\udce9", f.root.display());
    f.write_lock_file("original", &python_record("o", &[&theirs], holder.pid()))?;
    // Different directories whose names only look alike once the byte is lost:
    // `caf\u{fffd}` (U+FFFD itself) and `caf\u{e9}` (0xC3 0xA9).
    for name in ["caf\u{fffd}", "caf\u{e9}"] {
        let guard = f.acquire(name, &format!("{name}/src"))?;
        guard.release()?;
    }
    // Its parent and the path itself overlap.
    expect_conflict(f.acquire("parent", ""));
    let listing = f.locks.list_locks()?;
    let paths = listing.locks()[0].record().scope_paths();
    assert_eq!(
        paths[0].as_os_str().as_bytes(),
        [f.root.as_os_str().as_bytes(), b"/caf\xe9"].concat()
    );
    Ok(())
}

#[test]
fn an_unparsable_file_without_our_marker_is_kept_while_its_pid_lives() -> TestResult {
    let f = fixture()?;
    let holder = LiveProcess::spawn()?;
    // A record the original could write but that is not one we accept (scope a number).
    let bytes = format!(
        r#"{{"loop_name": "x", "scope": 5, "pid": {}, "started_at": "{STARTED}"}}"#,
        holder.pid()
    )
    .into_bytes();
    let path = f.write_lock_file("odd", &bytes)?;

    let conflict = expect_conflict(f.acquire("mine", "src"));
    assert_eq!(conflict.lock_path(), path, "{conflict}");
    assert!(
        matches!(conflict.rule(), ConflictRule::Unreadable { reason } if reason.contains("alive")),
        "{conflict}"
    );
    let listing = f.locks.list_locks()?;
    let problem = problem_at(&listing, &path)?;
    assert!(problem.blocks(), "{problem}");
    assert_untouched(&path, &bytes);

    // Once its pid is gone it is provably stale: moved aside, content kept.
    drop(holder);
    let guard = f.acquire("mine", "src")?;
    assert!(!path.exists(), "a stale file is still in the way");
    guard.release()?;
    Ok(())
}

#[test]
fn an_unparsable_file_without_our_marker_and_without_a_pid_blocks_and_is_reported() -> TestResult {
    let f = fixture()?;
    // What the original leaves after truncating and before writing, or a crash mid-write.
    let bytes = br#"{"loop_name": "half", "sco"#.to_vec();
    let path = f.write_lock_file("torn", &bytes)?;

    let conflict = expect_conflict(f.acquire("mine", "src"));
    assert_eq!(conflict.lock_path(), path, "{conflict}");
    assert!(
        conflict.to_string().contains(&path.display().to_string()),
        "{conflict}"
    );
    assert_untouched(&path, &bytes);
    Ok(())
}

#[test]
fn a_live_original_lock_larger_than_the_record_limit_blocks_and_stays() -> TestResult {
    let f = fixture()?;
    let holder = LiveProcess::spawn()?;
    // Python has no size limit: 3000 long paths are about 2.3 MB of JSON.
    let long: Vec<String> = (0..3000)
        .map(|i| format!("{}/{}-{i}", f.root.display(), "p".repeat(760)))
        .collect();
    let refs: Vec<&str> = long.iter().map(String::as_str).collect();
    let bytes = python_record("big", &refs, holder.pid());
    assert!(bytes.len() as u64 > scope_lock::MAX_RECORD_BYTES);
    let path = f.write_lock_file("big", &bytes)?;

    let conflict = expect_conflict(f.acquire("mine", "src"));
    assert_eq!(conflict.lock_path(), path, "{conflict}");
    assert_untouched(&path, &bytes);

    drop(holder);
    let guard = f.acquire("mine", "src")?;
    assert!(!path.exists(), "a stale oversized file is still in the way");
    guard.release()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Defect 2: file names that are not UTF-8
// ---------------------------------------------------------------------------------------------

#[test]
fn a_live_original_lock_whose_name_is_not_utf8_is_seen() -> TestResult {
    let f = fixture()?;
    f.init()?;
    let holder = LiveProcess::spawn()?;
    let bytes = python_record("caf\\udce9", &[&f.path("src")], holder.pid());
    let path = f
        .running()
        .join(OsStr::from_bytes(b"caf\xe9-20260101.lock"));
    fs::write(&path, &bytes)?;

    let listing = f.locks.list_locks()?;
    assert!(
        listing.locks().iter().any(|lock| lock.path() == path),
        "not listed: {listing:#?}"
    );
    let conflict = expect_conflict(f.acquire("mine", "src/lib.rs"));
    assert_eq!(conflict.lock_path(), path, "{conflict}");
    assert_untouched(&path, &bytes);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Defect 3: a record too large to read back is never published
// ---------------------------------------------------------------------------------------------

#[test]
fn a_scope_too_large_to_read_back_is_refused_before_publishing() -> TestResult {
    let f = fixture()?;
    let scope: Vec<String> = (0..5000)
        .map(|i| f.path(&format!("{}-{i}", "s".repeat(240))))
        .collect();
    let huge = LockRequest::new("huge").scope(scope);
    // Not `expect_failure`: printing a guard of this scope would be megabytes.
    let err = match f.locks.try_acquire(&huge) {
        Err(AcquireError::Failed(err)) => err,
        Err(other @ (AcquireError::Conflict(_) | AcquireError::Timeout(_))) => {
            return Err(format!("not refused as too large: {other}").into());
        }
        Ok(guard) => {
            let published = fs::metadata(guard.path())?.len();
            return Err(format!("published a record of {published} bytes").into());
        }
    };
    assert_eq!(err.kind(), ErrorKind::InvalidScope, "{err}");
    let limit = scope_lock::MAX_RECORD_BYTES.to_string();
    assert!(
        err.to_string().contains(&limit),
        "the limit is not named: {err}"
    );
    assert!(f.lock_files()?.is_empty(), "{:?}", f.lock_files()?);

    // Nothing was published, so everyone else can still acquire.
    let guard = f.acquire("other", "elsewhere")?;
    guard.release()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Defect 5: moving aside long names
// ---------------------------------------------------------------------------------------------

#[test]
fn a_stale_invalid_file_with_the_longest_name_is_moved_aside_and_its_name_acquired() -> TestResult {
    let f = fixture()?;
    let stem = "n".repeat(250); // `<stem>.lock` is 255 bytes, the longest file name
    let bytes = format!(r#"{{"loop_name": "x", "scope": 5, "pid": {DEAD_PID}}}"#).into_bytes();
    let path = f.write_lock_file(&stem, &bytes)?;

    let listing = f.locks.list_locks()?;
    let problem = problem_at(&listing, &path)?;
    let ProblemKind::MovedAside {
        moved_to: Some(aside),
        ..
    } = problem.kind()
    else {
        return Err(format!("not moved aside: {problem}").into());
    };
    assert_eq!(fs::read(aside)?, bytes);
    assert!(aside.file_name().is_some_and(|n| n.len() <= 255));

    f.write_lock_file(&stem, &bytes)?;
    let guard = f.acquire(&stem, "src")?;
    assert_eq!(guard.path(), path);
    guard.release()?;
    Ok(())
}

#[test]
fn a_stale_file_that_cannot_be_moved_aside_is_named_with_the_cause_by_acquire() -> TestResult {
    let f = fixture()?;
    let bytes = format!(r#"{{"loop_name": "x", "scope": 5, "pid": {DEAD_PID}}}"#).into_bytes();
    let path = f.write_lock_file("x", &bytes)?;
    // Every name this process would move it to is taken.
    for n in 0..100 {
        let name = format!(".x.lock.invalid-{}-{n}", std::process::id());
        fs::write(f.running().join(name), "taken")?;
    }
    let err = testing::expect_failure(f.acquire("x", "src"));
    assert_eq!(err.kind(), ErrorKind::StaleInTheWay, "{err}");
    assert_eq!(err.path(), Some(path.as_path()), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("stale") && message.contains("all taken"),
        "the real cause is not named: {message}"
    );
    assert_untouched(&path, &bytes);
    Ok(())
}

#[test]
fn moving_aside_without_write_access_reports_the_error() -> TestResult {
    let f = fixture()?;
    let bytes = format!(r#"{{"loop_name": "x", "scope": 5, "pid": {DEAD_PID}}}"#).into_bytes();
    let path = f.write_lock_file("x", &bytes)?;
    fs::write(f.running().join(".acquire.lock"), "")?;
    for dir in [&f.root, &f.loops_dir(), &f.running().to_path_buf()] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    }
    if !rustix::process::geteuid().is_root() {
        // An ordinary user owns the fixture: take the write access away instead.
        fs::set_permissions(f.running(), fs::Permissions::from_mode(0o555))?;
    }
    let said = run_child("list", &f.loops_dir(), &f.root, true);
    fs::set_permissions(f.running(), fs::Permissions::from_mode(0o755))?;
    let said = said?;
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("moving it aside failed")
            && (said[0].contains("Permission denied") || said[0].contains("not permitted")),
        "{said:?}"
    );
    assert_untouched(&path, &bytes);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Defect 6: a directory named like a lock
// ---------------------------------------------------------------------------------------------

#[test]
fn a_directory_named_like_a_lock_is_reported_and_left_alone() -> TestResult {
    let f = fixture()?;
    f.init()?;
    let dir = f.running().join("x.lock");
    fs::create_dir(&dir)?;
    let listing = f.locks.list_locks()?;
    let problem = problem_at(&listing, &dir)?;
    assert!(
        matches!(problem.kind(), ProblemKind::NotRegular { .. }),
        "{problem}"
    );
    assert!(problem.to_string().contains("directory"), "{problem}");
    assert!(!problem.blocks(), "{problem}");
    assert!(dir.is_dir());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Defects 4, 7, 9: other directories and other users, in a child process
// ---------------------------------------------------------------------------------------------

/// Which part a child process plays, and the directory it works in.
const ROLE: &str = "SCOPE_LOCK_SHARING_ROLE";
const ARG: &str = "SCOPE_LOCK_SHARING_ARG";

/// Runs [`child_entry`] in a child process as `role` with `arg`, from `cwd`, as `nobody` when
/// `unprivileged` and this process is root. Returns the lines it reported (`said: ...`).
fn run_child(
    role: &str,
    arg: &Path,
    cwd: &Path,
    unprivileged: bool,
) -> Result<Vec<String>, Box<dyn Error>> {
    let mut command = Command::new(env::current_exe()?);
    command
        .args([
            "--exact",
            "sharing::child_entry",
            "--include-ignored",
            "--nocapture",
        ])
        .args(["--test-threads", "1"])
        .env(ROLE, role)
        .env(ARG, arg)
        .current_dir(cwd);
    if unprivileged && rustix::process::geteuid().is_root() {
        command.uid(NOBODY).gid(NOBODY);
    }
    let output = command.output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "child `{role}` failed: {}\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(stdout
        .lines()
        .filter_map(|line| line.split_once("said: "))
        .map(|(_, said)| said.to_owned())
        .collect())
}

/// Gives `path` and everything in it to `nobody` when we are root, so a child running as
/// `nobody` owns the project as its user would.
fn give_to_child_user(path: &Path) -> TestResult {
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    chown(path, Some(NOBODY), Some(NOBODY))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            give_to_child_user(&entry?.path())?;
        }
    }
    Ok(())
}

/// Not a test by itself: the entry point of the child processes the tests above start.
#[test]
#[ignore = "entry point of child processes; runs only when a test starts it with a role"]
fn child_entry() -> TestResult {
    let Ok(role) = env::var(ROLE) else {
        return Ok(());
    };
    let arg = PathBuf::from(env::var_os(ARG).ok_or("no argument")?);
    match role.as_str() {
        // Acquire with the relative default directory, move away, release.
        "release-after-chdir" => {
            let locks = LockManager::default();
            let guard = locks.try_acquire(&LockRequest::new("rel").scope(["src"]))?;
            let path = env::current_dir()?.join(guard.path());
            env::set_current_dir(&arg)?;
            guard.release()?;
            println!("said: released; file exists: {}", path.exists());
        }
        // List a directory this user may read but not write.
        "list" => {
            let listing = LockManager::new(&arg).list_locks()?;
            for lock in listing.locks() {
                println!("said: lock {}", lock.lock_name());
            }
            for problem in listing.problems() {
                println!("said: problem {problem}");
            }
        }
        // Acquire, then do what the original does to a lock file of the same name.
        // Acquire beside another user's files, list, release.
        "acquire-beside-others" => {
            let locks = LockManager::new(&arg);
            let guard = locks.try_acquire(&LockRequest::new("mine").scope(["/nowhere"]))?;
            println!("said: held");
            for problem in locks.list_locks()?.problems() {
                println!("said: problem {problem}");
            }
            guard.release()?;
            println!("said: released");
        }
        "truncate-own-lock" => {
            let locks = LockManager::new(&arg);
            let guard = locks.try_acquire(&LockRequest::new("ours").scope(["/nowhere"]))?;
            let opened = OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(guard.path());
            match opened {
                Ok(_) => println!("said: opened for writing"),
                Err(err) => println!("said: refused: {:?}", err.kind()),
            }
            let bytes = fs::read(guard.path())?;
            println!(
                "said: record intact: {}",
                LockRecord::from_json(&bytes)? == *guard.record()
            );
            guard.release()?;
        }
        // Acquire the loop named by the current directory's `stem` file, over `/nowhere`,
        // without waiting (`try-acquire`) or waiting for at most ten seconds (`acquire`); say
        // why not.
        "try-acquire" | "acquire" => {
            let stem = fs::read_to_string("stem")?;
            let locks = LockManager::new(&arg);
            let request = LockRequest::new(stem.trim()).scope(["/nowhere"]);
            let acquired = if role == "acquire" {
                locks.acquire(&request, Duration::from_secs(10))
            } else {
                locks.try_acquire(&request)
            };
            match acquired {
                Ok(guard) => {
                    println!("said: held");
                    guard.release()?;
                }
                Err(err) => {
                    let err = err.error().ok_or_else(|| format!("not a failure: {err}"))?;
                    let cause = err.io_error().map(std::io::Error::kind);
                    println!("said: {:?}: {err} ({cause:?})", err.kind());
                }
            }
        }
        other => return Err(format!("unknown role {other}").into()),
    }
    Ok(())
}

#[test]
fn a_release_after_chdir_removes_the_lock_file() -> TestResult {
    let f = fixture()?;
    let elsewhere = f.root.join("elsewhere");
    fs::create_dir(&elsewhere)?;
    let said = run_child("release-after-chdir", &elsewhere, &f.root, false)?;
    assert_eq!(said, ["released; file exists: false"]);
    assert!(
        f.lock_files()?.is_empty(),
        "left behind: {:?}",
        f.lock_files()?
    );
    assert!(
        elsewhere.read_dir()?.next().is_none(),
        "wrote into the new cwd"
    );
    Ok(())
}

#[test]
fn a_user_who_can_only_read_the_directory_can_list_it() -> TestResult {
    let f = fixture()?;
    let holder = LiveProcess::spawn()?;
    f.write_lock_file(
        "theirs",
        &python_record("theirs", &[&f.path("src")], holder.pid()),
    )?;
    // Created by an acquire of the directory's owner; readable by all, writable by none else.
    fs::write(f.running().join(".acquire.lock"), "")?;
    for path in [&f.root, &f.loops_dir(), &f.running().to_path_buf()] {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    }
    let said = run_child("list", &f.loops_dir(), &f.root, true)?;
    assert_eq!(said, ["lock theirs"]);
    Ok(())
}

/// A lock file that cannot even be opened may be anyone's live lock: it blocks as unreadable
/// and says why, and is not taken for something other than a regular file.
#[test]
fn a_lock_file_the_user_cannot_open_is_reported_unreadable_naming_the_cause() -> TestResult {
    let f = fixture()?;
    let bytes = python_record("theirs", &[&f.path("src")], DEAD_PID);
    let path = f.write_lock_file("theirs", &bytes)?;
    fs::write(f.running().join(".acquire.lock"), "")?;
    for dir in [&f.root, &f.loops_dir(), &f.running().to_path_buf()] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000))?;
    let said = run_child("list", &f.loops_dir(), &f.root, true);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
    let said = said?;
    assert_eq!(
        said,
        [format!(
            "problem {}: cannot be read (Permission denied); treated as held. \
             Its owner or root can make it readable or remove it",
            path.display()
        )]
    );
    assert_untouched(&path, &bytes);
    Ok(())
}

/// Runs the `try-acquire` or `acquire` child (`role`) as `nobody` on `f`'s directory for the
/// loop named `stem`.
fn acquire_as_child(
    f: &testing::Fixture,
    role: &str,
    stem: &str,
) -> Result<Vec<String>, Box<dyn Error>> {
    fs::write(f.root.join("stem"), stem)?;
    fs::set_permissions(f.root.join("stem"), fs::Permissions::from_mode(0o644))?;
    run_child(role, &f.loops_dir(), &f.root, true)
}

/// A sentinel the user may not open is a regular file all the same: the error is the open's,
/// and does not call it something other than a lock file.
#[test]
fn a_sentinel_the_user_cannot_open_is_an_open_error_naming_it() -> TestResult {
    let f = fixture()?;
    f.init()?;
    let sentinel = f.running().join(".acquire.lock");
    fs::write(&sentinel, "")?;
    for dir in [&f.root, &f.loops_dir(), &f.running().to_path_buf()] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    }
    fs::set_permissions(&sentinel, fs::Permissions::from_mode(0o000))?;
    let said = acquire_as_child(&f, "try-acquire", "mine");
    fs::set_permissions(&sentinel, fs::Permissions::from_mode(0o644))?;
    assert_eq!(
        said?,
        [format!(
            "Io: cannot open {} (Some(PermissionDenied))",
            sentinel.display()
        )]
    );
    Ok(())
}

/// A nested lock whose directory the user may not create fails naming that directory, and
/// leaves nothing behind.
#[test]
fn a_nested_directory_the_user_cannot_create_is_an_error_naming_it() -> TestResult {
    let f = fixture()?;
    f.init()?;
    fs::create_dir(f.running().join("a"))?;
    fs::write(f.running().join(".acquire.lock"), "")?;
    give_to_child_user(&f.running().join(".acquire.lock"))?;
    // Ours (root's, when we are root): the child may search and list it, not write to it.
    for dir in [&f.root, &f.loops_dir(), &f.running().to_path_buf()] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    }
    give_to_child_user(f.running())?;
    let nested = f.running().join("a");
    if rustix::process::geteuid().is_root() {
        chown(&nested, Some(0), Some(0))?;
    }
    fs::set_permissions(&nested, fs::Permissions::from_mode(0o555))?;
    let said = acquire_as_child(&f, "try-acquire", "a/b/x");
    fs::set_permissions(&nested, fs::Permissions::from_mode(0o755))?;
    assert_eq!(
        said?,
        [format!(
            "Io: cannot create directory {} (Some(PermissionDenied))",
            nested.join("b").display()
        )]
    );
    assert!(
        f.lock_files()?.is_empty(),
        "left behind: {:?}",
        f.lock_files()?
    );
    Ok(())
}

/// Makes `.running/` one the child may read but not write (ours, when we are root; mode 0555
/// when we are not), holding a live lock of the original over `/nowhere`, so that the child's
/// waiting acquire must queue. Returns the lock's holder, the lock file and its bytes.
fn blocked_in_a_directory_the_user_cannot_write(
    f: &testing::Fixture,
) -> Result<(LiveProcess, PathBuf, Vec<u8>), Box<dyn Error>> {
    let holder = LiveProcess::spawn()?;
    let bytes = python_record("theirs", &["/nowhere"], holder.pid());
    let path = f.write_lock_file("theirs", &bytes)?;
    fs::write(f.running().join(".acquire.lock"), "")?;
    for dir in [&f.root, &f.loops_dir(), &f.running().to_path_buf()] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    }
    Ok((holder, path, bytes))
}

/// Takes write access to `dir` away from an ordinary user running the tests (as root the
/// child is `nobody`, and `dir` is root's already); `restore` gives it back.
fn deny_write_when_not_root(dir: &Path, restore: bool) -> TestResult {
    if !rustix::process::geteuid().is_root() {
        let mode = if restore { 0o755 } else { 0o555 };
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// A waiter that may not create the queue's directory fails at once, naming the directory
/// and the denial, and does not take the missing directory for the cause.
#[test]
fn a_waiting_queue_the_user_cannot_create_is_an_error_naming_it() -> TestResult {
    let f = fixture()?;
    let (_holder, lock, bytes) = blocked_in_a_directory_the_user_cannot_write(&f)?;
    deny_write_when_not_root(f.running(), false)?;
    let said = acquire_as_child(&f, "acquire", "mine");
    deny_write_when_not_root(f.running(), true)?;
    let queue = f.running().join(".queue");
    assert_eq!(
        said?,
        [format!(
            "Io: cannot create the waiting queue {} (Some(PermissionDenied))",
            queue.display()
        )]
    );
    assert!(!queue.exists());
    assert_untouched(&lock, &bytes);
    Ok(())
}

/// A waiter that may not create its ticket in the queue fails at once, naming the ticket and
/// the denial, and does not take the denial for numbers already taken.
#[test]
fn a_ticket_the_user_cannot_create_is_an_error_naming_it() -> TestResult {
    let f = fixture()?;
    let (_holder, lock, bytes) = blocked_in_a_directory_the_user_cannot_write(&f)?;
    let queue = f.running().join(".queue");
    fs::create_dir(&queue)?;
    fs::set_permissions(&queue, fs::Permissions::from_mode(0o755))?;
    deny_write_when_not_root(&queue, false)?;
    let said = acquire_as_child(&f, "acquire", "mine");
    deny_write_when_not_root(&queue, true)?;
    assert_eq!(
        said?,
        [format!(
            "Io: cannot create ticket {} (Some(PermissionDenied))",
            queue.join("00000000000000000001").display()
        )]
    );
    assert!(queue.read_dir()?.next().is_none(), "left in the queue");
    assert_untouched(&lock, &bytes);
    Ok(())
}

#[test]
fn the_originals_truncating_open_of_a_live_lock_fails_for_its_owner() -> TestResult {
    let f = fixture()?;
    let loops = f.loops_dir();
    fs::create_dir_all(&loops)?;
    give_to_child_user(&f.root)?;
    let said = run_child("truncate-own-lock", &loops, &f.root, true)?;
    assert_eq!(
        said,
        ["refused: PermissionDenied", "record intact: true"],
        "a live lock file was opened for writing by its own user"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Hostile directories
// ---------------------------------------------------------------------------------------------

/// A regular file's bytes, inode and modification time (seconds, nanoseconds).
type FileState = (Vec<u8>, u64, i64, i64);

/// The [`FileState`] of `path`, for "never touched" checks.
fn state_of(path: &Path) -> Result<FileState, Box<dyn Error>> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(path)?;
    Ok((fs::read(path)?, meta.ino(), meta.mtime(), meta.mtime_nsec()))
}

#[test]
fn a_running_directory_replaced_by_a_symlink_to_a_file_is_an_error_and_the_file_is_untouched()
-> TestResult {
    let f = fixture()?;
    let victim = f.root.join("victim.txt");
    fs::write(&victim, "someone's data\n")?;
    let before = state_of(&victim)?;
    fs::create_dir_all(f.loops_dir())?;
    std::os::unix::fs::symlink(&victim, f.running())?;

    let err = testing::expect_failure(f.acquire("mine", "src"));
    assert!(
        err.to_string().contains(&f.running().display().to_string()),
        "the error does not name the directory: {err}"
    );
    let listed = f.locks.list_locks();
    assert!(listed.is_err(), "listed a file as a directory: {listed:?}");
    assert_eq!(
        state_of(&victim)?,
        before,
        "the victim was written, truncated or replaced"
    );
    Ok(())
}

/// A world-writable sticky `.running/` (mode 1777) holding another user's files: a stale lock,
/// a stale unparsable one and a live one. We (as `nobody`) can acquire and list; what we may
/// not remove is reported with the reason, and nothing of theirs changes.
#[test]
fn in_a_sticky_shared_directory_another_users_files_are_reported_and_never_touched() -> TestResult {
    if !rustix::process::geteuid().is_root() {
        // Files of another user can only be made by root; nothing to test as an ordinary user.
        eprintln!("skipped: needs root to create another user's files");
        return Ok(());
    }
    let f = fixture()?;
    let holder = LiveProcess::spawn()?;
    f.init()?;
    let theirs = [
        (
            "theirs-stale",
            python_record("stale", &[&f.path("a")], DEAD_PID),
        ),
        (
            "theirs-garbage",
            format!(r#"{{"loop_name": "g", "scope": 5, "pid": {DEAD_PID}}}"#).into_bytes(),
        ),
        (
            "theirs-live",
            python_record("live", &[&f.path("b")], holder.pid()),
        ),
    ];
    let mut before = Vec::new();
    for (stem, bytes) in &theirs {
        let path = f.write_lock_file(stem, bytes)?;
        before.push((path.clone(), state_of(&path)?));
    }
    fs::write(f.running().join(".acquire.lock"), "")?;
    for dir in [&f.root, &f.loops_dir()] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    }
    fs::set_permissions(f.running(), fs::Permissions::from_mode(0o1777))?;

    let said = run_child("acquire-beside-others", &f.loops_dir(), &f.root, true)?;
    assert_eq!(said.first().map(String::as_str), Some("held"), "{said:?}");
    assert_eq!(
        said.last().map(String::as_str),
        Some("released"),
        "{said:?}"
    );
    let problem = |stem: &str| {
        said.iter()
            .find(|line| line.contains(&format!("{stem}.lock")))
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        problem("theirs-stale").contains("cannot be removed"),
        "{said:?}"
    );
    assert!(
        problem("theirs-garbage").contains("moving it aside failed"),
        "{said:?}"
    );
    assert!(
        problem("theirs-live").is_empty(),
        "a live lock reported as a problem: {said:?}"
    );
    for (path, state) in before {
        assert_eq!(state_of(&path)?, state, "{} was touched", path.display());
    }
    assert!(
        f.lock_files()?
            .iter()
            .all(|p| p.to_string_lossy().contains("theirs-"))
    );
    Ok(())
}
