//! A lock directory shared by several users (a sticky, world-writable `.running/`, as an admin
//! sets one up): one user's umask must not lock the others out, and one user's files that the
//! others may not move must not make them leave links behind (SL-20, SL-21).
//!
//! Hostile tests: they need root, to run `scope-lock` as other users (see `support::hostile`).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::hostile::{self, DAEMON, NOBODY, User};
use crate::support::{BOUND, Holder, Output, TestResult, run_to_end, spawn};

/// The `scope-lock` binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_scope-lock");

/// A loops directory whose `.running/` is root's, mode 1777, in a directory every user may
/// search.
struct Shared {
    _dir: tempfile::TempDir,
    loops: PathBuf,
}

impl Shared {
    fn new() -> Result<Self, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
        let loops = dir.path().join("loops");
        fs::create_dir(&loops)?;
        fs::set_permissions(&loops, fs::Permissions::from_mode(0o755))?;
        fs::create_dir(loops.join(".running"))?;
        fs::set_permissions(loops.join(".running"), fs::Permissions::from_mode(0o1777))?;
        Ok(Self { _dir: dir, loops })
    }

    fn running(&self) -> PathBuf {
        self.loops.join(".running")
    }

    /// The arguments `--loops-dir LOOPS ARGS`.
    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["--loops-dir", self.loops.to_str().unwrap_or_default()];
        all.extend_from_slice(args);
        all
    }

    /// `scope-lock ARGS` as `user`, with the umask the test inherited.
    fn as_user(&self, user: User, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command.args(self.args(args)).current_dir("/");
        hostile::run_as(&mut command, user);
        command
    }

    /// `scope-lock ARGS` as root (the test's user), under umask 077.
    fn as_root_private(&self, args: &[&str]) -> Command {
        let mut command = hostile::with_umask("077", BIN, &self.args(args));
        command.current_dir("/");
        command
    }
}

/// `run --name NAME --scope SCOPE -- sh -c 'echo ready $$; read x'`, as arguments.
fn holder_args<'a>(name: &'a str, scope: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--name",
        name,
        "--scope",
        scope,
        "--",
        "sh",
        "-c",
        "echo ready $$; read x; exit 0",
    ]
}

/// A holder of root's under umask 077 of `scope` whose CMD runs; with CMD's pid.
fn start_private_holder(
    shared: &Shared,
    name: &str,
    scope: &str,
) -> Result<(Holder, i32), Box<dyn std::error::Error>> {
    let mut holder = spawn(shared.as_root_private(&holder_args(name, scope)))?;
    let ready = holder.next_line(BOUND);
    match ready
        .as_deref()
        .and_then(|line| line.strip_prefix("ready "))
        .and_then(|pid| pid.trim().parse().ok())
    {
        Some(pid) => Ok((holder, pid)),
        None => Err(format!(
            "holder {name} did not start: {ready:?}, {}",
            holder.stderr()
        )
        .into()),
    }
}

fn expect_code(what: &str, output: &Output, code: i32) {
    assert_eq!(
        output.code(),
        code,
        "{what}: stdout {:?}, stderr {:?}",
        output.stdout,
        output.stderr
    );
}

