//! The etcd backend against real etcd servers (`scope_lock::testing::etcd`): the same
//! requests and rules as locally, across clones with different roots.

mod faults;
mod holder;
mod round_trips;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use scope_lock::etcd::{AsyncEtcdLockManager, EtcdConfig, EtcdLockManager};
use scope_lock::testing::TestResult;
use scope_lock::testing::etcd::{BIN_VAR, EtcdCluster, REQUIRE_VAR, available};
use scope_lock::{AcquireError, ConflictRule, ErrorKind, LockRequest, Waiting};

/// A clone of the project: a temporary directory as its root.
struct Clone {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn clone() -> Result<Clone, Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let root = std::fs::canonicalize(dir.path())?;
    Ok(Clone { _dir: dir, root })
}

/// A cluster, and the clones here and there.
type Setup = (EtcdCluster, Clone, Clone);

/// What most tests here start from: a cluster of `members` etcd members, and two clones of
/// the project at different roots ("here" and "there"). `None` when there is no etcd:
/// [`available`] has said so, naming the test (libtest names the thread it runs it on), and
/// the test returns.
fn setup(members: usize) -> Result<Option<Setup>, Box<dyn Error>> {
    let thread = std::thread::current();
    if !available(thread.name().unwrap_or("an etcd test")) {
        return Ok(None);
    }
    Ok(Some((EtcdCluster::start(members)?, clone()?, clone()?)))
}

/// The error of an acquire that must be refused.
fn refusal(locks: &EtcdLockManager, request: &LockRequest) -> Result<AcquireError, Box<dyn Error>> {
    match locks.try_acquire(request) {
        Ok(guard) => Err(format!("acquired, not refused: {:?}", guard.record()).into()),
        Err(err) => Ok(err),
    }
}

/// A manager of `project` at `root` on `cluster`, its lease of two seconds.
fn manager(
    cluster: &EtcdCluster,
    project: &str,
    root: &Path,
) -> Result<EtcdLockManager, Box<dyn Error>> {
    manager_with(&cluster.endpoints(), project, root, 2)
}

/// A manager of `project` at `root` that talks to `endpoints`, its lease of `ttl` seconds.
fn manager_with(
    endpoints: &[String],
    project: &str,
    root: &Path,
    ttl: u64,
) -> Result<EtcdLockManager, Box<dyn Error>> {
    let config = EtcdConfig::new(endpoints, project)
        .with_root(root)
        .with_lease_ttl(Duration::from_secs(ttl));
    Ok(EtcdLockManager::connect(config)?)
}

/// Two clones at different paths agree on what `docs/api` means: the second is refused the
/// overlapping `docs`, told who holds it, and gets it once the first releases; every
/// acquisition's token is larger than the one before.
#[test]
fn clones_with_different_roots_share_one_set_of_locks() -> TestResult {
    let Some((cluster, here, there)) = setup(1)? else {
        return Ok(());
    };
    let a = manager(&cluster, "shared", &here.root)?;
    let b = manager(&cluster, "shared", &there.root)?;

    let held = a.try_acquire(&LockRequest::new("api").scope(["docs/api"]))?;
    assert_eq!(held.record().scope(), ["docs/api"]);
    let err = refusal(&b, &LockRequest::new("docs").scope(["docs"]))?;
    let conflict = err.conflict().ok_or("not a conflict")?;
    assert_eq!(conflict.holder().map(|h| h.loop_name()), Some("api"));
    let theirs = there.root.join("docs/api").to_string_lossy().into_owned();
    assert!(
        matches!(conflict.rule(), ConflictRule::Overlap { theirs: t, .. } if *t == theirs),
        "{conflict}"
    );
    assert!(!conflict.is_held_by_this_process());
    // Disjoint scopes do not conflict, whoever asks.
    let other = b.try_acquire(&LockRequest::new("src").scope(["src"]))?;
    assert!(other.token() > held.token());

    let listing = a.list_locks()?;
    let names: Vec<&str> = listing.locks().iter().map(|l| l.lock_name()).collect();
    assert_eq!(names, ["api", "src"]);
    assert_eq!(listing.locks()[0].token(), held.token());

    let first = held.token();
    held.release()?;
    let docs = b.try_acquire(&LockRequest::new("docs").scope(["docs"]))?;
    assert!(docs.token() > first);
    // Our own lock is "this process".
    let mine = refusal(&b, &LockRequest::new("again").scope(["docs/x"]))?;
    assert!(mine.conflict().is_some_and(|c| c.is_held_by_this_process()));
    Ok(())
}

