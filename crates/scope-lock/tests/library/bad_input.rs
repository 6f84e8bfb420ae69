//! B8 and B6 of `docs/protocol.md`: bad input and bad files give clear errors or reports that
//! name the input or path at fault; never a panic, a hang, or a foreign file deleted or
//! truncated.

use std::error::Error;
use std::fs::{self, File};
use std::os::unix::fs::{FileTypeExt, MetadataExt, symlink};
use std::path::{Path, PathBuf};

use scope_lock::testing::{
    DEAD_PID, Fixture, TestResult, expect_conflict, expect_failure, fixture, problem_at,
    without_hanging,
};
use scope_lock::{
    ConflictRule, ErrorKind, FileKind, LockManager, LockRecord, LockRequest, MAX_RECORD_BYTES,
    ProblemKind,
};

/// Makes a FIFO at `path` without spawning a process: a child holds a copy of every descriptor
/// of this test binary until it execs, which could keep another test's released flock alive for
/// an instant.
#[cfg(target_os = "linux")]
fn make_fifo(path: &Path) -> TestResult {
    use rustix::fs::{CWD, FileType, Mode, mknodat};
    mknodat(CWD, path, FileType::Fifo, Mode::from_raw_mode(0o644), 0)?;
    Ok(())
}

/// Makes a FIFO at `path` with the POSIX `mkfifo` utility: rustix has no `mknodat` (nor
/// `mkfifoat`) for Apple targets. Spawning is safe there, unlike on Linux (see above): macOS's
/// `posix_spawn`, which std's `Command` uses, is a single system call, so the child never holds
/// the close-on-exec descriptors of this process.
#[cfg(not(target_os = "linux"))]
fn make_fifo(path: &Path) -> TestResult {
    let status = std::process::Command::new("mkfifo")
        .args(["-m", "644"])
        .arg(path)
        .status()?;
    if !status.success() {
        return Err(format!("mkfifo {}: {status}", path.display()).into());
    }
    Ok(())
}

/// Asserts that `err` is about `path`, by its accessor and in its message.
fn assert_names_path(err: &scope_lock::Error, path: &Path) {
    assert_eq!(err.path(), Some(path), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "the message does not name {}: {err}",
        path.display()
    );
}

/// Asserts that `err` refuses something that is not a regular lock file at `path`, naming it.
#[track_caller]
fn assert_not_a_lock_file(err: &scope_lock::Error, path: &Path) {
    assert_eq!(err.kind(), ErrorKind::NotALockFile, "{err}");
    assert_names_path(err, path);
}

/// A fixture whose `.running/` exists, and the path `.running/<name>` in it, for a test to put
/// something there that is not a lock file.
fn with_running_dir(name: &str) -> Result<(Fixture, PathBuf), Box<dyn Error>> {
    let f = fixture()?;
    f.init()?;
    let path = f.running().join(name);
    Ok((f, path))
}

/// What [`acquire_with_a_link_at`] leaves: the fixture, the link, the file it points at, and
/// the error.
type Linked = (Fixture, PathBuf, PathBuf, scope_lock::Error);

/// With `.running/<name>` a symlink to a file outside `.running/` holding `content`, acquiring
/// `lock_name` over `src` is refused as not a lock file that the error names.
fn acquire_with_a_link_at(
    name: &str,
    content: &str,
    lock_name: &str,
) -> Result<Linked, Box<dyn Error>> {
    let (f, link) = with_running_dir(name)?;
    let outside = f
        .root
        .join(format!("outside-{}", name.trim_start_matches('.')));
    fs::write(&outside, content)?;
    symlink(&outside, &link)?;
    let err = expect_failure(f.acquire(lock_name, "src"));
    assert_not_a_lock_file(&err, &link);
    Ok((f, link, outside, err))
}

/// With a FIFO at `.running/<name>`, acquiring `lock_name` over `src` fails without hanging,
/// refused as not a lock file that the error names: the fixture, the FIFO, and the error.
fn acquire_with_a_fifo_at(
    name: &str,
    lock_name: &str,
) -> Result<(Fixture, PathBuf, scope_lock::Error), Box<dyn Error>> {
    let (f, fifo) = with_running_dir(name)?;
    make_fifo(&fifo)?;
    let what = format!("acquiring {lock_name} with a FIFO at {name}");
    let err = expect_failure(f.try_acquire_without_hanging(&what, f.request(lock_name, "src"))?);
    assert_not_a_lock_file(&err, &fifo);
    Ok((f, fifo, err))
}

