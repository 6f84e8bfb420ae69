//! Waiting acquires, in one process: threads stand in for processes (a flock belongs to an open
//! file description, so two descriptors of one process exclude each other as two processes
//! would). Threads report through channels; nothing waits on a clock for ordering. The
//! multi-process scenarios (killed and stopped processes) are in the regression suite.

use std::error::Error as _;
use std::fs;
#[cfg(target_os = "linux")]
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use scope_lock::testing;
use scope_lock::testing::{TestResult, expect_failure, fixture, flock_is_held};
use scope_lock::{
    AcquireError, ConflictRule, ErrorKind, LockRecord, LockRequest, MAX_RECORD_BYTES, ScopeGuard,
    Waiting,
};

/// Long enough never to be reached when the code is right; reaching it fails the test.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// Tries `name` on `rel` and expects it refused because `waiter`, an earlier waiter, goes first.
fn refused_for_waiter(
    f: &testing::Fixture,
    name: &str,
    rel: &str,
    waiter: &str,
) -> Result<AcquireError, Box<dyn std::error::Error>> {
    let err = f.acquire(name, rel).map(drop).unwrap_err();
    let conflict = err
        .conflict()
        .ok_or_else(|| format!("expected a conflict: {err}"))?;
    assert!(
        matches!(conflict.rule(), ConflictRule::Waiting { .. }),
        "{conflict}"
    );
    assert_eq!(conflict.holder().map(LockRecord::loop_name), Some(waiter));
    Ok(err)
}