/// "Is this scope free?" on etcd, as locally: no name is needed (an empty loop name is no
/// request, but is a question), the name the request would take does not count, and the
/// answer names the holder's host, its nested lock name and pid, as the one conflict line does
/// everywhere. The async manager asks the same.
#[test]
fn the_scope_question_needs_no_name_and_names_the_holders_host() -> TestResult {
    if !available("etcd::the_scope_question_needs_no_name_and_names_the_holders_host") {
        return Ok(());
    }
    let cluster = EtcdCluster::single()?;
    let (here, there) = (clone()?, clone()?);
    let a = manager(&cluster, "question", &here.root)?;
    let b = manager(&cluster, "question", &there.root)?;
    let held = a.try_acquire(
        &LockRequest::new("gen")
            .instance_id("gen/run-7")
            .scope(["docs/api"]),
    )?;
    let host = a.list_locks()?.locks()[0].host().to_owned();
    assert!(!host.is_empty());

    let conflict = b
        .find_scope_conflict(&LockRequest::new("").scope(["docs"]))?
        .ok_or("docs holds docs/api")?;
    assert!(
        matches!(conflict.rule(), ConflictRule::Overlap { .. }),
        "{conflict}"
    );
    assert_eq!(conflict.host(), Some(host.as_str()));
    assert_eq!(conflict.lock_name(), Path::new("gen/run-7"));
    assert_eq!(conflict.token(), Some(held.token()));
    let line = conflict.to_string();
    assert!(
        line.contains(&format!(
            "held by loop `gen`, instance `gen/run-7`, pid {} on {host}, since",
            std::process::id()
        )),
        "{line}"
    );
    assert!(
        b.find_scope_conflict(&LockRequest::new("").scope(["src"]))?
            .is_none()
    );
    // The lock name is no conflict for the scope question; it is for an acquire's.
    let same_name = LockRequest::new("gen")
        .instance_id("gen/run-7")
        .scope(["src"]);
    assert!(b.find_scope_conflict(&same_name)?.is_none());
    let taken = b.find_conflict(&same_name)?.ok_or("the name is taken")?;
    assert_eq!(taken.rule(), &ConflictRule::SameName);
    assert_eq!(taken.host(), Some(host.as_str()));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let asked = runtime.block_on(async {
        let config = EtcdConfig::new(cluster.endpoints(), "question").with_root(&there.root);
        let locks = AsyncEtcdLockManager::connect(config).await?;
        let found = locks
            .find_scope_conflict(&LockRequest::new("").scope(["docs/api/v2"]))
            .await?;
        Ok::<_, Box<dyn Error>>(found)
    })?;
    assert_eq!(asked.and_then(|c| c.host().map(str::to_owned)), Some(host));
    held.release()?;
    Ok(())
}

/// An absolute scope outside the root is refused, with the entry named.
#[test]
fn scopes_outside_the_project_root_are_refused_by_name() -> TestResult {
    let Some((cluster, here, _)) = setup(1)? else {
        return Ok(());
    };
    let a = manager(&cluster, "outside", &here.root)?;
    let err = refusal(&a, &LockRequest::new("x").scope(["src", "/etc/passwd"]))?;
    let err = err.error().ok_or("not an error")?;
    assert_eq!(err.kind(), ErrorKind::InvalidScope);
    assert!(err.to_string().contains("\"/etc/passwd\""), "{err}");
    assert!(a.list_locks()?.locks().is_empty());
    Ok(())
}

