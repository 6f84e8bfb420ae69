//! What only the regression suite adds to the library's fixture (`scope_lock::testing`): the
//! worker binary, and processes of either implementation over a fixture's project.

use std::error::Error;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use regression::attempt::AttemptProcess;
use regression::locker::{Impl, Locker};
use scope_lock::testing::{Fixture, fixture};

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

/// Lockers and worker processes over a fixture's project.
pub(crate) trait Workers {
    /// The project's `.loops/`, which the lockers and workers below are pointed at.
    fn loops(&self) -> PathBuf;

    /// A locker of the `which` implementation over this project's `.loops/`.
    fn locker(&self, which: Impl) -> Locker {
        Locker::new(which, &self.loops())
    }

    /// A worker process, ready to try acquiring `name` over `scope` in this project with the
    /// `which` implementation (and the worker's `extra` arguments) when told to go.
    fn spawn_attempt(
        &self,
        which: Impl,
        name: &str,
        scope: &str,
        extra: &[&str],
    ) -> io::Result<AttemptProcess> {
        AttemptProcess::spawn(worker(), which, &self.loops(), name, scope, extra)
    }

    /// A worker of the fix that holds `scope` under the name `holder` until it is ended: the
    /// lock that waiting tests queue behind. Errors if it did not get the scope.
    fn spawn_holder(&self, scope: &str) -> Result<AttemptProcess, Box<dyn Error>> {
        let mut holder = self.spawn_attempt(Impl::Fixed, "holder", scope, &[])?;
        let said = holder.go()?;
        if !said.starts_with("held") {
            return Err(format!("the holder did not get the scope: {said}").into());
        }
        Ok(holder)
    }

    /// A `wait` worker (see the worker's header), ready to acquire `name` over `scope` waiting
    /// at most `timeout_ms` when told to go; `extra` are further worker arguments.
    fn spawn_waiter(
        &self,
        which: Impl,
        name: &str,
        scope: &str,
        timeout_ms: u64,
        extra: &[&str],
    ) -> io::Result<AttemptProcess> {
        let timeout = timeout_ms.to_string();
        let loops_dir = self.loops();
        let mut args: Vec<&OsStr> = vec!["--impl".as_ref(), which.name().as_ref()];
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

impl Workers for Fixture {
    fn loops(&self) -> PathBuf {
        self.loops_dir()
    }
}