/// The files left in the waiting queue's directory.
fn tickets(running: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let dir = running.join(".queue");
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

/// Starts `request` waiting on another thread; returns once it has started waiting (its
/// observer heard the first report), with the receiver of its outcome.
pub(crate) fn start_waiting(
    locks: &scope_lock::LockManager,
    request: LockRequest,
    timeout: Duration,
) -> Result<mpsc::Receiver<Result<ScopeGuard, AcquireError>>, Box<dyn std::error::Error>> {
    match start_waiting_reported(locks, request, timeout)? {
        (done, (Some(_ticket), _)) => Ok(done),
        (_, (None, _)) => Err("a waiter started waiting without a ticket".into()),
    }
}

#[test]
fn acquire_returns_holding_the_lock_once_the_holder_releases() -> TestResult {
    let f = fixture()?;
    let holder = f.acquire("holder", "src")?;
    let waiter = start_waiting(&f.locks, f.request("waiter", "src/lib"), PATIENCE)?;
    holder.release()?;
    let guard = waiter.recv_timeout(PATIENCE)??;
    assert_eq!(guard.record().loop_name(), "waiter");
    assert!(
        flock_is_held(guard.path())?,
        "acquire returned without the flock"
    );
    assert_eq!(
        tickets(f.running())?,
        Vec::<String>::new(),
        "its ticket was left behind"
    );
    guard.release()?;
    Ok(())
}

#[test]
fn a_free_scope_is_acquired_at_once_without_waiting_or_a_ticket() -> TestResult {
    let f = fixture()?;
    let mut reports = 0;
    let guard = f.locks.acquire_with(
        &f.request("free", "src"),
        Instant::now() + PATIENCE,
        &mut |_: &Waiting<'_>| reports += 1,
    )?;
    assert_eq!(
        reports, 0,
        "the observer was told of a wait that did not happen"
    );
    assert_eq!(tickets(f.running())?, Vec::<String>::new());
    guard.release()?;
    Ok(())
}

#[test]
fn a_timeout_names_the_holder_and_leaves_no_files() -> TestResult {
    let f = fixture()?;
    let holder = f.acquire("holder", "src")?;
    let err = f
        .locks
        .acquire(&f.request("late", "src"), Duration::from_millis(300))
        .map(drop)
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let conflict = err.conflict().ok_or("a timeout carries its conflict")?;
    assert_eq!(conflict.holder(), Some(holder.record()));
    assert_eq!(conflict.lock_path(), holder.path());
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(
        tickets(f.running())?,
        Vec::<String>::new(),
        "a timed-out waiter left its ticket"
    );
    assert_eq!(f.lock_files()?, vec![holder.path().to_path_buf()]);
    // A deadline already past is one attempt: a timeout, at once.
    let err = f
        .locks
        .acquire_until(&f.request("later", "src"), Instant::now())
        .map(drop)
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    holder.release()?;
    Ok(())
}

#[test]
fn disjoint_waiters_never_wait_for_each_other() -> TestResult {
    let f = fixture()?;
    let holder = f.acquire("holder", "a")?;
    let waiter = start_waiting(&f.locks, f.request("waits-for-a", "a"), PATIENCE)?;

    // A waiter exists, but its scope is disjoint from `b`: both calls go straight through.
    let mut reports = 0;
    let b = f.locks.acquire_with(
        &f.request("b", "b"),
        Instant::now() + PATIENCE,
        &mut |_: &Waiting<'_>| reports += 1,
    )?;
    assert_eq!(reports, 0, "a disjoint acquire waited");
    let c = f.acquire("c", "c")?;

    holder.release()?;
    waiter.recv_timeout(PATIENCE)??.release()?;
    b.release()?;
    c.release()?;
    Ok(())
}

#[test]
fn overlapping_waiters_get_the_lock_in_arrival_order() -> TestResult {
    let f = fixture()?;
    let holder = f.acquire("holder", "src")?;
    // Each waiter starts only once the one before it is waiting: that is the arrival order.
    let scopes = ["src", "src/a", "src", "src/a/b", "src"];
    let mut waiters = Vec::new();
    for (n, rel) in scopes.iter().enumerate() {
        waiters.push(start_waiting(
            &f.locks,
            f.request(&format!("w{n}"), rel),
            PATIENCE,
        )?);
    }
    holder.release()?;
    // Only the head of the queue can get the lock; the rest keep waiting until it releases.
    for (n, waiter) in waiters.iter().enumerate() {
        let guard = waiter.recv_timeout(PATIENCE)??;
        assert_eq!(
            guard.record().loop_name(),
            format!("w{n}"),
            "served out of order"
        );
        for later in &waiters[n + 1..] {
            assert!(
                later.try_recv().is_err(),
                "a later waiter got the lock while w{n} held it"
            );
        }
        guard.release()?;
    }
    assert_eq!(tickets(f.running())?, Vec::<String>::new());
    Ok(())
}

/// What a waiter's first report said: its own ticket, and the ticket of the waiter it waits
/// for (`None` when it waits for a lock).
type FirstReport = (Option<u64>, Option<u64>);

/// Where a waiting thread sends how its wait ended.
type Outcome = mpsc::Receiver<Result<ScopeGuard, AcquireError>>;

/// A lock file of the original over `rel`, as another process's: its pid is alive and not our
/// ancestor (pid 1 is never counted as one), and it holds no flock. Removing it releases it.
pub(crate) fn original_holder(
    f: &testing::Fixture,
    rel: &str,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    f.init()?;
    let record = LockRecord::new(
        "original",
        vec![f.path(rel)],
        1,
        "2026-01-01T00:00:00+00:00",
    );
    f.write_lock_file("original", record.to_json().as_bytes())
}

/// [`start_waiting`], also returning what the waiter's first report said.
fn start_waiting_reported(
    locks: &scope_lock::LockManager,
    request: LockRequest,
    timeout: Duration,
) -> Result<(Outcome, FirstReport), Box<dyn std::error::Error>> {
    let (started_tx, started_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let locks = locks.clone();
    thread::spawn(move || {
        let mut observer = |wait: &Waiting<'_>| {
            if wait.is_first() {
                let ahead = match wait.conflict().rule() {
                    ConflictRule::Waiting { ticket } => Some(*ticket),
                    _ => None,
                };
                let _ = started_tx.send((wait.ticket(), ahead));
            }
        };
        let result = locks.acquire_with(&request, Instant::now() + timeout, &mut observer);
        let _ = done_tx.send(result);
    });
    let report = started_rx
        .recv_timeout(PATIENCE)
        .map_err(|_| "the waiter never started waiting")?;
    Ok((done_rx, report))
}

#[test]
fn each_waiter_waits_for_the_waiter_just_ahead_of_it_not_the_head() -> TestResult {
    // A waiter wakes for what its conflict names. Naming the head of the queue would wake
    // every waiter each time the head leaves; naming the one just ahead wakes one.
    let f = fixture()?;
    // The holder is another process: a lock of ours would not block our own waiters in the
    // queue.
    let holder = original_holder(&f, "src")?;
    let mut waiters = Vec::new();
    let mut reports = Vec::new();
    for n in 0..4 {
        let (done, report) =
            start_waiting_reported(&f.locks, f.request(&format!("w{n}"), "src"), PATIENCE)?;
        waiters.push(done);
        reports.push(report);
    }
    let tickets: Vec<u64> = reports
        .iter()
        .map(|(ticket, _)| ticket.ok_or("a waiter without a ticket"))
        .collect::<Result<_, _>>()?;
    // The head waits for the holder's lock; each later one for the ticket just before its own,
    // from its first report on (the attempt that gave it its ticket).
    assert_eq!(reports[0].1, None, "{reports:?}");
    for n in 1..reports.len() {
        assert_eq!(reports[n].1, Some(tickets[n - 1]), "{reports:?}");
    }
    // Its holder gone, the original's lock is released.
    fs::remove_file(&holder)?;
    let mut served = Vec::new();
    for waiter in &waiters {
        let guard = waiter.recv_timeout(PATIENCE)??;
        served.push(guard.record().loop_name().to_owned());
        guard.release()?;
    }
    assert_eq!(served, ["w0", "w1", "w2", "w3"]);
    Ok(())
}

#[test]
fn try_acquire_does_not_jump_ahead_of_an_earlier_overlapping_waiter() -> TestResult {
    let f = fixture()?;
    let theirs = original_holder(&f, "a")?;
    let waiter = start_waiting(
        &f.locks,
        LockRequest::new("wants-a-and-b")
            .scope([f.path("a"), f.path("b")])
            .singleton(true),
        PATIENCE,
    )?;

    // A lock of ours that does not block the waiter (not a singleton, though of its name): it
    // does not let us go before the waiter.
    let ours = f.locks.try_acquire(
        &LockRequest::new("wants-a-and-b")
            .instance_id("ours")
            .scope([f.path("c")]),
    )?;

    // `b` is free of locks, but the earlier waiter wants it too: refused, naming the waiter.
    let err = refused_for_waiter(&f, "wants-b", "b", "wants-a-and-b")?;
    let conflict = err
        .conflict()
        .ok_or_else(|| format!("expected a conflict: {err}"))?;
    assert!(err.to_string().contains("goes first"), "{err}");
    // The waiter is a thread of this process.
    assert!(conflict.is_held_by_this_process(), "{conflict}");
    // find_conflict says the same.
    let found = f.locks.find_conflict(&f.request("wants-b", "b"))?;
    assert_eq!(found.as_ref().map(|c| c.rule()), Some(conflict.rule()));

    // The original's holder leaves; the waiter (which polls such locks) gets its turn.
    fs::remove_file(&theirs)?;
    let guard = waiter.recv_timeout(PATIENCE)??;
    assert_eq!(guard.record().loop_name(), "wants-a-and-b");
    guard.release()?;
    f.acquire("wants-b", "b")?.release()?;
    ours.release()?;
    Ok(())
}

#[test]
fn a_waiter_blocked_by_our_own_lock_does_not_block_us() -> TestResult {
    // A loop holding `src` runs a nested loop over `src/x`, while someone waits for `src`: the
    // waiter cannot go before our lock is released, so making us wait for it would deadlock.
    let f = fixture()?;
    let outer = f.acquire("outer", "src")?;
    let waiter = start_waiting(
        &f.locks,
        LockRequest::new("waits-for-src").scope([f.path("src"), f.path("other")]),
        PATIENCE,
    )?;
    let err = f.acquire("nested", "src/x").map(drop).unwrap_err();
    // Refused by our own lock (same process, not an ancestor), never by the waiter behind it.
    let conflict = err.conflict().ok_or("expected a conflict")?;
    assert!(
        matches!(conflict.rule(), ConflictRule::Overlap { .. }),
        "{conflict}"
    );
    // Something disjoint from our lock but overlapping the waiter passes.
    let beside = f.acquire_paths("beside", &["other"])?;
    beside.release()?;
    outer.release()?;
    waiter.recv_timeout(PATIENCE)??.release()?;
    Ok(())
}

#[test]
fn a_singleton_waiter_blocked_by_our_singleton_does_not_block_us() -> TestResult {
    // Our singleton `n` holds `a`; another instance of `n` waits for it, over `b`. That waiter
    // cannot go before our lock is released, so it must not hold up what we acquire over `b`.
    let f = fixture()?;
    let singleton = |id: &str, rel: &str| {
        LockRequest::new("n")
            .instance_id(id)
            .scope([f.path(rel)])
            .singleton(true)
    };
    let outer = f.locks.try_acquire(&singleton("n-1", "a"))?;
    let waiter = start_waiting(&f.locks, singleton("n-2", "b"), PATIENCE)?;
    f.acquire("beside", "b")?.release()?;
    outer.release()?;
    waiter.recv_timeout(PATIENCE)??.release()?;
    Ok(())
}

#[test]
fn the_observer_hears_the_holder_when_waiting_starts_and_then_periodically() -> TestResult {
    let f = fixture()?;
    let holder = f.acquire("holder", "src")?;
    let mut reports: Vec<(bool, Option<String>, Option<u64>, Duration)> = Vec::new();
    let err = f
        .locks
        .acquire_with(
            &f.request("patient", "src"),
            Instant::now() + Duration::from_millis(2200),
            &mut |wait: &Waiting<'_>| {
                reports.push((
                    wait.is_first(),
                    wait.conflict().holder().map(|h| h.loop_name().to_owned()),
                    wait.ticket(),
                    wait.waited(),
                ));
            },
        )
        .map(drop)
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    // Once at the start, then again each second of the 2.2 s it waited.
    assert!(reports.len() >= 2, "{reports:?}");
    assert!(
        reports[0].0 && reports[1..].iter().all(|r| !r.0),
        "{reports:?}"
    );
    assert!(
        reports.iter().all(|r| r.1.as_deref() == Some("holder")),
        "{reports:?}"
    );
    assert!(
        reports.iter().all(|r| r.2.is_some() && r.2 == reports[0].2),
        "{reports:?}"
    );
    // Each report says how long the wait has gone on: longer at every later one.
    assert!(
        reports.windows(2).all(|pair| pair[1].3 > pair[0].3),
        "{reports:?}"
    );
    holder.release()?;
    Ok(())
}