/// A waiter reports that it blocks, sleeps on a watch, and gets the scope when the holder
/// releases; a second waiter behind it gets it after it (FIFO among overlapping waiters).
#[test]
fn waiters_are_served_in_order_when_the_holder_releases() -> TestResult {
    let Some((cluster, here, there)) = setup(1)? else {
        return Ok(());
    };
    let a = manager(&cluster, "order", &here.root)?;
    let b = manager(&cluster, "order", &there.root)?;
    let c = manager(&cluster, "order", &there.root)?;
    let held = a.try_acquire(&LockRequest::new("holder").scope(["."]))?;
    let deadline = Instant::now() + Duration::from_secs(60);

    let (queued_tx, queued_rx) = std::sync::mpsc::channel();
    let first = std::thread::spawn({
        let queued_tx = queued_tx.clone();
        move || {
            let mut told = |wait: &Waiting<'_>| {
                if wait.is_first() {
                    let _ = queued_tx.send(("first", wait.conflict().to_string()));
                }
            };
            b.acquire_with(
                &LockRequest::new("first").scope(["src"]),
                deadline,
                &mut told,
            )
            .map(|guard| (guard.token(), guard))
        }
    });
    // The second waiter queues only once the first has: the order is fixed before it.
    let (who, blocked_by) = queued_rx.recv_timeout(Duration::from_secs(30))?;
    assert_eq!(who, "first");
    assert!(blocked_by.contains("holder"), "{blocked_by}");
    let second = std::thread::spawn(move || {
        let mut told = |wait: &Waiting<'_>| {
            if wait.is_first() {
                let _ = queued_tx.send(("second", wait.conflict().to_string()));
            }
        };
        c.acquire_with(
            &LockRequest::new("second").scope(["src/a"]),
            deadline,
            &mut told,
        )
        .map(|guard| guard.token())
    });
    let (who, blocked_by) = queued_rx.recv_timeout(Duration::from_secs(30))?;
    assert_eq!(who, "second");
    assert!(
        blocked_by.contains("first"),
        "the second waits behind the first: {blocked_by}"
    );

    held.release()?;
    let (first_token, first_guard) = first.join().map_err(|_| "first panicked")??;
    drop(first_guard);
    let second_token = second.join().map_err(|_| "second panicked")??;
    assert!(second_token > first_token);
    Ok(())
}

/// Shared (read) locks through etcd follow the local rule, which the backend decides with:
/// readers in two clones hold overlapping scopes together, a writer is refused naming one of
/// them, and gets the scope once both have left.
#[test]
fn readers_in_two_clones_hold_together_and_a_writer_waits_for_both() -> TestResult {
    let Some((cluster, here, there)) = setup(1)? else {
        return Ok(());
    };
    let a = manager(&cluster, "readers", &here.root)?;
    let b = manager(&cluster, "readers", &there.root)?;

    let review = a.try_acquire(&LockRequest::new("review").scope(["docs"]).shared())?;
    let report = b.try_acquire(&LockRequest::new("report").scope(["docs/api"]).shared())?;
    assert_eq!(review.record().mode(), scope_lock::LockMode::Shared);
    let modes: Vec<_> = a
        .list_locks()?
        .locks()
        .iter()
        .map(|l| l.record().mode())
        .collect();
    assert_eq!(modes, [scope_lock::LockMode::Shared; 2]);

    let err = refusal(&b, &LockRequest::new("fixer").scope(["docs/api/x"]))?;
    let conflict = err.conflict().ok_or("not a conflict")?;
    assert!(
        matches!(conflict.rule(), ConflictRule::Overlap { .. }),
        "{conflict}"
    );
    review.release()?;
    assert!(
        b.try_acquire(&LockRequest::new("fixer").scope(["docs/api/x"]))
            .is_err(),
        "the writer got the scope while a reader held it"
    );
    report.release()?;
    b.try_acquire(&LockRequest::new("fixer").scope(["docs/api/x"]))?
        .release()?;
    Ok(())
}

