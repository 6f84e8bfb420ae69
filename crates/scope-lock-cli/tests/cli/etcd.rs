//! `scope-lock --etcd`: every command on a real etcd (`scope_lock::testing::etcd`), from two
//! clones of one project at different roots, as two machines would run it; and what a `run`
//! stopped past its lease's TTL does when it resumes.

use std::process::Command;

use rustix::process::Signal;
use scope_lock::testing::etcd::{EtcdCluster, available};

use crate::support::{self, BOUND, Holder, Sandbox, TestResult};

/// The project every clone names.
const PROJECT: &str = "demo";

/// A clone of the project: a sandbox whose root has a `docs/` directory.
fn clone() -> Result<Sandbox, Box<dyn std::error::Error>> {
    let sandbox = Sandbox::new()?;
    std::fs::create_dir_all(sandbox.path().join("docs/api"))?;
    Ok(sandbox)
}

/// `scope-lock --etcd URL --project demo --root <clone> ARGS`, run in the clone.
fn on_etcd(cluster: &EtcdCluster, clone: &Sandbox, args: &[&str]) -> Command {
    let endpoints = cluster.endpoints().join(",");
    let root = clone.path().to_string_lossy().into_owned();
    let mut all = vec!["--etcd", &endpoints, "--project", PROJECT, "--root", &root];
    all.extend_from_slice(args);
    clone.command(&all)
}

/// A `run` on etcd whose CMD prints `ready <token>` and then reads its stdin (or, with
/// `setup`, runs that first); waits until CMD said it.
fn hold_on_etcd(
    cluster: &EtcdCluster,
    clone: &Sandbox,
    args: &[&str],
    script: &str,
) -> Result<(Holder, u64), Box<dyn std::error::Error>> {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--", "sh", "-c", script]);
    let mut holder = support::spawn(on_etcd(cluster, clone, &all))?;
    let line = holder
        .next_line(BOUND)
        .ok_or_else(|| format!("CMD did not start: {}", holder.stderr()))?;
    let token = line
        .strip_prefix("ready ")
        .ok_or_else(|| format!("not a ready line: {line:?}"))?
        .parse()?;
    Ok((holder, token))
}

/// A `run` that waits, for a minute at the most, for `scope` as `name`, then runs `script`.
fn run_waiting<'a>(name: &'a str, scope: &'a str, script: &'a str) -> [&'a str; 12] {
    [
        "run",
        "--name",
        name,
        "--scope",
        scope,
        "--wait",
        "--timeout",
        "60",
        "--",
        "sh",
        "-c",
        script,
    ]
}

const READY_THEN_READ: &str = "echo ready $SCOPE_LOCK_TOKEN; read x; exit 0";

/// A server, two clones, and a `run` in the first holding `docs` as `docs-fixer`.
struct Scene {
    cluster: EtcdCluster,
    /// Kept so that its directory lives as long as the holder.
    _first: Sandbox,
    second: Sandbox,
    holder: Holder,
    token: u64,
}

impl Scene {
    /// `scope-lock ARGS` on etcd in the second clone, run to its end.
    fn in_second(&self, args: &[&str]) -> Result<support::Output, Box<dyn std::error::Error>> {
        support::run_to_end(on_etcd(&self.cluster, &self.second, args))
    }
}

/// Runs `body` on the [`Scene`]; without etcd the test, named as libtest names its thread, is
/// skipped.
fn with_docs_fixer_holding(body: impl FnOnce(Scene) -> TestResult) -> TestResult {
    let thread = std::thread::current();
    if !available(thread.name().unwrap_or("a cli::etcd test")) {
        return Ok(());
    }
    let cluster = EtcdCluster::single()?;
    let (first, second) = (clone()?, clone()?);
    let (holder, token) = hold_on_etcd(
        &cluster,
        &first,
        &["--name", "docs-fixer", "--scope", "docs"],
        READY_THEN_READ,
    )?;
    body(Scene {
        cluster,
        _first: first,
        second,
        holder,
        token,
    })
}