#[cfg(target_os = "linux")]
#[test]
fn things_in_the_queue_that_are_not_tickets_are_left_alone() -> TestResult {
    use rustix::fs::{CWD, FileType, Mode, mknodat};
    let f = fixture()?;
    let queue = f.running().join(".queue");
    fs::create_dir_all(&queue)?;
    // Names a ticket could have, taken by a FIFO and a directory.
    let fifo = queue.join(format!("{:020}", 1));
    mknodat(CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o644), 0)?;
    let dir = queue.join(format!("{:020}", 2));
    fs::create_dir(&dir)?;

    let holder = f.acquire("holder", "src")?;
    let waiter = start_waiting(&f.locks, f.request("waiter", "src"), PATIENCE)?;
    holder.release()?;
    waiter.recv_timeout(PATIENCE)??.release()?;
    assert!(
        fs::symlink_metadata(&fifo)?.file_type().is_fifo(),
        "the FIFO was touched"
    );
    assert!(dir.is_dir(), "the directory was touched");
    Ok(())
}

/// Files a ticket as a waiting process would: `record`, padded with spaces to `len` bytes,
/// under `number` in the queue. The waiter is alive for as long as the returned file (which
/// holds the ticket's flock) is open.
#[allow(
    clippy::disallowed_methods,
    reason = "stands in for another process's waiter, which flocks its own ticket"
)]
fn file_ticket(
    running: &Path,
    number: u64,
    record: &LockRecord,
    len: usize,
) -> Result<(PathBuf, fs::File), Box<dyn std::error::Error>> {
    let queue = running.join(".queue");
    fs::create_dir_all(&queue)?;
    let mut bytes = record.to_json().into_bytes();
    bytes.resize(len.max(bytes.len()), b' ');
    let path = queue.join(format!("{number:020}"));
    fs::write(&path, &bytes)?;
    let file = fs::File::open(&path)?;
    file.try_lock()
        .map_err(|err| format!("cannot flock {}: {err}", path.display()))?;
    Ok((path, file))
}

