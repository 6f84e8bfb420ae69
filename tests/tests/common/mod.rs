//! The fixture of this package's tests (`bug_423`, `processes`, `snapshots`; each has
//! `mod common;`): the library's test fixture, compiled from its one source file (its module
//! docs say why a file and not a crate), and what only the regression suite adds: the worker
//! binary and the lockers of the two implementations.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::error::Error;
use std::io;
use std::path::Path;

use regression::attempt::AttemptProcess;
use regression::locker::{Impl, Locker};

#[path = "../../../crates/scope-lock/tests/common/mod.rs"]
mod library;

pub(crate) use library::*;

/// The `regression-worker` binary that the multi-process tests spawn.
pub(crate) fn worker() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_regression-worker"))
}

/// The project of most multi-process tests: the fixture, and as its one scope the directory
/// `src`, created so that processes can be pointed at it.
pub(crate) fn project() -> Result<(Fixture, String), Box<dyn Error>> {
    let f = fixture()?;
    let scope = f.scope_dir("src")?;
    Ok((f, scope))
}

impl Fixture {
    /// Writes `<stem>.lock` over `scope` as the original writes it, for a process that does not
    /// exist: a stale lock, which the next cleaning scan reclaims.
    pub(crate) fn write_dead_lock(
        &self,
        stem: &str,
        scope: &str,
    ) -> Result<std::path::PathBuf, Box<dyn Error>> {
        let record = scope_lock::LockRecord::new(
            stem,
            vec![scope.to_owned()],
            DEAD_PID,
            "2026-01-01T00:00:00.000000+00:00",
        );
        self.write_lock_file(stem, record.to_json().as_bytes())
    }

    /// A locker of the `which` implementation over this project's `.loops/`.
    pub(crate) fn locker(&self, which: Impl) -> Locker {
        Locker::new(which, &self.loops_dir())
    }

    /// A worker process, ready to try acquiring `name` over `scope` in this project with the
    /// `which` implementation (and the worker's `extra` arguments) when told to go.
    pub(crate) fn spawn_attempt(
        &self,
        which: Impl,
        name: &str,
        scope: &str,
        extra: &[&str],
    ) -> io::Result<AttemptProcess> {
        AttemptProcess::spawn(worker(), which, &self.loops_dir(), name, scope, extra)
    }

    /// A worker of the fix that holds `scope` under the name `holder` until it is ended: the
    /// lock that waiting tests queue behind. Errors if it did not get the scope.
    pub(crate) fn spawn_holder(&self, scope: &str) -> Result<AttemptProcess, Box<dyn Error>> {
        let mut holder = self.spawn_attempt(Impl::Fixed, "holder", scope, &[])?;
        let said = holder.go()?;
        if !said.starts_with("held") {
            return Err(format!("the holder did not get the scope: {said}").into());
        }
        Ok(holder)
    }
}

impl Fixture {
    /// A `wait` worker (see the worker's header), ready to acquire `name` over `scope` waiting
    /// at most `timeout_ms` when told to go; `extra` are further worker arguments.
    pub(crate) fn spawn_waiter(
        &self,
        which: Impl,
        name: &str,
        scope: &str,
        timeout_ms: u64,
        extra: &[&str],
    ) -> io::Result<AttemptProcess> {
        let timeout = timeout_ms.to_string();
        let loops_dir = self.loops_dir();
        let mut args: Vec<&std::ffi::OsStr> = Vec::new();
        for arg in ["--impl", which.name()] {
            args.push(arg.as_ref());
        }
        args.push("--loops-dir".as_ref());
        args.push(loops_dir.as_os_str());
        for arg in ["--name", name, "--scope", scope, "--timeout-ms", &timeout] {
            args.push(arg.as_ref());
        }
        for arg in extra {
            args.push(arg.as_ref());
        }
        AttemptProcess::spawn_command(worker(), "wait", args)
    }
}
