//! Every class of malformed lock file, in one table: each class with and without a
//! live flock on it and, where the file carries a pid, with that pid alive or dead. For each
//! row the expected outcome follows from the rules (B5, B6, B10) and is checked, together with
//! "nothing was deleted that was not provably stale".
//!
//! The table runs in a child process that is not root (as root, the test drops to `nobody`),
//! because "unreadable" means nothing to root.

use std::env;
use std::error::Error;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::os::unix::fs::{FileTypeExt, PermissionsExt, symlink};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use rustix::fs::{CWD, FileType, Mode, mknodat};
use scope_lock::testing::{DEAD_PID, TestResult, fixture, problem_at};
use scope_lock::{LockListing, MAX_RECORD_BYTES, ProblemKind};

// The megabyte rows must exceed the record limit.
const _: () = assert!(MAX_RECORD_BYTES < 1_262_000);

const STARTED: &str = "2026-01-01T00:00:00.000000+00:00";
const CHILD: &str = "SCOPE_LOCK_MALFORMED_CHILD";
const NOBODY: u32 = 65534;

/// What a scan must make of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Listed as a live lock; left as it is.
    Live,
    /// Reported as a problem that blocks every acquire; left as it is.
    Blocks,
    /// Provably stale and readable: removed.
    Reclaimed,
    /// Provably stale but unreadable: moved to a dot file beside it, bytes kept.
    MovedAside,
    /// Not a regular file: reported, never blocks, never touched.
    Reported,
}

/// What sits at `x.lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A regular file with these contents (`{PID}` replaced by the row's pid).
    File,
    /// A regular file this user cannot read.
    Unreadable,
    Directory,
    Fifo,
    Socket,
    /// A symlink to a valid record elsewhere (with the row's pid), which must not be followed.
    Symlink,
}

/// One class of malformed (or merely unusual) lock file.
struct Class {
    name: &'static str,
    shape: Shape,
    /// The bytes, with `{PID}` for the row's pid and `\u{1}` for the byte 0xFF (which no
    /// `String` can hold).
    content: String,
    /// Whether it is a complete, valid record.
    parses: bool,
    /// Whether a pid can be read from it (a positive integer, or a string of digits).
    pid_readable: bool,
    /// Whether it carries our `"liveness": "flock"`.
    ours: bool,
}

fn class(name: &'static str, content: impl Into<String>, parses: bool, pid: bool) -> Class {
    Class {
        name,
        shape: Shape::File,
        content: content.into(),
        parses,
        pid_readable: pid,
        ours: false,
    }
}