/// A waiter of another process (pid 1 is alive and never our ancestor) over `rel`.
fn waiter_record(f: &testing::Fixture, rel: &str) -> LockRecord {
    LockRecord::new("waiter", vec![f.path(rel)], 1, "2026-01-01T00:00:00+00:00")
}

#[test]
fn a_tickets_record_is_read_up_to_the_size_limit_and_no_further() -> TestResult {
    let f = fixture()?;
    let record = waiter_record(&f, "src");
    let limit = usize::try_from(MAX_RECORD_BYTES)?;

    // A record of exactly the limit is a waiter like any other: we may not go first.
    let (path, live) = file_ticket(f.running(), 1, &record, limit)?;
    refused_for_waiter(&f, "late", "src", "waiter")?;
    drop(live);
    fs::remove_file(&path)?;

    // One byte more is not a record: the ticket cannot be ordered against and is skipped.
    let (_path, _live) = file_ticket(f.running(), 2, &record, limit + 1)?;
    f.acquire("late", "src")?.release()?;
    Ok(())
}

#[test]
fn the_ticket_of_a_waiter_that_is_gone_is_removed_by_the_next_scan() -> TestResult {
    let f = fixture()?;
    let (stale, file) = file_ticket(f.running(), 7, &waiter_record(&f, "src"), 0)?;
    // Its waiter dies: the flock is gone, the file stays.
    drop(file);
    assert!(stale.exists());
    f.acquire("late", "src")?.release()?;
    assert_eq!(tickets(f.running())?, Vec::<String>::new());
    Ok(())
}

