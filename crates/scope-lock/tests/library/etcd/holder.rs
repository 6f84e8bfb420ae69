//! A lock holder in a child process, for the fault tests: this test binary run again as
//! `etcd::holder::holder_entry`, driven through its standard input and heard through its
//! standard output (`said: …` lines), so that tests can kill and stop it.

use std::error::Error;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use scope_lock::LockRequest;
use scope_lock::etcd::{EtcdConfig, EtcdLockManager};
use scope_lock::testing::TestResult;

const ENDPOINTS: &str = "SCOPE_LOCK_ETCD_HOLDER_ENDPOINTS";
const PROJECT: &str = "SCOPE_LOCK_ETCD_HOLDER_PROJECT";
const SCOPE: &str = "SCOPE_LOCK_ETCD_HOLDER_SCOPE";
const TTL: &str = "SCOPE_LOCK_ETCD_HOLDER_TTL";

/// How long a test waits for a line from its holder before it fails.
const HEAR_BOUND: Duration = Duration::from_secs(60);

/// The parent's side of a holder process; killed and reaped when dropped.
pub(super) struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    said: mpsc::Receiver<String>,
}

impl Holder {
    /// Starts a holder of `scope` in the project at `root`, its lease of `ttl` seconds; it
    /// says `acquired <token>` once it holds the scope.
    pub(super) fn spawn(
        endpoints: &[String],
        project: &str,
        root: &Path,
        scope: &str,
        ttl: u64,
    ) -> Result<Self, Box<dyn Error>> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--exact", "etcd::holder::holder_entry", "--include-ignored"])
            .args(["--nocapture", "--test-threads", "1"])
            .env(ENDPOINTS, endpoints.join(","))
            .env(PROJECT, project)
            .env(SCOPE, scope)
            .env(TTL, ttl.to_string())
            .current_dir(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tell, said) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((_, said)) = line.split_once("said: ") {
                    let _ = tell.send(said.to_owned());
                }
            }
        });
        let stdin = child.stdin.take();
        Ok(Self { child, stdin, said })
    }

    /// The next thing it says, which must start with `word`; the rest of the line.
    pub(super) fn hear(&self, word: &str) -> Result<String, Box<dyn Error>> {
        let line = self
            .said
            .recv_timeout(HEAR_BOUND)
            .map_err(|_| format!("the holder did not say `{word}`"))?;
        match line.strip_prefix(word) {
            Some(rest) => Ok(rest.trim().to_owned()),
            None => Err(format!("the holder said `{line}`, not `{word}`").into()),
        }
    }

    /// Waits for `acquired <token>`; the token.
    pub(super) fn acquired(&self) -> Result<u64, Box<dyn Error>> {
        Ok(self.hear("acquired")?.parse()?)
    }

    /// Sends it a command line.
    pub(super) fn tell(&mut self, line: &str) -> TestResult {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        Ok(())
    }

    /// Its process id.
    pub(super) fn pid(&self) -> rustix::process::Pid {
        rustix::process::Pid::from_child(&self.child)
    }

    /// SIGKILLs it and reaps it.
    pub(super) fn kill(&mut self) -> TestResult {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Sends it `signal`.
    pub(super) fn signal(&self, signal: rustix::process::Signal) -> TestResult {
        rustix::process::kill_process(self.pid(), signal)?;
        Ok(())
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn say(what: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "said: {what}");
    let _ = out.flush();
}

/// The holder's process: acquires, says so, says `lost` when it loses the lock, and obeys
/// `release` (saying `released`, or `release-failed <ErrorKind>`) and `status` (`lost=<bool>`)
/// until its standard input ends.
#[test]
#[ignore = "a child process of the etcd fault tests, run by them"]
fn holder_entry() -> TestResult {
    let Ok(endpoints) = std::env::var(ENDPOINTS) else {
        return Ok(());
    };
    let config = EtcdConfig::new(endpoints.split(','), std::env::var(PROJECT)?)
        .with_root(std::env::current_dir()?)
        .with_lease_ttl(Duration::from_secs(std::env::var(TTL)?.parse()?));
    let locks = EtcdLockManager::connect(config)?;
    let request = LockRequest::new("holder").scope([std::env::var(SCOPE)?]);
    let guard = locks.acquire(&request, HEAR_BOUND)?;
    say(&format!("acquired {}", guard.token()));
    guard.on_lost(|| say("lost"));
    let mut guard = Some(guard);
    for line in std::io::stdin().lock().lines() {
        match line?.as_str() {
            "status" => say(&format!(
                "lost={}",
                guard.as_ref().is_some_and(|g| g.is_lost())
            )),
            "release" => match guard.take().map(scope_lock::etcd::EtcdGuard::release) {
                Some(Ok(())) => say("released"),
                Some(Err(err)) => say(&format!("release-failed {:?}", err.kind())),
                None => say("release-failed not-held"),
            },
            other => say(&format!("unknown {other}")),
        }
    }
    Ok(())
}