/// Two clones at different roots share one project's locks: `run` in one holds `docs`; in the
/// other, `list` shows the lock (host, pid, token), `check` of `docs/api` is refused naming
/// the holder, and `run --wait` waits, then runs once the first ends, with a larger token.
#[test]
fn two_clones_share_a_projects_locks_on_etcd() -> TestResult {
    with_docs_fixer_holding(|mut scene| {
        let token = scene.token;

        let list = scene.in_second(&["list", "--json"])?;
        assert_eq!(list.code(), 0, "{}", list.stderr);
        let listing: serde_json::Value = serde_json::from_str(&list.stdout)?;
        let lock = &listing["locks"][0];
        assert_eq!(lock["name"], "docs-fixer", "{}", list.stdout);
        assert_eq!(lock["token"], token, "{}", list.stdout);
        assert_eq!(lock["pid"], scene.holder.pid(), "{}", list.stdout);
        assert_eq!(lock["scope"][0], "docs", "{}", list.stdout);
        assert_eq!(listing["project"], PROJECT);
        let text = scene.in_second(&["list"])?;
        assert!(
                text.stdout
                    .lines()
                    .any(|line| line.starts_with("docs-fixer ")
                        && line.contains(&format!(" {token} "))),
                "{}",
                text.stdout
            );

        let check = scene.in_second(&["check", "--scope", "docs/api"])?;
        assert_eq!(check.code(), 75, "{}", check.stderr);
        // The library's one conflict line, with the holder's host: a pid alone names no process
        // on another machine.
        let host = lock["host"].as_str().ok_or("no host in list --json")?;
        let pid = scene.holder.pid();
        support::assert_says(
            &check.stderr,
            &format!(
                "held by loop `docs-fixer`, instance `docs-fixer`, pid {pid} on {host}, since"
            ),
        );
        let check_json = scene.in_second(&["check", "--scope", "docs/api", "--json"])?;
        let checked: serde_json::Value = serde_json::from_str(&check_json.stdout)?;
        assert_eq!(checked["conflict"]["host"], host, "{}", check_json.stdout);
        assert_eq!(
            checked["conflict"]["holder"]["token"], token,
            "{}",
            check_json.stdout
        );
        let free = scene.in_second(&["check", "--scope", "src"])?;
        assert_eq!(free.code(), 0, "{}", free.stderr);

        let mut waiter = support::spawn(on_etcd(
            &scene.cluster,
            &scene.second,
            &run_waiting("site", "docs/api", "echo ran $SCOPE_LOCK_TOKEN"),
        ))?;
        let blocking = waiter
            .next_stderr_line(BOUND)
            .ok_or("the waiter said nothing")?;
        assert!(
            blocking.starts_with("Blocking: waiting for scope docs/api")
                && blocking.contains("docs-fixer"),
            "{blocking}"
        );
        assert_eq!(scene.holder.finish().and_then(|s| s.code()), Some(0));
        let ran = waiter.next_line(BOUND).ok_or("the waiter never ran")?;
        let later: u64 = ran
            .strip_prefix("ran ")
            .ok_or_else(|| format!("{ran:?}"))?
            .parse()?;
        assert!(later > token, "token {later} after {token}");
        assert_eq!(waiter.wait(BOUND).and_then(|s| s.code()), Some(0));
        Ok(())
    })
}

/// A `run` stopped (SIGSTOP) past its lease's TTL loses the lock: another clone gets the scope
/// while it is stopped, with a larger token; once resumed, the stopped `run` sends its CMD
/// SIGTERM and exits 76.
#[test]
fn a_run_stopped_past_its_ttl_tells_cmd_and_exits_lost() -> TestResult {
    if !available("cli::etcd::a_run_stopped_past_its_ttl_tells_cmd_and_exits_lost") {
        return Ok(());
    }
    let cluster = EtcdCluster::single()?;
    let (first, second) = (clone()?, clone()?);
    // CMD keeps working (it is not stopped: only scope-lock is) until SIGTERM reaches it.
    let script = "trap 'echo got SIGTERM; exit 7' TERM; echo ready $SCOPE_LOCK_TOKEN; \
                  while :; do sleep 0.1; done";
    let (mut stopped, token) = hold_on_etcd(
        &cluster,
        &first,
        &["--lease-ttl", "2", "--name", "writer", "--scope", "docs"],
        script,
    )?;
    stopped.signal(Signal::STOP)?;

    // The barrier: the other clone gets the scope only once the stopped holder's lease has
    // expired.
    let next = support::run_to_end(on_etcd(
        &cluster,
        &second,
        &run_waiting("writer", "docs", "echo $SCOPE_LOCK_TOKEN"),
    ))?;
    assert_eq!(next.code(), 0, "{}", next.stderr);
    let next_token: u64 = next.stdout.trim().parse()?;
    assert!(next_token > token, "token {next_token} after {token}");

    stopped.signal(Signal::CONT)?;
    assert_eq!(
        stopped.next_line(BOUND).as_deref(),
        Some("got SIGTERM"),
        "CMD was not told"
    );
    let status = stopped.wait(BOUND).ok_or("the stopped run did not exit")?;
    let stderr = stopped.stderr();
    assert_eq!(status.code(), Some(76), "{stderr}");
    assert!(stderr.contains("lost the lock"), "{stderr}");
    Ok(())
}

/// `clean` on etcd has nothing to clean and says why; `break` shows the lock's key, host and
/// token, and refuses `--kill` and `--force`, saying where the holder runs.
#[test]
fn clean_and_break_on_etcd_say_what_they_can_do() -> TestResult {
    with_docs_fixer_holding(|mut scene| {
        let token = scene.token;
        let clean = scene.in_second(&["clean"])?;
        assert_eq!(clean.code(), 0, "{}", clean.stderr);
        assert!(
            clean.stdout.contains("nothing to clean on etcd")
                && clean.stdout.contains("1 live lock left alone"),
            "{}",
            clean.stdout
        );
        let shown = scene.in_second(&["break", "docs-fixer"])?;
        assert_eq!(shown.code(), 0, "{}", shown.stderr);
        assert!(
            shown.stdout.contains(&format!("token {token}"))
                && shown
                    .stdout
                    .contains(&format!("pid {}", scene.holder.pid())),
            "{}",
            shown.stdout
        );
        let kill = scene.in_second(&["break", "docs-fixer", "--kill"])?;
        assert_eq!(kill.code(), 1, "{}", kill.stderr);
        assert!(
            kill.stderr.contains("not done from here"),
            "{}",
            kill.stderr
        );
        // The lock is untouched.
        assert!(scene.holder.is_running());
        assert_eq!(scene.holder.finish().and_then(|s| s.code()), Some(0));
        Ok(())
    })
}

/// `--etcd` without a project is a usage error that says what the project is for.
#[test]
fn etcd_without_a_project_is_a_usage_error() -> TestResult {
    let sandbox = Sandbox::new()?;
    let out = sandbox.run(&["--etcd", "http://127.0.0.1:9", "list"])?;
    assert_eq!(out.code(), 2, "{}", out.stderr);
    assert!(out.stderr.contains("--project"), "{}", out.stderr);
    Ok(())
}