/// `list_locks` removes the tickets of waiters that are gone and names them; `list_locks_dry_run`
/// names the same tickets and removes nothing. A live waiter's ticket (flocked), names that
/// are not a ticket's, and a ticket's name on a symlink (to an unlocked file elsewhere) are
/// left as they are, and not named.
#[test]
fn listing_removes_and_names_the_tickets_of_waiters_that_are_gone_and_nothing_else() -> TestResult {
    let f = fixture()?;
    let (live, _held) = file_ticket(f.running(), 1, &waiter_record(&f, "docs"), 0)?;
    let (gone, file) = file_ticket(f.running(), 3, &waiter_record(&f, "src"), 0)?;
    drop(file);
    let queue = f.running().join(".queue");
    let elsewhere = tempfile::tempdir()?;
    let target = elsewhere.path().join(format!("{:020}", 4));
    fs::write(&target, "not ours")?;
    std::os::unix::fs::symlink(&target, queue.join(format!("{:020}", 4)))?;
    for other in ["5", "notes", ".00000000000000000006"] {
        fs::write(queue.join(other), other)?;
    }
    let mut before = tickets(f.running())?;
    before.sort();

    let dry_run = f.locks.list_locks_dry_run()?;
    assert_eq!(dry_run.stale_tickets(), std::slice::from_ref(&gone));
    let mut after = tickets(f.running())?;
    after.sort();
    assert_eq!(after, before, "a dry run changed the queue");

    let listing = f.locks.list_locks()?;
    assert_eq!(listing.stale_tickets(), std::slice::from_ref(&gone));
    assert!(!gone.exists(), "the gone waiter's ticket is still there");
    before.retain(|name| *name != format!("{:020}", 3));
    let mut after = tickets(f.running())?;
    after.sort();
    assert_eq!(after, before);
    assert!(live.exists());
    assert_eq!(fs::read(&target)?, b"not ours");
    assert!(listing.problems().is_empty(), "{:?}", listing.problems());

    let again = f.locks.list_locks()?;
    assert_eq!(again.stale_tickets(), [] as [PathBuf; 0]);
    Ok(())
}