/// The first user to use a shared directory does so under umask 077 (root here, as a CI job
/// may): the sentinel, a lock file and the waiting queue it creates must still let another
/// user list, take a disjoint scope (also once that holder is dead), and wait for a held one.
#[test]
fn a_private_umask_of_the_first_user_locks_no_other_user_out() -> TestResult {
    if !hostile::available("a_private_umask_of_the_first_user_locks_no_other_user_out") {
        return Ok(());
    }
    let shared = Shared::new()?;
    let (mut holder, _) = start_private_holder(&shared, "root-a", "/shared/a")?;
    // A waiter of root's, under the same umask, gives up at once: it made the queue.
    let waited = run_to_end(shared.as_root_private(&[
        "run",
        "--name",
        "root-w",
        "--scope",
        "/shared/a",
        "--wait",
        "--timeout",
        "0.1",
        "--",
        "true",
    ]))?;
    expect_code("root's waiter", &waited, 75);
    assert!(shared.running().join(".queue").is_dir());

    let listed = run_to_end(shared.as_user(DAEMON, &["list"]))?;
    expect_code("another user's list", &listed, 0);
    assert!(listed.stdout.contains("root-a"), "{}", listed.stdout);

    let disjoint = run_to_end(shared.as_user(
        DAEMON,
        &["run", "--name", "d-b", "--scope", "/shared/b", "--", "true"],
    ))?;
    expect_code("another user's disjoint acquire", &disjoint, 0);

    // Another user waits for the held scope, and gets it when the holder lets go.
    let mut waiter = spawn(shared.as_user(
        DAEMON,
        &[
            "run",
            "--name",
            "d-a",
            "--scope",
            "/shared/a",
            "--wait",
            "--timeout",
            "60",
            "--",
            "echo",
            "got it",
        ],
    ))?;
    let blocking = waiter.next_stderr_line(BOUND);
    assert!(
        blocking
            .as_deref()
            .is_some_and(|line| line.contains("waiting")),
        "another user's wait did not start: {blocking:?} {}",
        waiter.stderr()
    );
    let released = holder.finish();
    assert!(
        released.is_some_and(|status| status.success()),
        "{released:?}"
    );
    let waited = waiter.wait(BOUND);
    assert!(
        waited.is_some_and(|status| status.success()),
        "another user's wait failed: {waited:?}, {}",
        waiter.stderr()
    );
    assert_eq!(waiter.next_line(BOUND).as_deref(), Some("got it"));

    // A holder of root's killed with its lock file in place (unreadable to others, were its
    // mode the umask's): another user's disjoint acquire is not blocked by it.
    let (mut dead, cmd_pid) = start_private_holder(&shared, "root-c", "/shared/c")?;
    dead.signal(rustix::process::Signal::KILL)?;
    let _ = dead.wait(BOUND);
    if let Some(pid) = rustix::process::Pid::from_raw(cmd_pid) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    assert!(shared.running().join("root-c.lock").exists());
    let after_death = run_to_end(shared.as_user(
        DAEMON,
        &["run", "--name", "d-d", "--scope", "/shared/d", "--", "true"],
    ))?;
    expect_code(
        "another user's disjoint acquire after a death",
        &after_death,
        0,
    );
    Ok(())
}

/// The names of the entries of `dir` that start with `prefix`.
fn names_starting(dir: &Path, prefix: &str) -> Result<Vec<String>, std::io::Error> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) {
            names.push(name);
        }
    }
    Ok(names)
}

/// A stale file with a bad record, owned by one user, in a sticky directory: another user's
/// `clean` may not move it aside. Each attempt must leave no second name behind (it used to
/// leave one `.x.lock.invalid-*` link per attempt), and say why and what to do.
#[test]
fn a_bad_file_that_cannot_be_moved_aside_leaves_no_links_behind() -> TestResult {
    if !hostile::available("a_bad_file_that_cannot_be_moved_aside_leaves_no_links_behind") {
        return Ok(());
    }
    let shared = Shared::new()?;
    let bad = shared.running().join("x.lock");
    // Ours by its marker, unreadable as a record, flocked by nobody: stale, to be moved aside.
    // Writable by all, so that the kernel's protected_hardlinks lets others link it (as it
    // did the hard link the move used to start with).
    let mut write = Command::new("sh");
    write.args([
        "-c",
        "umask 0 && printf '%s' '{\"liveness\": \"flock\", \"pid\": ' > \"$1\"",
        "sh",
    ]);
    write.arg(&bad);
    hostile::run_as(&mut write, NOBODY);
    let written = run_to_end(write)?;
    expect_code("writing the bad file as nobody", &written, 0);
    assert_eq!(fs::metadata(&bad)?.uid(), NOBODY.uid);

    for attempt in 1..=3 {
        let cleaned = run_to_end(shared.as_user(DAEMON, &["clean"]))?;
        let links = names_starting(&shared.running(), ".x.lock.invalid-")?;
        assert!(
            links.is_empty(),
            "clean {attempt} left links behind: {links:?}; it said {:?} {:?}",
            cleaned.stdout,
            cleaned.stderr
        );
        assert_eq!(fs::metadata(&bad)?.nlink(), 1, "clean {attempt}");
        let said = format!("{}{}", cleaned.stdout, cleaned.stderr);
        assert!(
            said.contains("moving it aside failed") && said.contains("uid 65534"),
            "clean {attempt} did not say why nor who can move it: {said}"
        );
    }
    Ok(())
}

/// `sh -c SCRIPT sh ARGS...` as `user`, run to its end; it must succeed.
fn shell_as(user: User, script: &str, args: &[&Path]) -> TestResult {
    let mut command = Command::new("sh");
    command.args(["-c", script, "sh"]).args(args);
    hostile::run_as(&mut command, user);
    let done = run_to_end(command)?;
    expect_code(&format!("`{script}` as {}", user.name), &done, 0);
    Ok(())
}