/// A regular file's path, bytes, inode and mtime (seconds, nanoseconds).
type FileState = (PathBuf, Vec<u8>, u64, i64, i64);

/// Byte content, inode and mtime of every regular file under `dir`, recursively, for "nothing
/// was touched" checks.
fn snapshot(dir: &Path) -> Result<Vec<FileState>, Box<dyn Error>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let meta = fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            out.extend(snapshot(&path)?);
        } else if meta.is_file() {
            out.push((
                path.clone(),
                fs::read(&path)?,
                meta.ino(),
                meta.mtime(),
                meta.mtime_nsec(),
            ));
        }
    }
    out.sort();
    Ok(out)
}

/// The lock-file records of a foreign writer, by what is wrong with them.
fn corrupt_records() -> Vec<(&'static str, Vec<u8>)> {
    let with_pid = |pid: &str| {
        format!(
            r#"{{"loop_name": "bad", "scope": ["/nowhere"], "pid": {pid}, "started_at": "2026-01-01T00:00:00.000000+00:00"}}"#
        )
        .into_bytes()
    };
    let mut huge =
        br#"{"loop_name": "huge", "scope": ["/nowhere"], "pid": 1, "started_at": "t", "pad": ""#
            .to_vec();
    huge.resize(
        usize::try_from(MAX_RECORD_BYTES).unwrap_or(usize::MAX) + 100,
        b'x',
    );
    huge.extend_from_slice(b"\"}");
    vec![
        ("empty", Vec::new()),
        ("truncated", br#"{"loop_name": "bad", "sco"#.to_vec()),
        ("not-an-object", b"[1, 2, 3]".to_vec()),
        ("null", b"null".to_vec()),
        ("not-utf8", b"\xff\xfe\x00garbage".to_vec()),
        ("missing-key", br#"{"loop_name": "bad", "pid": 1}"#.to_vec()),
        ("string-pid", with_pid(r#""not-a-pid""#)),
        ("null-pid", with_pid("null")),
        ("zero-pid", with_pid("0")),
        ("negative-pid", with_pid("-4")),
        ("huge", huge),
    ]
}

/// Files written, with the bytes written to them.
type Written = Vec<(PathBuf, Vec<u8>)>;

/// Writes every corrupt record as `<dir>/bad-<case>.lock`.
fn write_corrupt_files(dir: &Path) -> Result<Written, Box<dyn Error>> {
    fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (case, bytes) in corrupt_records() {
        let path = dir.join(format!("bad-{case}.lock"));
        fs::write(&path, &bytes)?;
        written.push((path, bytes));
    }
    Ok(written)
}

/// Dot files in `dir` (other than the sentinel) whose content is exactly `bytes`.
fn dot_files_holding(dir: &Path, bytes: &[u8]) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.')
            && name != ".acquire.lock"
            && entry.file_type()?.is_file()
            && fs::read(&path)? == bytes
        {
            found.push(path);
        }
    }
    Ok(found)
}

// ---------------------------------------------------------------------------------------------
// Names, instance ids, scopes
// ---------------------------------------------------------------------------------------------

/// Asserts that both `try_acquire` and `find_conflict` refuse `request` with an error of `kind`
/// (`what` names the bad input in failure messages); returns `try_acquire`'s error.
#[track_caller]
fn refused_both_ways(
    f: &Fixture,
    request: &LockRequest,
    kind: ErrorKind,
    what: &str,
) -> scope_lock::Error {
    let err = expect_failure(f.locks.try_acquire(request));
    assert_eq!(err.kind(), kind, "{what}: {err}");
    match f.locks.find_conflict(request) {
        Err(found) => assert_eq!(found.kind(), kind, "{what}: {found}"),
        Ok(answer) => panic!("find_conflict accepted {what}: {answer:?}"),
    }
    err
}

fn bad_names() -> Vec<String> {
    vec![
        String::new(),
        "/etc/passwd".into(),
        "/abs/name".into(),
        ".".into(),
        "..".into(),
        "../escape".into(),
        "a/../../b".into(),
        "./a".into(),
        "a/.".into(),
        "a//b".into(),
        "trailing/".into(),
        "nul\0byte".into(),
        ".hidden".into(),
        ".acquire".into(),
        "dir/.hidden".into(),
        "n".repeat(251),
        format!("dir/{}", "n".repeat(251)),
        format!("{}/x", "d".repeat(256)),
    ]
}

#[test]
fn invalid_loop_names_are_refused_with_an_error_quoting_the_name() -> TestResult {
    let f = fixture()?;
    for name in bad_names() {
        let quoted = format!("{name:?}");
        let request = f.request(&name, "src");
        let message = refused_both_ways(&f, &request, ErrorKind::InvalidName, &quoted).to_string();
        assert!(message.contains("loop name"), "{message}");
        assert!(message.contains(&quoted), "{message}");
    }
    assert!(!f.running().exists(), "an invalid request created files");
    Ok(())
}

#[test]
fn invalid_instance_ids_are_refused_with_an_error_quoting_the_id() -> TestResult {
    let f = fixture()?;
    for id in bad_names() {
        let request = f.request("fine", "src").instance_id(id.clone());
        let err = expect_failure(f.locks.try_acquire(&request));
        assert_eq!(err.kind(), ErrorKind::InvalidName, "{id:?}: {err}");
        let message = err.to_string();
        assert!(message.contains("instance id"), "{message}");
        assert!(message.contains(&format!("{id:?}")), "{message}");
    }
    assert!(!f.running().exists(), "an invalid request created files");
    Ok(())
}

#[test]
fn names_that_would_escape_the_running_directory_never_touch_the_file_they_point_at() -> TestResult
{
    let f = fixture()?;
    f.init()?;
    // `.running/../victim.lock` and `<root>/victim.lock`: where `../victim` and an absolute
    // name would land if they were joined blindly.
    let beside = f.loops_dir().join("victim.lock");
    let absolute = f.root.join("victim.lock");
    fs::write(&beside, "precious beside")?;
    fs::write(&absolute, "precious absolute")?;
    let absolute_name = f.path("victim");
    for name in ["../victim", "sub/../../victim", absolute_name.as_str()] {
        let err = expect_failure(f.acquire(name, "src"));
        assert_eq!(err.kind(), ErrorKind::InvalidName, "{err}");
        let err = expect_failure(
            f.locks
                .try_acquire(&f.request("fine", "src").instance_id(name)),
        );
        assert_eq!(err.kind(), ErrorKind::InvalidName, "{err}");
    }
    assert_eq!(fs::read_to_string(&beside)?, "precious beside");
    assert_eq!(fs::read_to_string(&absolute)?, "precious absolute");
    Ok(())
}

#[test]
fn a_name_of_250_bytes_is_the_longest_that_acquires() -> TestResult {
    let f = fixture()?;
    let longest = "n".repeat(250);
    let guard = f.acquire(&longest, "src")?;
    assert_eq!(
        guard
            .path()
            .file_name()
            .map(|n| n.len())
            .ok_or("no file name")?,
        255
    );
    guard.release()?;
    let err = expect_failure(f.acquire(&"n".repeat(251), "src"));
    assert_eq!(err.kind(), ErrorKind::InvalidName);
    assert!(err.to_string().contains("longer"), "{err}");
    Ok(())
}

#[test]
fn scope_entries_with_nul_are_refused_with_an_error_quoting_the_entry() -> TestResult {
    let f = fixture()?;
    let absolute_with_nul = format!("{}\0tail", f.path("src"));
    for entry in ["a\0b", "\0", absolute_with_nul.as_str()] {
        let quoted = format!("{entry:?}");
        let request = LockRequest::new("fine").scope([f.path("ok"), entry.to_owned()]);
        let err = refused_both_ways(&f, &request, ErrorKind::InvalidScope, &quoted);
        assert!(err.to_string().contains(&quoted), "{err}");
    }
    assert!(!f.running().exists(), "an invalid request created files");
    Ok(())
}

#[test]
fn a_scope_through_a_symlink_loop_is_an_invalid_scope_not_a_hang() -> TestResult {
    let f = fixture()?;
    symlink(f.root.join("loop-b"), f.root.join("loop-a"))?;
    symlink(f.root.join("loop-a"), f.root.join("loop-b"))?;
    let entry = f.path("loop-a/inside");
    let err = expect_failure(f.try_acquire_without_hanging(
        "acquiring a symlink loop",
        f.request("fine", "loop-a/inside"),
    )?);
    assert_eq!(err.kind(), ErrorKind::InvalidScope, "{err}");
    assert!(err.to_string().contains(&format!("{entry:?}")), "{err}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The directory
// ---------------------------------------------------------------------------------------------

#[test]
fn a_loops_dir_path_through_a_regular_file_is_an_enotdir_error_naming_the_directory() -> TestResult
{
    let f = fixture()?;
    let blocker = f.root.join("plain-file");
    fs::write(&blocker, "not a directory")?;
    for loops_dir in [blocker.clone(), blocker.join("nested/.loops")] {
        let locks = LockManager::new(&loops_dir);
        let running = locks.running_dir().to_path_buf();

        let err = expect_failure(locks.try_acquire(&f.request("x", "src")));
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
        assert_names_path(&err, &running);
        assert_eq!(
            err.io_error().and_then(|e| e.raw_os_error()),
            Some(rustix::io::Errno::NOTDIR.raw_os_error()),
            "{err}"
        );

        let err = locks
            .list_locks()
            .map(|_| ())
            .expect_err("list_locks through a file");
        assert_names_path(&err, &running);
        let err = locks
            .find_conflict(&f.request("x", "src"))
            .map(|_| ())
            .expect_err("find_conflict through a file");
        assert_names_path(&err, &running);
    }
    assert_eq!(fs::read_to_string(&blocker)?, "not a directory");
    Ok(())
}

#[test]
fn a_running_dir_that_is_a_regular_file_is_an_error_naming_it() -> TestResult {
    let f = fixture()?;
    fs::create_dir_all(f.loops_dir())?;
    fs::write(f.running(), "in the way")?;
    let err = expect_failure(f.acquire("x", "src"));
    assert_names_path(&err, f.running());
    let err = f
        .locks
        .list_locks()
        .map(|_| ())
        .expect_err("list_locks with .running a file");
    let at_fault = err.path().ok_or("the error names no path")?;
    assert!(at_fault.starts_with(f.running()), "{err}");
    assert!(err.to_string().contains(&f.running().display().to_string()));
    assert_eq!(fs::read_to_string(f.running())?, "in the way");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The target lock file
// ---------------------------------------------------------------------------------------------

#[test]
fn a_target_lock_path_that_is_a_symlink_is_refused_and_its_target_is_untouched() -> TestResult {
    let (f, target, outside, err) =
        acquire_with_a_link_at("linked.lock", "precious outside content", "linked")?;
    assert!(err.to_string().contains("symlink"), "{err}");

    assert_eq!(fs::read_to_string(&outside)?, "precious outside content");
    assert!(fs::symlink_metadata(&target)?.file_type().is_symlink());
    assert_eq!(fs::read_link(&target)?, outside);
    // Others can still acquire.
    f.acquire("other", "docs")?.release()?;
    assert_eq!(fs::read_to_string(&outside)?, "precious outside content");
    Ok(())
}

#[test]
fn a_target_lock_path_that_is_a_directory_is_refused() -> TestResult {
    let (f, target) = with_running_dir("dir.lock")?;
    fs::create_dir(&target)?;
    fs::write(target.join("inside.txt"), "kept")?;
    let err = expect_failure(f.acquire("dir", "src"));
    assert_not_a_lock_file(&err, &target);
    assert!(err.to_string().contains("directory"), "{err}");
    assert_eq!(fs::read_to_string(target.join("inside.txt"))?, "kept");
    // A directory named like a lock file does not make unrelated acquires fail.
    f.acquire("other", "docs")?.release()?;
    assert!(target.is_dir());
    Ok(())
}

#[test]
fn a_target_lock_path_that_is_a_fifo_is_refused_without_hanging() -> TestResult {
    let (_f, target, err) = acquire_with_a_fifo_at("pipe.lock", "pipe")?;
    assert!(err.to_string().contains("FIFO"), "{err}");
    assert!(fs::symlink_metadata(&target)?.file_type().is_fifo());
    Ok(())
}

#[test]
fn a_nested_name_whose_directory_is_a_symlink_is_refused_and_nothing_lands_outside() -> TestResult {
    let f = fixture()?;
    f.init()?;
    let outside = f.root.join("outside-dir");
    fs::create_dir(&outside)?;
    let link = f.running().join("linked");
    symlink(&outside, &link)?;
    let err = expect_failure(
        f.locks
            .try_acquire(&f.request("nested", "src").instance_id("linked/run-1")),
    );
    assert_not_a_lock_file(&err, &link);
    assert_eq!(
        fs::read_dir(&outside)?.count(),
        0,
        "a file was created through the symlink"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The sentinel
// ---------------------------------------------------------------------------------------------

#[test]
fn a_sentinel_that_is_a_symlink_is_refused_and_its_target_is_not_truncated() -> TestResult {
    let (f, sentinel, outside, _) =
        acquire_with_a_link_at(".acquire.lock", "must not be truncated", "x")?;
    let err = f
        .locks
        .list_locks()
        .map(|_| ())
        .expect_err("list_locks with a symlinked sentinel");
    assert_not_a_lock_file(&err, &sentinel);

    assert_eq!(fs::read_to_string(&outside)?, "must not be truncated");
    assert!(fs::symlink_metadata(&sentinel)?.file_type().is_symlink());
    Ok(())
}

#[test]
fn a_sentinel_that_is_a_directory_is_refused() -> TestResult {
    let f = fixture()?;
    let sentinel = f.running().join(".acquire.lock");
    fs::create_dir_all(&sentinel)?;
    let err = expect_failure(f.acquire("x", "src"));
    assert_not_a_lock_file(&err, &sentinel);
    assert!(sentinel.is_dir());
    Ok(())
}

#[test]
fn a_sentinel_that_is_a_fifo_is_refused_without_hanging() -> TestResult {
    acquire_with_a_fifo_at(".acquire.lock", "x")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Corrupt lock files of other stems
// ---------------------------------------------------------------------------------------------

#[test]
fn corrupt_unheld_lock_files_without_proof_of_staleness_block_and_are_left_byte_for_byte()
-> TestResult {
    let f = fixture()?;
    f.init()?;
    let mut written = write_corrupt_files(f.running())?;
    written.extend(write_corrupt_files(&f.running().join("nested/dir"))?);

    let listing = f.locks.list_locks()?;
    assert!(listing.locks().is_empty(), "{listing:?}");
    assert!(listing.reclaimed().is_empty(), "{listing:?}");
    assert_eq!(listing.problems().len(), written.len(), "{listing:#?}");
    for (path, bytes) in &written {
        let problem = problem_at(&listing, path)?;
        // No marker of ours and no dead pid: it may be the original's live lock (B10).
        assert!(problem.blocks(), "{problem}");
        let ProblemKind::BlocksMaybeLive { reason, .. } = problem.kind() else {
            return Err(format!("{}: {:?}", path.display(), problem.kind()).into());
        };
        assert!(!reason.is_empty());
        assert!(problem.to_string().contains(&path.display().to_string()));
        assert_eq!(&fs::read(path)?, bytes, "{} was changed", path.display());
    }
    let conflict = expect_conflict(f.acquire("unrelated", "src"));
    assert!(
        matches!(conflict.rule(), ConflictRule::Unreadable { .. }),
        "{conflict}"
    );
    for (path, bytes) in &written {
        assert_eq!(&fs::read(path)?, bytes, "{} was changed", path.display());
    }
    Ok(())
}

#[test]
fn corrupt_unheld_lock_files_of_a_dead_pid_are_moved_aside_byte_for_byte() -> TestResult {
    let f = fixture()?;
    f.init()?;
    let dead = format!(r#"{{"loop_name": "x", "scope": 5, "pid": {DEAD_PID}}}"#).into_bytes();
    let cut = format!(r#"{{"loop_name": "x", "pid": {DEAD_PID}, "scope": ["/a", "#).into_bytes();
    let ours = br#"{"loop_name": "x", "scope": 5, "pid": 1, "liveness": "flock"}"#.to_vec();
    let mut written = Vec::new();
    for (name, bytes) in [("dead", dead), ("cut", cut), ("ours", ours)] {
        for dir in ["", "nested/dir/"] {
            written.push((
                f.write_lock_file(&format!("{dir}{name}"), &bytes)?,
                bytes.clone(),
            ));
        }
    }
    let listing = f.locks.list_locks()?;
    assert_eq!(listing.problems().len(), written.len(), "{listing:#?}");
    for (path, bytes) in &written {
        let problem = problem_at(&listing, path)?;
        assert!(!problem.blocks(), "{problem}");
        let ProblemKind::MovedAside {
            moved_to: Some(moved_to),
            ..
        } = problem.kind()
        else {
            return Err(format!("{} was not moved aside: {problem}", path.display()).into());
        };
        assert_eq!(moved_to.parent(), path.parent(), "{}", moved_to.display());
        let aside_name = moved_to
            .file_name()
            .ok_or("no file name")?
            .to_string_lossy();
        assert!(aside_name.starts_with('.'), "{aside_name}");
        assert!(!path.exists(), "{} is still in the way", path.display());
        assert_eq!(
            &fs::read(moved_to)?,
            bytes,
            "{} lost content",
            moved_to.display()
        );
    }
    // Moved aside means scans no longer see them, and they stay where they were put.
    let again = f.locks.list_locks()?;
    assert!(again.problems().is_empty(), "{again:#?}");
    let guard = f.acquire("unrelated", "src")?;
    guard.release()?;
    for (path, bytes) in &written {
        let dir = path.parent().ok_or("no parent")?;
        assert_eq!(
            dot_files_holding(dir, bytes)?.len(),
            1,
            "{}",
            path.display()
        );
    }
    Ok(())
}

#[test]
fn a_corrupt_unheld_file_of_a_dead_pid_at_our_own_name_is_moved_aside_and_the_acquire_succeeds()
-> TestResult {
    let f = fixture()?;
    f.init()?;
    let path = f.running().join("mine.lock");
    // A writer that crashed mid-write, whose pid is gone.
    let garbage = format!(r#"{{"loop_name": "mine", "pid": {DEAD_PID}, "sco"#);
    fs::write(&path, &garbage)?;
    let guard = f.acquire("mine", "src")?;
    assert_eq!(guard.path(), path);
    assert_eq!(
        LockRecord::from_json(&fs::read(&path)?)?,
        guard.record().clone()
    );
    assert_eq!(dot_files_holding(f.running(), garbage.as_bytes())?.len(), 1);
    guard.release()?;
    Ok(())
}

#[test]
fn a_corrupt_lock_file_whose_flock_is_held_blocks_acquires_as_unreadable() -> TestResult {
    let f = fixture()?;
    f.init()?;
    let path = f.running().join("held-garbage.lock");
    // Our marker: once unheld, its holder is provably gone.
    let bytes = br#"{"liveness": "flock", "loop_name": "half"#;
    fs::write(&path, bytes)?;
    let holder = File::open(&path)?;
    // A holder outside the library: the library has no way to flock an invalid record.
    #[allow(clippy::disallowed_methods)]
    holder.lock()?;

    let conflict = expect_conflict(f.acquire("unrelated", "anything"));
    assert!(
        matches!(conflict.rule(), ConflictRule::Unreadable { reason } if !reason.is_empty()),
        "{:?}",
        conflict.rule()
    );
    assert_eq!(conflict.lock_path(), path);
    assert_eq!(conflict.holder(), None);
    assert!(conflict.to_string().contains(&path.display().to_string()));

    let listing = f.locks.list_locks()?;
    let problem = problem_at(&listing, &path)?;
    assert!(
        matches!(problem.kind(), ProblemKind::BlocksHeldInvalid { .. }),
        "{problem}"
    );
    assert!(problem.blocks());
    assert_eq!(fs::read(&path)?, bytes, "a held file must be left as it is");

    // Once its holder is gone it is moved aside and no longer blocks.
    drop(holder);
    let guard = f.acquire("unrelated", "anything")?;
    assert!(!path.exists());
    assert_eq!(dot_files_holding(f.running(), bytes)?.len(), 1);
    guard.release()?;
    Ok(())
}

#[test]
fn a_symlink_or_fifo_named_like_a_lock_is_reported_as_not_regular_and_left_in_place() -> TestResult
{
    let f = fixture()?;
    f.init()?;
    // The symlink points at a complete, stale-looking record: following it would reclaim.
    let outside = f.root.join("outside.json");
    let record = LockRecord::new("ghost", vec![f.path("src")], DEAD_PID, "t").to_json();
    fs::write(&outside, &record)?;
    let link = f.running().join("link.lock");
    symlink(&outside, &link)?;
    let dangling = f.running().join("dangling.lock");
    symlink(f.root.join("nothing-here"), &dangling)?;
    let fifo = f.running().join("pipe.lock");
    make_fifo(&fifo)?;

    let locks = f.locks.clone();
    let listing = without_hanging("listing next to a FIFO", move || locks.list_locks())??;
    let kind_of = |path: &Path| problem_at(&listing, path).ok().map(|p| p.kind().clone());
    assert_eq!(
        kind_of(&link),
        Some(ProblemKind::NotRegular {
            file_kind: FileKind::Symlink
        })
    );
    assert_eq!(
        kind_of(&dangling),
        Some(ProblemKind::NotRegular {
            file_kind: FileKind::Symlink
        })
    );
    assert_eq!(
        kind_of(&fifo),
        Some(ProblemKind::NotRegular {
            file_kind: FileKind::Fifo
        })
    );
    assert!(listing.problems().iter().all(|p| !p.blocks()));
    assert!(listing.reclaimed().is_empty(), "{listing:?}");

    // They do not block, and nobody touches them.
    let guard =
        f.try_acquire_without_hanging("acquiring next to a FIFO", f.request("unrelated", "src"))??;
    guard.release()?;
    assert_eq!(fs::read_link(&link)?, outside);
    assert!(fs::symlink_metadata(&dangling)?.file_type().is_symlink());
    assert!(fs::symlink_metadata(&fifo)?.file_type().is_fifo());
    assert_eq!(fs::read_to_string(&outside)?, record);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Neighbours
// ---------------------------------------------------------------------------------------------

#[test]
fn other_files_in_the_running_directory_are_never_touched() -> TestResult {
    let f = fixture()?;
    f.init()?;
    let neighbours = [
        "x.pid",
        "x.log",
        "x.state.json",
        "x.events.jsonl",
        "user-stop.marker",
        "x.lock.bak",
        "notes.lockfile",
        "generated/x.pid",
        "generated/x.state.json",
    ];
    for (i, name) in neighbours.iter().enumerate() {
        let path = f.running().join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, format!("neighbour {i}: {name}\n"))?;
    }
    let before = snapshot(f.running())?;

    // A stale lock of the same stem as the neighbours, reclaimed by the scans below.
    let stale = f.running().join("x.lock");
    fs::write(
        &stale,
        LockRecord::new("x", vec![f.path("src")], DEAD_PID, "t").to_json(),
    )?;
    let listing = f.locks.list_locks()?;
    assert_eq!(listing.reclaimed(), [stale]);
    let x = f.acquire("x", "src")?;
    let nested = f
        .locks
        .try_acquire(&f.request("gen", "out").instance_id("generated/x"))?;
    let _ = f.acquire("rival", "src/inner");
    f.locks.find_conflict(&f.request("asker", "src"))?;
    x.release()?;
    drop(nested);
    f.locks.list_locks()?;

    let after = snapshot(f.running())?;
    // The sentinel and the fencing-token counter are ours to create; compare the neighbours
    // only.
    let neighbours_only = |s: Vec<FileState>| {
        s.into_iter()
            .filter(|(p, ..)| {
                p.file_name()
                    .is_some_and(|n| n != ".acquire.lock" && n != ".fencing-token")
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(neighbours_only(after), neighbours_only(before));
    Ok(())
}