/// A queue directory that is a symlink is not followed by a listing: an unlocked file with a
/// ticket's name where it points is not ours, and stays.
#[test]
fn listing_does_not_follow_a_queue_directory_that_is_a_symlink() -> TestResult {
    let f = fixture()?;
    f.init()?;
    let elsewhere = tempfile::tempdir()?;
    let unlocked = elsewhere.path().join(format!("{:020}", 1));
    fs::write(&unlocked, "not ours")?;
    std::os::unix::fs::symlink(elsewhere.path(), f.running().join(".queue"))?;
    for listing in [f.locks.list_locks_dry_run()?, f.locks.list_locks()?] {
        assert_eq!(listing.stale_tickets(), [] as [PathBuf; 0]);
    }
    assert_eq!(fs::read(&unlocked)?, b"not ours");
    Ok(())
}

#[test]
fn a_queue_that_cannot_be_listed_is_an_error_naming_it() -> TestResult {
    let f = fixture()?;
    f.init()?;
    let queue = f.running().join(".queue");
    fs::write(&queue, "not a directory")?;
    let err = expect_failure(f.acquire("a", "src"));
    assert!(err.to_string().contains(&*queue.to_string_lossy()), "{err}");
    assert_eq!(fs::read(&queue)?, b"not a directory");
    Ok(())
}

#[test]
fn a_queue_directory_that_is_a_symlink_is_refused_and_nothing_is_filed_where_it_points()
-> TestResult {
    let f = fixture()?;
    f.init()?;
    let elsewhere = tempfile::tempdir()?;
    let queue = f.running().join(".queue");
    std::os::unix::fs::symlink(elsewhere.path(), &queue)?;
    let holder = f.acquire("holder", "src")?;
    // Blocked, the waiter must take a ticket, and refuses to through the symlink. (The
    // deadline is only reached by a waiter that queued anyway.)
    let err = expect_failure(
        f.locks
            .acquire(&f.request("waiter", "src"), Duration::from_secs(10)),
    );
    assert_eq!(err.kind(), ErrorKind::NotALockFile, "{err}");
    assert!(err.to_string().contains(&*queue.to_string_lossy()), "{err}");
    assert_eq!(fs::read_dir(elsewhere.path())?.count(), 0);
    holder.release()?;
    Ok(())
}

/// The ticket number a waiter for `request` takes: it waits (for a holder the caller keeps) a
/// moment, reports its ticket when it starts waiting, and times out.
fn ticket_taken(
    f: &testing::Fixture,
    request: &LockRequest,
) -> Result<Result<Option<u64>, AcquireError>, Box<dyn std::error::Error>> {
    let mut ticket = None;
    let mut observer = |wait: &Waiting<'_>| {
        if wait.is_first() {
            ticket = wait.ticket();
        }
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    match f.locks.acquire_with(request, deadline, &mut observer) {
        Err(AcquireError::Timeout(_)) => Ok(Ok(ticket)),
        Err(err) => Ok(Err(err)),
        Ok(guard) => Err(format!("acquired past a live holder: {guard:?}").into()),
    }
}

