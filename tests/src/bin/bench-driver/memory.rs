//! Peak resident sets: an idle process, a holder of one lock, `list_locks` and the command's
//! `list` over many locks.

use std::path::Path;
use std::process::Command;

use scope_lock::{LockManager, LockRequest};
use serde_json::{Value, json};

use crate::holder::Arena;
use crate::{child_json, err, print_json};

/// Peak resident sets: a process doing nothing, a process holding one lock, and `list_locks`
/// over the most locks P2 held.
pub(crate) fn memory(exe: &Path, work: &Path, list: Value) -> Result<Value, String> {
    let arena = Arena::new(work, "rss")?;
    let idle = child_json(Command::new(exe).arg("rss-idle"))?;
    let hold = child_json(
        Command::new(exe)
            .arg("rss-hold")
            .arg("--root")
            .arg(&arena.root),
    )?;
    Ok(json!({
        "idle_process_kib": idle["peak_rss_kib"],
        "one_lock_holder_kib": hold["peak_rss_kib"],
        "list_locks_kib": list["peak_rss_kib"],
        "list_locks_count": list["locks"],
        "cli_list_kib": list["cli_peak_rss_kib"],
    }))
}

/// Runs `scope-lock list` over `<root>/.loops` as our only child and reports its peak RSS
/// (`getrusage(RUSAGE_CHILDREN)` covers exactly the children reaped so far: this one).
pub(crate) fn rss_cli(cli: &Path, root: &Path) -> Result<(), String> {
    let status = Command::new(cli)
        .arg("--loops-dir")
        .arg(root.join(".loops"))
        .arg("list")
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("running {}: {e}", cli.display()))?;
    if !status.success() {
        return Err(format!("{} list exited with {status}", cli.display()));
    }
    print_json(&json!({"peak_rss_kib": children_peak_rss_kib()}))
}

/// The largest peak resident set of the children reaped so far, KiB.
#[allow(unsafe_code)]
pub(crate) fn children_peak_rss_kib() -> Option<u64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole `rusage` into the buffer we own, or fails and writes
    // nothing; we read it only on success, and all-zero bytes are a valid `rusage` anyway.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) != 0 {
            return None;
        }
        usage.assume_init()
    };
    let max = u64::try_from(usage.ru_maxrss).ok()?;
    // Linux reports KiB; macOS, bytes.
    Some(if cfg!(target_os = "macos") {
        max / 1024
    } else {
        max
    })
}

pub(crate) fn rss_hold(root: &Path) -> Result<(), String> {
    let locks = LockManager::new(root.join(".loops"));
    let scope = format!("{}/ours/p0", root.display());
    let guard = locks
        .try_acquire(&LockRequest::new("rss").scope([scope]))
        .map_err(|e| e.to_string())?;
    let peak = peak_rss_kib()?;
    guard.release().map_err(err)?;
    print_json(&json!({"peak_rss_kib": peak}))
}

pub(crate) fn rss_list(root: &Path) -> Result<(), String> {
    let listing = LockManager::new(root.join(".loops"))
        .list_locks()
        .map_err(err)?;
    print_json(&json!({"peak_rss_kib": peak_rss_kib()?, "locks": listing.locks().len()}))
}

/// `bench-driver rss-idle`: the peak resident set of a process that does nothing.
pub(crate) fn rss_idle() -> Result<(), String> {
    print_json(&json!({"peak_rss_kib": peak_rss_kib()?}))
}

/// This process's peak resident set (`VmHWM`), KiB; `None` where there is no `/proc` (the
/// report says null).
fn peak_rss_kib() -> Result<Option<u64>, String> {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return Ok(None);
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .map(Some)
        .ok_or_else(|| "no VmHWM line in /proc/self/status".to_owned())
}