fn record_with(pid: &str) -> String {
    format!(r#"{{"loop_name": "x", "scope": ["/m/p"], "pid": {pid}, "started_at": "{STARTED}"}}"#)
}

fn classes() -> Vec<Class> {
    let big_scope = (0..2500)
        .map(|i| format!("\"/m/{}-{i}\"", "p".repeat(500)))
        .collect::<Vec<_>>()
        .join(", ");
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let shape = |name, shape| Class {
        name,
        shape,
        content: record_with("{PID}"),
        parses: true,
        pid_readable: true,
        ours: false,
    };
    vec![
        class("valid (control)", record_with("{PID}"), true, true),
        Class {
            ours: true,
            ..class(
                "valid, ours (control)",
                format!(
                    r#"{{"loop_name": "x", "scope": ["/m/p"], "pid": {{PID}}, "started_at": "{STARTED}", "liveness": "flock"}}"#
                ),
                true,
                true,
            )
        },
        class("empty", "", false, false),
        class("whitespace", "  \n", false, false),
        class(
            "truncated before pid",
            r#"{"loop_name": "x", "sco"#,
            false,
            false,
        ),
        class(
            "truncated after pid",
            r#"{"loop_name": "x", "scope": ["/m/p"], "pid": {PID}, "started_at": "2026-"#,
            false,
            true,
        ),
        Class {
            ours: true,
            ..class(
                "truncated, ours",
                r#"{"liveness": "flock", "pid": {PID}, "sc"#,
                false,
                true,
            )
        },
        class("not an object: list", "[{PID}]", false, false),
        class("not an object: string", r#""x.lock""#, false, false),
        class("not an object: null", "null", false, false),
        class("missing keys", r#"{"pid": {PID}}"#, false, true),
        class(
            "missing pid",
            r#"{"loop_name": "x", "scope": ["/m/p"], "started_at": "t"}"#,
            false,
            false,
        ),
        class(
            "wrong types: loop_name a number",
            r#"{"loop_name": 7, "scope": ["/m/p"], "pid": {PID}, "started_at": "t"}"#,
            false,
            true,
        ),
        class(
            "wrong types: scope a number",
            r#"{"loop_name": "x", "scope": 5, "pid": {PID}, "started_at": "t"}"#,
            false,
            true,
        ),
        class(
            "wrong types: scope a list of numbers",
            r#"{"loop_name": "x", "scope": [1, 2], "pid": {PID}, "started_at": "t"}"#,
            false,
            true,
        ),
        class(
            "pid a string of digits",
            record_with("\"{PID}\""),
            false,
            true,
        ),
        class("pid a word", record_with("\"abc\""), false, false),
        class("pid null", record_with("null"), false, false),
        class("pid zero", record_with("0"), false, false),
        class("pid negative", record_with("-4"), false, false),
        class("pid huge", record_with("3000000000"), false, false),
        class("pid fractional", record_with("1.5"), false, false),
        // Inside strings, bytes that are not UTF-8 are a path's bytes: read as such.
        class(
            "invalid UTF-8 inside strings",
            "{\"loop_name\": \"caf\u{1}\", \"scope\": [\"/m/caf\u{1}\"], \"pid\": {PID}, \"started_at\": \"t\"}",
            true,
            true,
        ),
        class(
            "invalid UTF-8 outside strings",
            "\u{1}{\"pid\": {PID}}",
            false,
            false,
        ),
        class(
            "lone surrogates (valid: Python's surrogateescape)",
            r#"{"loop_name": "caf\udce9", "scope": ["/m/caf\udce9"], "pid": {PID}, "started_at": "t"}"#,
            true,
            true,
        ),
        class(
            "lone surrogate in a legacy string scope",
            r#"{"loop_name": "x", "scope": "/m/caf\udce9", "pid": {PID}, "started_at": "t"}"#,
            false,
            true,
        ),
        class(
            "deep nesting before pid",
            format!(r#"{{"loop_name": "x", "scope": {deep}, "pid": {{PID}}}}"#),
            false,
            true,
        ),
        class(
            "deep nesting after pid",
            format!(r#"{{"pid": {{PID}}, "scope": {deep}}}"#),
            false,
            true,
        ),
        class(
            "megabytes: a large record of the original",
            format!(
                r#"{{"loop_name": "x", "scope": [{big_scope}], "pid": {{PID}}, "started_at": "t"}}"#
            ),
            false,
            true,
        ),
        class("megabytes of garbage", "x".repeat(3 << 20), false, false),
        Class {
            shape: Shape::Unreadable,
            ..class("unreadable permissions", record_with("{PID}"), false, false)
        },
        shape("a directory named x.lock", Shape::Directory),
        shape("a FIFO named x.lock", Shape::Fifo),
        shape("a socket named x.lock", Shape::Socket),
        shape("a symlink named x.lock (to a valid record)", Shape::Symlink),
    ]
}

/// The outcome the rules give `class` with a flock held or not and its pid alive or not.
fn expected(class: &Class, held: bool, pid_alive: bool) -> Outcome {
    match class.shape {
        Shape::Directory | Shape::Fifo | Shape::Socket | Shape::Symlink => Outcome::Reported,
        Shape::Unreadable => Outcome::Blocks,
        Shape::File if held => {
            if class.parses {
                Outcome::Live
            } else {
                Outcome::Blocks
            }
        }
        Shape::File => {
            let stale = class.ours || (class.pid_readable && !pid_alive);
            match (class.parses, stale) {
                (true, true) => Outcome::Reclaimed,
                (true, false) => Outcome::Live,
                (false, true) => Outcome::MovedAside,
                (false, false) => Outcome::Blocks,
            }
        }
    }
}

/// What the scan made of the file at `path`.
fn observed(listing: &LockListing, path: &Path) -> Result<Outcome, String> {
    if listing.locks().iter().any(|lock| lock.path() == path) {
        return Ok(Outcome::Live);
    }
    if listing.reclaimed().iter().any(|p| p == path) {
        return Ok(Outcome::Reclaimed);
    }
    let problem = problem_at(listing, path)?;
    Ok(match problem.kind() {
        ProblemKind::NotRegular { .. } if !problem.blocks() => Outcome::Reported,
        ProblemKind::MovedAside {
            moved_to: Some(_), ..
        } => Outcome::MovedAside,
        _ if problem.blocks() => Outcome::Blocks,
        other => return Err(format!("unexpected problem {other:?}")),
    })
}

/// A live process that is not our ancestor; reaped on drop.
struct LiveProcess(Child);

impl Drop for LiveProcess {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// Opens `path` and takes its flock, as a holder outside the library would.
fn hold(path: &Path) -> Result<File, Box<dyn Error>> {
    let file = File::open(path)?;
    #[allow(clippy::disallowed_methods, reason = "a foreign holder")]
    file.lock()?;
    Ok(file)
}

/// Builds one row's `x.lock` in a fresh project, scans it, and checks the outcome and that
/// nothing was lost. Returns the outcome seen.
fn run_row(class: &Class, held: bool, pid: u32) -> Result<Outcome, Box<dyn Error>> {
    let f = fixture()?;
    f.init()?;
    let path = f.running().join("x.lock");
    let bytes: Vec<u8> = class
        .content
        .replace("{PID}", &pid.to_string())
        .bytes()
        .map(|b| if b == 1 { 0xFF } else { b })
        .collect();
    // The descriptor that holds the flock, as another holder would.
    let mut holder: Option<File> = None;
    let elsewhere = f.root.join("elsewhere.json");
    match class.shape {
        Shape::File | Shape::Unreadable => {
            fs::write(&path, &bytes)?;
            if held {
                holder = Some(hold(&path)?);
            }
            if class.shape == Shape::Unreadable {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o000))?;
            }
        }
        Shape::Directory => fs::create_dir(&path)?,
        Shape::Fifo => mknodat(CWD, &path, FileType::Fifo, Mode::from_raw_mode(0o644), 0)?,
        Shape::Socket => drop(UnixListener::bind(&path)?),
        Shape::Symlink => {
            fs::write(&elsewhere, &bytes)?;
            if held {
                holder = Some(hold(&elsewhere)?);
            }
            symlink(&elsewhere, &path)?;
        }
    }

    let listing = f.locks.list_locks()?;
    let outcome = observed(&listing, &path)?;

    // Nothing lost: what is not provably stale is exactly where it was.
    let meta = fs::symlink_metadata(&path);
    match outcome {
        Outcome::Live | Outcome::Blocks if class.shape != Shape::Unreadable => {
            assert_eq!(fs::read(&path)?, bytes, "{}: changed", class.name);
        }
        Outcome::Live | Outcome::Blocks => assert!(meta?.is_file(), "{}: gone", class.name),
        Outcome::Reclaimed => assert!(meta.is_err(), "{}: not removed", class.name),
        Outcome::MovedAside => {
            assert!(meta.is_err(), "{}: still in the way", class.name);
            let kept = fs::read_dir(f.running())?
                .filter_map(Result::ok)
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(".x.lock.invalid-")
                })
                .map(|e| fs::read(e.path()))
                .collect::<Result<Vec<_>, _>>()?;
            assert_eq!(
                kept,
                std::slice::from_ref(&bytes),
                "{}: content lost",
                class.name
            );
        }
        Outcome::Reported => {
            let file_type = meta?.file_type();
            let same = match class.shape {
                Shape::Directory => file_type.is_dir(),
                Shape::Fifo => file_type.is_fifo(),
                Shape::Socket => file_type.is_socket(),
                _ => file_type.is_symlink(),
            };
            assert!(same, "{}: replaced", class.name);
        }
    }
    if class.shape == Shape::Symlink {
        assert_eq!(
            fs::read(&elsewhere)?,
            bytes,
            "{}: target changed",
            class.name
        );
    }
    // A blocking file blocks an acquire of anything, by name; the others do not.
    let acquired = f.acquire("unrelated", "unrelated/dir");
    match (outcome, acquired) {
        (Outcome::Blocks, Err(err)) => {
            let conflict = err
                .conflict()
                .ok_or_else(|| format!("{}: {err}", class.name))?;
            assert_eq!(conflict.lock_path(), path, "{}", class.name);
        }
        (Outcome::Blocks, Ok(_)) => panic!("{}: a blocking file did not block", class.name),
        (_, Err(err)) => panic!("{}: an acquire beside it failed: {err}", class.name),
        (_, Ok(guard)) => guard.release()?,
    }
    drop(holder);
    Ok(outcome)
}

/// The whole table: returns one line per row, panics on the first row that differs.
fn run_table() -> Result<String, Box<dyn Error>> {
    let live = LiveProcess(
        Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?,
    );
    let mut report = String::new();
    let mut rows = 0;
    let classes = classes();
    for class in &classes {
        let pids: &[(bool, u32)] = if class.content.contains("{PID}") {
            &[(true, live.0.id()), (false, DEAD_PID)]
        } else {
            &[(true, live.0.id())]
        };
        for held in [false, true] {
            if matches!(class.shape, Shape::Directory | Shape::Fifo | Shape::Socket) && held {
                continue; // nothing to flock
            }
            for &(alive, pid) in pids {
                let want = expected(class, held, alive);
                let got = run_row(class, held, pid)?;
                let row = format!(
                    "{:<48} flock {:<4} pid {:<6} -> {got:?}",
                    class.name,
                    if held { "held" } else { "free" },
                    if !class.content.contains("{PID}") {
                        "n/a"
                    } else if alive {
                        "alive"
                    } else {
                        "dead"
                    },
                );
                assert_eq!(got, want, "row: {row}");
                writeln!(report, "{row}")?;
                rows += 1;
            }
        }
    }
    writeln!(
        report,
        "{} classes, {rows} rows, all as expected",
        classes.len()
    )?;
    Ok(report)
}

#[test]
fn every_malformed_lock_file_class_has_its_expected_outcome_and_nothing_is_lost() -> TestResult {
    let mut command = Command::new(env::current_exe()?);
    command
        .args([
            "--exact",
            "malformed::table_in_child",
            "--include-ignored",
            "--nocapture",
        ])
        .env(CHILD, "1")
        // A directory nobody can write to would stop the child's fixture: use /tmp.
        .env("TMPDIR", env::temp_dir());
    if rustix::process::geteuid().is_root() {
        command.uid(NOBODY).gid(NOBODY);
    }
    let output = command.output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the table failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all as expected"), "{stdout}");
    println!("{stdout}");
    Ok(())
}

/// Not a test by itself: the table, run by the test above in a process that is not root.
#[test]
#[ignore = "runs in the child process the table test starts"]
fn table_in_child() -> TestResult {
    if env::var_os(CHILD).is_none() {
        return Ok(());
    }
    assert!(
        !rustix::process::geteuid().is_root(),
        "the table must not run as root: unreadable files are readable to root"
    );
    print!("{}", run_table()?);
    Ok(())
}
