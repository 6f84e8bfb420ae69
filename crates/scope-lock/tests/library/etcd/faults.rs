//! The faults of issue 19 against real etcd servers, each with what must happen: a holder
//! SIGKILLed, a holder SIGSTOPped past its TTL, a member of three killed and restarted, the
//! single member restarted, and a client cut off from the cluster by stopping its member.
//!
//! Orderings are proven by what is seen in between (a lock still held right after its holder
//! was killed), never by sleeping or by measuring time.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use scope_lock::testing::TestResult;
use scope_lock::{ErrorKind, LockRequest};

use super::holder::Holder;
use super::{manager_with, refusal, setup};

/// How long a test waits for a scope that must come free (after a TTL, an election).
const WAIT: Duration = Duration::from_secs(30);

/// A resource that refuses writes fenced by a token older than one it has accepted: what the
/// fencing token is for.
#[derive(Debug, Default)]
struct FencedResource {
    highest: u64,
    accepted: Vec<(u64, &'static str)>,
}

impl FencedResource {
    fn write(&mut self, token: u64, what: &'static str) -> Result<(), String> {
        if token < self.highest {
            return Err(format!(
                "token {token} is stale: {} was accepted",
                self.highest
            ));
        }
        self.highest = token;
        self.accepted.push((token, what));
        Ok(())
    }
}

/// A holder killed by SIGKILL keeps its scope until its lease expires, and not a moment
/// less: right after it is reaped the scope is still held; a waiter then gets it once the
/// TTL is over, with a larger token.
#[test]
fn a_sigkilled_holder_keeps_its_scope_until_the_ttl_and_then_loses_it() -> TestResult {
    let Some((cluster, ours, theirs)) = setup(1)? else {
        return Ok(());
    };
    let mut holder = Holder::spawn(&cluster.endpoints(), "killed", &theirs.root, "docs", 2)?;
    let their_token = holder.acquired()?;
    let locks = manager_with(&cluster.endpoints(), "killed", &ours.root, 2)?;
    let request = LockRequest::new("after").scope(["docs/api"]);

    holder.kill()?;
    let err = refusal(&locks, &request)?;
    let conflict = err
        .conflict()
        .ok_or_else(|| format!("not a conflict: {err}"))?;
    assert_eq!(conflict.holder().map(|h| h.loop_name()), Some("holder"));

    let guard = locks.acquire(&request, WAIT)?;
    assert!(guard.token() > their_token);
    assert!(
        locks
            .list_locks()?
            .locks()
            .iter()
            .all(|l| l.lock_name() == "after")
    );
    Ok(())
}

/// A holder stopped with SIGSTOP for longer than its TTL loses its scope to a waiter; when it
/// runs again it is told (`lost`, and its release fails with `Lost`), and the write it still
/// tries with its token is refused by a fenced resource that has seen the new holder's.
#[test]
fn a_holder_stopped_past_its_ttl_is_told_it_lost_and_its_token_is_refused() -> TestResult {
    let Some((cluster, ours, theirs)) = setup(1)? else {
        return Ok(());
    };
    let mut resource = FencedResource::default();
    let mut holder = Holder::spawn(&cluster.endpoints(), "stopped", &theirs.root, ".", 2)?;
    let stale = holder.acquired()?;
    resource.write(stale, "stopped holder, while it held the scope")?;

    holder.signal(Signal::STOP)?;
    let locks = manager_with(&cluster.endpoints(), "stopped", &ours.root, 2)?;
    let guard = locks.acquire(&LockRequest::new("next").scope(["src"]), WAIT)?;
    assert!(guard.token() > stale);
    resource.write(guard.token(), "the next holder")?;

    holder.signal(Signal::CONT)?;
    holder.hear("lost")?;
    holder.tell("release")?;
    assert_eq!(holder.hear("release-failed")?, "Lost");
    let refused = resource.write(stale, "stopped holder, late");
    assert!(refused.is_err(), "{:?}", resource.accepted);
    // The new holder is untouched by the old one's late release.
    assert!(!guard.is_lost());
    assert_eq!(locks.list_locks()?.locks().len(), 1);
    guard.release()?;
    Ok(())
}

/// In a cluster of three, killing a member (whichever it is, the leader or not) loses no lock
/// and stops nothing: a held lock stays held and not lost, others are taken and released, and
/// once the member is back, a client that talks to it alone sees every lock.
#[test]
fn a_member_of_three_killed_and_restarted_loses_no_lock() -> TestResult {
    let Some((mut cluster, here, there)) = setup(3)? else {
        return Ok(());
    };
    let all = cluster.endpoints();
    let a = manager_with(&all, "three", &here.root, 4)?;
    let held = a.try_acquire(&LockRequest::new("docs").scope(["docs"]))?;

    cluster.kill(0)?;
    let others = manager_with(&all[1..], "three", &there.root, 4)?;
    let err = refusal(&others, &LockRequest::new("api").scope(["docs/api"]))?;
    assert!(err.conflict().is_some(), "{err}");
    let src = others.try_acquire(&LockRequest::new("src").scope(["src"]))?;
    assert!(src.token() > held.token());
    src.release()?;

    cluster.restart(0)?;
    let back = manager_with(&all[..1], "three", &there.root, 4)?;
    let names: Vec<String> = back
        .list_locks()?
        .locks()
        .iter()
        .map(|l| l.lock_name().to_owned())
        .collect();
    assert_eq!(names, ["docs"]);
    assert!(!held.is_lost());
    held.release()?;
    assert!(back.list_locks()?.locks().is_empty());
    Ok(())
}

/// The single member restarted: a lock whose lease outlives the outage is still held when it
/// returns (others are refused, the guard is not lost), and is released as usual.
#[test]
fn a_lock_outlives_a_restart_of_the_single_member_within_its_ttl() -> TestResult {
    let Some((mut cluster, here, there)) = setup(1)? else {
        return Ok(());
    };
    let a = manager_with(&cluster.endpoints(), "restart", &here.root, 10)?;
    let held = a.try_acquire(&LockRequest::new("docs").scope(["docs"]))?;

    cluster.restart(0)?;
    let b = manager_with(&cluster.endpoints(), "restart", &there.root, 10)?;
    let err = refusal(&b, &LockRequest::new("api").scope(["docs/api"]))?;
    assert!(err.conflict().is_some(), "{err}");
    assert!(!held.is_lost());
    held.release()?;
    b.try_acquire(&LockRequest::new("api").scope(["docs/api"]))?
        .release()?;
    Ok(())
}

/// A client cut off from the cluster (its only member stopped) loses its lock at the TTL:
/// it is told so, and by the time anyone else has the scope it already counts itself as not
/// holding it, so nobody holds it twice.
#[test]
fn a_client_cut_off_from_the_cluster_loses_its_lock_at_the_ttl() -> TestResult {
    let Some((cluster, here, there)) = setup(3)? else {
        return Ok(());
    };
    let all = cluster.endpoints();
    let cut_off = manager_with(&all[..1], "cut", &here.root, 2)?;
    let held = cut_off.try_acquire(&LockRequest::new("docs").scope(["docs"]))?;
    let (tell, told) = mpsc::channel();
    held.on_lost(move || {
        let _ = tell.send(Instant::now());
    });

    cluster.pause(0)?;
    let others = manager_with(&all[1..], "cut", &there.root, 2)?;
    let guard = others.acquire(&LockRequest::new("api").scope(["docs/api"]), WAIT)?;
    // Ordering, not timing: the cut-off holder takes its lease for lost a TTL after the last
    // renewal it sent; etcd expires it a TTL after the last renewal it received, later.
    assert!(
        held.is_lost(),
        "the cut-off holder still thinks it holds the scope"
    );
    told.recv_timeout(WAIT)?;
    assert!(guard.token() > held.token());

    cluster.resume(0)?;
    let err = held.release().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Lost, "{err}");
    guard.release()?;
    Ok(())
}