/// Glob entries through etcd: a pattern held in one clone excludes the paths it matches in
/// another, as locally (the backend decides with the same code).
#[test]
fn a_pattern_held_in_one_clone_excludes_what_it_matches_in_another() -> TestResult {
    let Some((cluster, here, there)) = setup(1)? else {
        return Ok(());
    };
    let a = manager(&cluster, "globs", &here.root)?;
    let b = manager(&cluster, "globs", &there.root)?;
    let sync = a.try_acquire(&LockRequest::new("docs-sync").scope(["docs/", "*.md"]))?;
    assert_eq!(sync.record().scope(), ["docs", "*.md"]);
    let err = refusal(&b, &LockRequest::new("readme").scope(["README.md"]))?;
    assert!(err.conflict().is_some(), "{err}");
    b.try_acquire(&LockRequest::new("src").scope(["src/lib.rs"]))?
        .release()?;
    sync.release()?;
    Ok(())
}

/// The async manager: the same calls awaited from a tokio runtime, a guard dropped there
/// released in the background (a waiter gets the scope), and the blocking manager refusing,
/// with an error rather than tokio's panic, to run inside async code.
#[test]
fn the_async_manager_works_inside_tokio_and_the_blocking_one_refuses_to() -> TestResult {
    let Some((cluster, here, there)) = setup(1)? else {
        return Ok(());
    };
    let blocking = manager_with(&cluster.endpoints(), "async", &there.root, 2)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = EtcdConfig::new(cluster.endpoints(), "async")
            .with_root(&here.root)
            .with_lease_ttl(Duration::from_secs(2));
        let locks = AsyncEtcdLockManager::connect(config).await?;
        let guard = locks
            .try_acquire(&LockRequest::new("a").scope(["docs"]))
            .await?;
        let conflict = locks
            .find_conflict(&LockRequest::new("b").scope(["docs/x"]))
            .await?
            .ok_or("no conflict")?;
        assert!(conflict.is_held_by_this_process());

        let refused = blocking.list_locks().map(|_| ()).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Etcd);
        assert!(
            refused.to_string().contains("AsyncEtcdLockManager"),
            "{refused}"
        );

        drop(guard);
        let deadline = Instant::now() + Duration::from_secs(30);
        let again = locks
            .acquire_until(&LockRequest::new("b").scope(["docs/x"]), deadline)
            .await?;
        again.release_async().await?;
        Ok::<(), Box<dyn Error>>(())
    })?;
    Ok(())
}

/// Without an etcd binary the tests say SKIPPED on the standard error (which the test
/// harness does not capture) and pass; with `SCOPE_LOCK_REQUIRE_ETCD=1` they fail, saying why.
#[test]
fn without_etcd_the_tests_skip_loudly_or_fail_when_etcd_is_required() -> TestResult {
    let run = |require: bool| -> Result<std::process::Output, Box<dyn Error>> {
        let mut command = std::process::Command::new(std::env::current_exe()?);
        command
            .args(["--exact", "etcd::availability_entry", "--include-ignored"])
            .env(BIN_VAR, "/nonexistent/etcd")
            .env_remove(REQUIRE_VAR);
        if require {
            command.env(REQUIRE_VAR, "1");
        }
        Ok(command.output()?)
    };
    let skipped = run(false)?;
    let stderr = String::from_utf8_lossy(&skipped.stderr);
    assert!(skipped.status.success(), "{stderr}");
    assert!(
        stderr.contains("SKIPPED etcd::availability_entry"),
        "{stderr}"
    );
    let required = run(true)?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&required.stdout),
        String::from_utf8_lossy(&required.stderr)
    );
    assert!(!required.status.success(), "{said}");
    assert!(
        said.contains("needs etcd (SCOPE_LOCK_REQUIRE_ETCD=1)"),
        "{said}"
    );
    Ok(())
}

/// What the test above runs: a test that needs etcd, in a child process.
#[test]
#[ignore = "a child process of without_etcd_the_tests_skip_loudly_or_fail_when_etcd_is_required"]
fn availability_entry() {
    if !available("etcd::availability_entry") {
        return;
    }
    panic!("available() found an etcd where the test pointed at none");
}
