//! `scope-lock break`: the supported way out when a holder is stuck.
//!
//! Without `--kill` it shows the lock and the processes that provably hold it. With `--kill` it
//! signals those holders, and only those (see [`holders`] for what proves one, and which may
//! not be signalled whatever they hold): SIGTERM to the topmost (a `scope-lock run`, which
//! passes it on to its CMD), then, if the lock is still held after the grace period, SIGKILL to
//! every holder that may be signalled, and waits, for at most the grace period again, until the
//! lock is free. The pid a lock file names is never signalled for being named: a file can name
//! any process. Freeing the lock is left to the holders' deaths: the flock ends with the last
//! of them, and the next scan reclaims the file. Nothing here removes a lock file itself.
//!
//! On etcd, `break` shows the lock (its key, host, pid, token and lease) and nothing more: its
//! holder may be on another machine, where no process can be proven or signalled from here,
//! and deleting its key would let someone else in while it still works. It ends when its
//! holder is stopped on its host (where `scope-lock run` passes SIGTERM on to CMD), or when the
//! holder stops renewing its lease for a TTL.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use scope_lock::etcd::EtcdLockManager;
use scope_lock::{LiveLock, Liveness, LockManager};

use crate::backend::{Backend, locks_prefix};
use crate::cli::BreakArgs;
use crate::exit::{self, Failure};
use crate::holders::{self, Holder, Holders, LockFile, Sent};
use crate::output::{self, BreakJson};

/// How often to look again whether the lock is free.
const POLL: Duration = Duration::from_millis(100);

pub(crate) fn brk(backend: &Backend, args: &BreakArgs) -> Result<u8, Failure> {
    let path = match backend {
        Backend::Local { manager, .. } => {
            manager.lock_path(&scope_lock::LockRequest::new(&args.name))
        }
        Backend::Etcd(manager) => locks_prefix(manager).join(&args.name),
    };
    let mut report = Report {
        json: args.json.then(|| BreakJson::new(&args.name, &path)),
    };
    let result = match backend {
        Backend::Local { manager, .. } => break_lock(manager, args, &mut report),
        Backend::Etcd(manager) => show_key(manager, args, &mut report),
    };
    match report.json {
        None => result,
        Some(mut json) => {
            let status = match result {
                Ok(status) => status,
                Err(failure) => {
                    json.failed(&failure);
                    failure.status
                }
            };
            output::print_json(&json)?;
            Ok(status)
        }
    }
}

/// What `break` says: each line printed as it happens, or with --json gathered, with what the
/// lines are about, into one document printed at the end.
struct Report {
    json: Option<BreakJson>,
}

impl Report {
    fn say(&mut self, line: String) {
        match &mut self.json {
            None => println!("{line}"),
            Some(json) => json.lines.push(line),
        }
    }

    fn json(&mut self, record: impl FnOnce(&mut BreakJson)) {
        if let Some(json) = &mut self.json {
            record(json);
        }
    }
}

/// `break` on etcd: shows the lock; `--kill` and `--force` are refused, saying what to do.
fn show_key(
    manager: &EtcdLockManager,
    args: &BreakArgs,
    report: &mut Report,
) -> Result<u8, Failure> {
    let listing = manager.list_locks()?;
    let Some(lock) = listing
        .locks()
        .iter()
        .find(|lock| lock.lock_name() == args.name)
    else {
        return Err(Failure::new(
            exit::FAILURE,
            format!(
                "no live lock named `{}` on etcd (project {})",
                args.name,
                manager.config().project()
            ),
        ));
    };
    report.json(|json| json.etcd_lock(lock));
    let record = lock.record();
    report.say(format!(
        "{}: {}, host {}, token {}, lease {:x}, scope {}",
        lock.key(),
        output::describe_holder(lock.lock_name(), record),
        lock.host(),
        lock.token(),
        lock.lease(),
        record.scope().join(" "),
    ));
    if args.kill || args.force {
        return Err(Failure::new(
            exit::FAILURE,
            format!(
                "on etcd, --kill and --force are not done from here: the holder runs on host {} \
                 as pid {}, where `kill {}` stops it (a `scope-lock run` passes SIGTERM on to \
                 CMD and then releases); otherwise the lock ends once its lease goes unrenewed \
                 for a TTL",
                lock.host(),
                record.pid(),
                record.pid()
            ),
        ));
    }
    Ok(exit::SUCCESS)
}