/// A lock of root's, as `scope-lock run ... -- true`, run to its end.
fn one_root_lock(shared: &Shared, name: &str) -> Result<Output, Box<dyn std::error::Error>> {
    run_to_end(shared.as_root_private(&[
        "run",
        "--name",
        name,
        "--scope",
        "/shared/t",
        "--",
        "true",
    ]))
}

/// The fencing-token counter of a shared directory (docs/protocol.md, "Fencing tokens") must
/// be usable by every user: a co-user's lock after root's (under umask 077) gets a larger token.
/// And what a co-user plants in its place (a symlink to root's file elsewhere, a FIFO, a
/// directory, garbage) makes root's `run` fail at once with an error naming the counter, never
/// following the link, never waiting on the FIFO, and the scope is run again once it is gone.
#[test]
fn a_co_users_counter_in_a_shared_directory_is_used_or_refused_by_name() -> TestResult {
    if !hostile::available("a_co_users_counter_in_a_shared_directory_is_used_or_refused_by_name") {
        return Ok(());
    }
    let shared = Shared::new()?;
    let counter = shared.running().join(".fencing-token");
    let token_of = |args: &[&str]| -> Result<String, Box<dyn std::error::Error>> {
        let mut command = Command::new(BIN);
        command.args(shared.args(args)).current_dir("/");
        let done = run_to_end(command)?;
        expect_code("printing the token", &done, 0);
        Ok(done.stdout.trim().to_owned())
    };
    let print_token = [
        "run",
        "--name",
        "t",
        "--scope",
        "/shared/t",
        "--",
        "sh",
        "-c",
        "echo $SCOPE_LOCK_TOKEN",
    ];
    expect_code("root's first lock", &one_root_lock(&shared, "first")?, 0);
    assert_eq!(fs::read_to_string(&counter)?, "00000000000000000001\n");
    let mut nobodys = Command::new(BIN);
    nobodys.args(shared.args(&print_token)).current_dir("/");
    hostile::run_as(&mut nobodys, NOBODY);
    let nobodys = run_to_end(nobodys)?;
    expect_code("nobody's lock after root's", &nobodys, 0);
    assert_eq!(nobodys.stdout.trim(), "2");
    // Root created the counter; in the sticky directory nobody may not remove it. Root does.
    fs::remove_file(&counter)?;

    let outside = shared.loops.join("roots-file");
    fs::write(&outside, "7\n")?;
    let plants: [(&str, &str, &[&Path]); 4] = [
        ("symlink", "ln -s \"$1\" \"$2\"", &[&outside, &counter]),
        ("FIFO", "mkfifo -m 666 \"$1\"", &[&counter]),
        ("directory", "mkdir \"$1\"", &[&counter]),
        ("not a number", "printf 'x\\n' > \"$1\"", &[&counter]),
    ];
    for (what, plant, args) in plants {
        shell_as(NOBODY, plant, args)?;
        let refused = one_root_lock(&shared, "r")?;
        expect_code(&format!("root's lock beside a planted {what}"), &refused, 1);
        assert!(
            refused.stderr.contains(&counter.display().to_string())
                && refused.stderr.contains(what),
            "the refusal does not name the counter and what is there ({what}): {}",
            refused.stderr
        );
        assert_eq!(fs::read_to_string(&outside)?, "7\n", "{what}: followed");
        // Its owner takes it away; the next lock starts a new counter.
        shell_as(NOBODY, "rm -rf \"$1\"", &[&counter])?;
        assert_eq!(token_of(&print_token)?, "1", "after the {what} was removed");
        fs::remove_file(&counter)?;
    }
    Ok(())
}

/// What the counter cannot protect against, as docs/protocol.md ("Fencing tokens", Limits)
/// says: a co-user may write it (it must, to take locks), so it can set it back, and the next
/// lock's token is then no larger than an earlier one's.
#[test]
fn a_co_user_can_set_the_shared_counter_back() -> TestResult {
    if !hostile::available("a_co_user_can_set_the_shared_counter_back") {
        return Ok(());
    }
    let shared = Shared::new()?;
    let counter = shared.running().join(".fencing-token");
    for name in ["a", "b", "c"] {
        expect_code(name, &one_root_lock(&shared, name)?, 0);
    }
    assert_eq!(fs::read_to_string(&counter)?, "00000000000000000003\n");
    shell_as(NOBODY, "printf '1\\n' > \"$1\"", &[&counter])?;
    expect_code("after the reset", &one_root_lock(&shared, "d")?, 0);
    assert_eq!(fs::read_to_string(&counter)?, "00000000000000000002\n");
    Ok(())
}