/// Why a waiter for `request` could not take a ticket (with the cause); an error if it could.
fn no_ticket(
    f: &testing::Fixture,
    request: &LockRequest,
) -> Result<String, Box<dyn std::error::Error>> {
    match ticket_taken(f, request)? {
        Err(AcquireError::Failed(err)) => Ok(format!(
            "{err}: {}",
            err.source().map(ToString::to_string).unwrap_or_default()
        )),
        other => Err(format!("expected an error, got {other:?}").into()),
    }
}

#[test]
fn a_waiter_tries_sixty_four_numbers_after_the_last_live_ticket() -> TestResult {
    let f = fixture()?;
    let holder = f.acquire("holder", "src")?;
    // A live waiter (over another scope) holds number 1; numbers after it are taken by
    // directories, which nobody removes.
    let (_path, _live) = file_ticket(f.running(), 1, &waiter_record(&f, "docs"), 0)?;
    let queue = f.running().join(".queue");
    for number in 2..=64 {
        fs::create_dir(queue.join(format!("{number:020}")))?;
    }
    // 2 to 64 are taken: the 64th number tried, 65, is free.
    let request = f.request("waiter", "src");
    assert_eq!(ticket_taken(&f, &request)??, Some(65));
    // With 65 taken too, all 64 numbers from 2 on are: an error that says so.
    fs::create_dir(queue.join(format!("{:020}", 65)))?;
    let message = no_ticket(&f, &request)?;
    assert!(
        message.contains("64 ticket numbers from 2 on are all taken")
            && message.contains(&*queue.to_string_lossy()),
        "{message}"
    );
    holder.release()?;
    Ok(())
}

/// What a waiting thread said first: that it started waiting (with its ticket), or how it ended.
enum FirstWord {
    Waiting(Option<u64>),
    Done(Result<(), AcquireError>),
}

/// SL-15: a request whose record readers could not read back is refused when it
/// is prepared, while the scope is held: before it takes a ticket nobody can order against,
/// and before it waits for a scope it could never publish a lock for.
#[test]
fn a_request_too_large_to_record_fails_before_it_takes_a_ticket_or_waits() -> TestResult {
    let f = fixture()?;
    let holder = f.acquire("holder", "src")?;
    let mut scope = vec![f.path("src")];
    scope.extend((0..5000).map(|i| f.path(&format!("{}-{i}", "s".repeat(240)))));
    let huge = LockRequest::new("huge").scope(scope);

    // Not `expect_failure`: printing a guard or conflict of this scope would be megabytes.
    match f.locks.try_acquire(&huge) {
        Err(AcquireError::Failed(err)) => assert_eq!(err.kind(), ErrorKind::InvalidScope),
        other => {
            return Err(format!(
                "not refused: {:?}",
                other.map(drop).map_err(|e| e.to_string())
            )
            .into());
        }
    }

    let (said, first_word) = mpsc::channel();
    let locks = f.locks.clone();
    let waiter = thread::spawn(move || {
        let waiting = said.clone();
        let mut observer = |wait: &Waiting<'_>| {
            if wait.is_first() {
                let _ = waiting.send(FirstWord::Waiting(wait.ticket()));
            }
        };
        let result = locks.acquire_with(&huge, Instant::now() + PATIENCE, &mut observer);
        let _ = said.send(FirstWord::Done(result.map(drop)));
    });
    let first = first_word.recv_timeout(PATIENCE);
    // Whatever it said, let it end before judging (the holder's release ends a wait).
    holder.release()?;
    waiter.join().map_err(|_| "the waiter panicked")?;
    let err = match first {
        Ok(FirstWord::Done(Err(AcquireError::Failed(err)))) => err,
        Ok(FirstWord::Waiting(ticket)) => {
            return Err(format!(
                "it waited, holding ticket {ticket:?}, for a scope it can never publish"
            )
            .into());
        }
        Ok(FirstWord::Done(other)) => {
            return Err(
                format!("expected an error: {:?}", other.map_err(|e| e.to_string())).into(),
            );
        }
        Err(_) => return Err("the waiter said nothing within the patience".into()),
    };
    let message = err.to_string();
    assert_eq!(err.kind(), ErrorKind::InvalidScope, "{message}");
    assert!(
        message.contains("\"huge\"") && message.contains(&MAX_RECORD_BYTES.to_string()),
        "the request or the limit is not named: {message}"
    );
    assert_eq!(tickets(f.running())?, Vec::<String>::new());
    Ok(())
}