fn break_lock(manager: &LockManager, args: &BreakArgs, report: &mut Report) -> Result<u8, Failure> {
    let running_dir = manager.running_dir();
    let request = scope_lock::LockRequest::new(&args.name);
    let path = manager.lock_path(&request);
    if args.force {
        let moved_to = manager.set_aside_invalid(&request)?;
        report.say(format!(
            "{}: moved aside to {}",
            path.display(),
            moved_to.display()
        ));
        report.json(|json| json.moved_aside(&moved_to));
        return Ok(exit::SUCCESS);
    }
    let listing = manager.list_locks()?;
    if listing.reclaimed().iter().any(|p| p == &path) {
        report.say(format!(
            "{}: its holder was gone; reclaimed",
            path.display()
        ));
        report.json(|json| json.outcome = "reclaimed");
        return Ok(exit::SUCCESS);
    }
    let Some(lock) = listing.locks().iter().find(|l| l.path() == path) else {
        if let Some(problem) = listing.problems().iter().find(|p| p.path() == path) {
            // The problem says what can be done about it; no process can be shown or stopped.
            return Err(Failure::new(
                exit::FAILURE,
                format!("{problem}. No holder to show or stop"),
            ));
        }
        return Err(Failure::new(
            exit::FAILURE,
            format!(
                "no live lock named `{}` in {}",
                args.name,
                running_dir.display()
            ),
        ));
    };
    let record = lock.record();
    report.say(format!(
        "{}: {}, liveness {}, scope {}",
        path.display(),
        output::describe_holder(lock.lock_name(), record),
        lock.liveness(),
        record.scope().join(" "),
    ));
    report.json(|json| json.lock(lock));
    let file = LockFile::at(&path).map_err(|err| {
        Failure::new(
            exit::FAILURE,
            format!("cannot stat {}: {}", path.display(), exit::os_reason(&err)),
        )
    })?;
    let found = holders::find(&file).map_err(|why| no_holder(lock, &why))?;
    for holder in &found.holders {
        report.say(describe(holder));
        report.json(|json| json.holder(holder));
    }
    let topmost: Vec<u32> = found.topmost().map(|h| h.pid).collect();
    if topmost.is_empty() {
        let failure = no_holder(lock, &why_none(&found));
        if !args.kill {
            // Showing the lock succeeded; what stands in the way of --kill is said all the same.
            report.say(failure.message);
            return Ok(exit::SUCCESS);
        }
        return Err(failure);
    }
    if !args.kill {
        report.say(format!(
            "to stop it: scope-lock break {} --kill (SIGTERM to {}, SIGKILL to every holder \
             after {}s)",
            args.name,
            pids(&topmost),
            args.grace
        ));
        return Ok(exit::SUCCESS);
    }
    let grace = Duration::from_secs(args.grace);
    send(&topmost, &file, Signal::TERM, "SIGTERM", report)?;
    if wait_until_free(manager, lock, grace)? {
        report.say(format!("{}: free", path.display()));
        report.json(|json| json.outcome = "freed");
        return Ok(exit::SUCCESS);
    }
    // Every holder now, CMDs and whatever else inherited the descriptor included.
    let remaining = holders::find(&file).map_err(|why| no_holder(lock, &why))?;
    let all: Vec<u32> = remaining.signallable().map(|h| h.pid).collect();
    send(&all, &file, Signal::KILL, "SIGKILL", report)?;
    if wait_until_free(manager, lock, grace)? {
        report.say(format!("{}: free", path.display()));
        report.json(|json| json.outcome = "freed");
        return Ok(exit::SUCCESS);
    }
    let left = holders::find(&file).unwrap_or_default();
    if left.holders.is_empty() {
        // What keeps it now is no flock: the original's rule, a pid that is alive.
        let why = "no process holds its flock any more, yet it is still live";
        let now = current(manager, &path)?;
        return Err(no_holder(now.as_ref().unwrap_or(lock), why));
    }
    let who: Vec<String> = left.holders.iter().map(describe).collect();
    Err(Failure::new(
        exit::FAILURE,
        format!(
            "{} is still held {}s after SIGKILL:\n{}",
            path.display(),
            args.grace,
            who.join("\n")
        ),
    ))
}

