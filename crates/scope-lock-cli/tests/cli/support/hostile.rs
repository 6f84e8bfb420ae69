//! The world of the threat model (docs/protocol.md, "Who shares a lock directory"): other pid
//! namespaces and other users. The hostile tests build their processes through these helpers.
//!
//! They need root (CI runs as root) and Linux's `unshare(1)`; on other systems they skip,
//! saying so, because the threat model's containers are Linux's. When either is missing the test
//! fails with a message that says what is missing: a hostile test that quietly passes without
//! its hostile world would prove nothing. A contributor without root may skip them knowingly
//! with `SCOPE_LOCK_SKIP_HOSTILE=1`; `cargo xtask verify` refuses to run with that set.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Set to `1` to skip the hostile tests (loudly). `verify` removes it from their environment
/// (`xtask_contract::env::SKIP_HOSTILE` names the same variable).
pub(crate) const SKIP_VAR: &str = "SCOPE_LOCK_SKIP_HOSTILE";

/// A user other than the test's, by its numbers. `nobody` and `daemon` exist on every Debian
/// and most other systems.
#[derive(Debug, Clone, Copy)]
pub(crate) struct User {
    pub(crate) name: &'static str,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// The second user of the hostile tests.
pub(crate) const NOBODY: User = User {
    name: "nobody",
    uid: 65534,
    gid: 65534,
};

/// The third user of the hostile tests.
pub(crate) const DAEMON: User = User {
    name: "daemon",
    uid: 1,
    gid: 1,
};

/// Whether the hostile world is here. Returns `false` (the test should return at once) only
/// when it is missing and [`SKIP_VAR`] asks to skip; panics, failing the test, when it is
/// missing and nobody asked.
pub(crate) fn available(test: &str) -> bool {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    if cfg!(not(target_os = "linux")) {
        // Pid namespaces, /proc/locks and the containers of the threat model are Linux's.
        eprintln!("SKIPPED {test}: the hostile suite runs on Linux only");
        return false;
    }
    match PROBE.get_or_init(probe) {
        Ok(()) => true,
        Err(why) if std::env::var(SKIP_VAR).is_ok_and(|value| value == "1") => {
            eprintln!("SKIPPED {test}: {why} ({SKIP_VAR}=1)");
            false
        }
        Err(why) => panic!(
            "{test} needs the hostile world and cannot have it: {why}. Run as root on Linux \
             (CI does), or set {SKIP_VAR}=1 to skip it knowingly (cargo xtask verify refuses that)"
        ),
    }
}

/// Checks once that we are root, that a new pid namespace can be made, and that a process can
/// run as [`NOBODY`] and [`DAEMON`].
fn probe() -> Result<(), String> {
    if !rustix::process::geteuid().is_root() {
        return Err("not running as root".to_owned());
    }
    let mut unshare = in_new_pid_namespace("true", &[]);
    check(&mut unshare, "unshare -p -f --mount-proc true")?;
    for user in [NOBODY, DAEMON] {
        let mut as_user = Command::new("true");
        run_as(&mut as_user, user);
        check(&mut as_user, &format!("true as {}", user.name))?;
    }
    Ok(())
}

fn check(command: &mut Command, what: &str) -> Result<(), String> {
    match command.stdin(Stdio::null()).output() {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!(
            "`{what}` failed: {}, {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => Err(format!("`{what}` could not start: {error}")),
    }
}

/// Makes `command` run as `user`, with no supplementary groups (std drops them when root
/// changes the uid), as `setpriv --reuid --regid --clear-groups` would.
pub(crate) fn run_as(command: &mut Command, user: User) -> &mut Command {
    command.uid(user.uid).gid(user.gid)
}

/// `program args` as pid 1 of a new pid namespace with its own `/proc`:
/// `unshare -p -f --mount-proc --kill-child -- program args`. Killing `unshare` (a test that
/// gives up on it) kills `program`, and with it, pid 1 of the namespace, everything in there.
pub(crate) fn in_new_pid_namespace(program: &str, args: &[&str]) -> Command {
    let mut command = Command::new("unshare");
    command
        .args(["--pid", "--fork", "--mount-proc", "--kill-child", "--"])
        .arg(program)
        .args(args);
    command
}

/// `sh -c 'umask MASK; exec "$@"' sh program args`: `program` runs with its own umask,
/// leaving the test process's alone.
pub(crate) fn with_umask(mask: &str, program: &str, args: &[&str]) -> Command {
    let mut command = Command::new("sh");
    command
        .args(["-c", &format!("umask {mask} && exec \"$@\""), "sh", program])
        .args(args);
    command
}