/// SL-14: a live ticket with the highest number there is leaves no number for
/// the next waiter. That is an error naming the ticket, not an overflow (a panic in a debug
/// build; in a release build number 0, ahead of everyone, or an empty range of numbers).
#[test]
fn a_live_ticket_with_the_highest_number_is_an_error_naming_it_not_an_overflow() -> TestResult {
    let f = fixture()?;
    let (path, live) = file_ticket(f.running(), u64::MAX, &waiter_record(&f, "src"), 0)?;
    assert!(path.ends_with("18446744073709551615"), "{}", path.display());
    let request = f.request("late", "src");
    let locks = f.locks.clone();
    let outcome = testing::without_hanging("a waiter behind ticket u64::MAX", move || {
        locks.acquire(&request, Duration::from_secs(5)).map(drop)
    })?;
    let err = match outcome {
        Err(AcquireError::Failed(err)) => err,
        other => return Err(format!("expected an error naming the ticket, got {other:?}").into()),
    };
    let message = err.to_string();
    assert_eq!(err.kind(), ErrorKind::Interference, "{message}");
    assert!(
        message.contains(&*path.to_string_lossy()) && message.contains("highest number"),
        "{message}"
    );
    // No ticket of the waiter's was left behind, and the live one is untouched.
    assert_eq!(tickets(f.running())?, ["18446744073709551615"]);
    assert!(flock_is_held(&path)?);

    // A ticket just below the top leaves the last numbers to try, and no more.
    drop(live);
    fs::remove_file(&path)?;
    let holder = f.acquire("holder", "src")?;
    let (_below, _live) = file_ticket(f.running(), u64::MAX - 2, &waiter_record(&f, "docs"), 0)?;
    let request = f.request("waiter", "src");
    assert_eq!(ticket_taken(&f, &request)??, Some(u64::MAX - 1));
    // With those two taken by files nobody removes, no number is left: an error that says so.
    let queue = f.running().join(".queue");
    for number in [u64::MAX - 1, u64::MAX] {
        fs::create_dir(queue.join(format!("{number:020}")))?;
    }
    let message = no_ticket(&f, &request)?;
    assert!(
        message.contains("2 ticket numbers from 18446744073709551614 on are all taken"),
        "{message}"
    );
    holder.release()?;
    Ok(())
}

#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "stands in for another process that filed a file under the waiter's number"
)]
fn a_waiter_leaving_does_not_remove_a_file_that_replaced_its_ticket() -> TestResult {
    let f = fixture()?;
    let holder = f.acquire("holder", "src")?;
    let waiter = start_waiting(&f.locks, f.request("waiter", "src"), PATIENCE)?;
    let names = tickets(f.running())?;
    let [name] = names.as_slice() else {
        return Err(format!("expected one ticket, found {names:?}").into());
    };
    // Someone removes the waiter's ticket and files their own, flocked, under its name.
    let path = f.running().join(".queue").join(name);
    fs::remove_file(&path)?;
    fs::write(&path, "theirs")?;
    let theirs = fs::File::open(&path)?;
    theirs
        .try_lock()
        .map_err(|err| format!("cannot flock {}: {err}", path.display()))?;

    holder.release()?;
    waiter.recv_timeout(PATIENCE)??.release()?;
    assert_eq!(
        fs::read(&path)?,
        b"theirs",
        "the waiter removed a file not its own"
    );
    Ok(())
}