/// The live lock at `path` now, if any.
fn current(manager: &LockManager, path: &Path) -> Result<Option<LiveLock>, Failure> {
    let listing = manager.list_locks()?;
    Ok(listing.locks().iter().find(|l| l.path() == path).cloned())
}

/// Sends `signal` to each of `targets` that still provably holds the lock, saying so.
fn send(
    targets: &[u32],
    file: &LockFile,
    signal: Signal,
    name: &'static str,
    report: &mut Report,
) -> Result<(), Failure> {
    for &pid in targets {
        let sent =
            holders::signal(pid, file, signal).map_err(|why| Failure::new(exit::FAILURE, why))?;
        report.say(match &sent {
            Sent::Signalled => format!("sent {name} to pid {pid}"),
            Sent::Gone => format!("pid {pid} let the lock go before {name}"),
            Sent::Refused(why) => format!("not signalling pid {pid}: {why}"),
        });
        report.json(|json| json.signal(pid, name, &sent));
    }
    Ok(())
}

/// One line about a holder: its pid, its name, and why it may not be signalled.
fn describe(holder: &Holder) -> String {
    match &holder.refusal {
        None => format!("held by pid {} ({})", holder.pid, holder.name),
        Some(why) => format!(
            "held by pid {} ({}), which will not be signalled: {why}",
            holder.pid, holder.name
        ),
    }
}

/// Why no holder may be signalled, given what was found.
fn why_none(found: &Holders) -> String {
    if !found.holders.is_empty() {
        return "every process that holds it is one that must not be signalled (above)".to_owned();
    }
    let mut why = "no process this command can see holds its flock".to_owned();
    if found.unseen > 0 {
        why.push_str(&format!(
            " ({} processes of other users could not be looked into; root can)",
            found.unseen
        ));
    }
    why
}

/// The refusal to signal anyone, saying why (`why`) and what to do instead.
fn no_holder(lock: &LiveLock, why: &str) -> Failure {
    let path = lock.path().display();
    let pid = lock.record().pid();
    let advice = match lock.liveness() {
        Liveness::Pid => format!(
            "It is a lock of little-loops, which holds no flock: nothing proves that pid {pid}, \
             which its file names, is its holder (a file can name any process). Stop the loop \
             with little-loops' own tools, or, once you have checked that pid {pid} is that \
             loop, kill it yourself; the next scan then reclaims {path}"
        ),
        _ => format!(
            "To free it, stop its holder where it runs (in its own pid namespace, as its own user or root), \
             or by hand once you have checked it; the pid the file names ({pid}) proves nothing, \
             since a file can name any process. When the holder has ended, the next scan \
             reclaims {path}"
        ),
    };
    Failure::new(
        exit::FAILURE,
        format!("no holder of {path} that may be signalled: {why}. {advice}"),
    )
}

fn pids(pids: &[u32]) -> String {
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    match list.as_slice() {
        [one] => format!("pid {one}"),
        _ => format!("pids {}", list.join(", ")),
    }
}

/// Polls until no live lock at `lock`'s path has `lock`'s record, for at most `limit`.
fn wait_until_free(
    manager: &LockManager,
    lock: &LiveLock,
    limit: Duration,
) -> Result<bool, Failure> {
    let deadline = Instant::now() + limit;
    loop {
        if !still_held(manager, lock.path(), lock)? {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        thread::sleep(POLL.min(deadline - now));
    }
}

fn still_held(manager: &LockManager, path: &Path, lock: &LiveLock) -> Result<bool, Failure> {
    let listing = manager.list_locks()?;
    Ok(listing
        .locks()
        .iter()
        .any(|l| l.path() == path && l.record() == lock.record()))
}
