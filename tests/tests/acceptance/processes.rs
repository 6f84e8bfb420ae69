//! Rules that need more than one process: the ancestor carve-out (S2 of the original's test
//! matrix) and `EPERM` from `kill(pid, 0)` meaning alive (L5).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::{Workers, project, worker};
use regression::attempt::AttemptProcess;
use regression::locker::Impl;
use scope_lock::testing::TestResult;
use scope_lock::{ConflictRule, LockRecord, LockRequest};

#[test]
fn a_lock_held_by_an_ancestor_does_not_block_its_descendant() -> TestResult {
    let (f, scope) = project()?;
    // This test process is the ancestor: it holds a singleton over the scope.
    let guard = f.locks.try_acquire(
        &LockRequest::new("outer")
            .scope([scope.as_str()])
            .singleton(true),
    )?;

    // Its child, a nested loop, asks for the same scope and the same singleton name.
    let mut child = f.spawn_attempt(
        Impl::Fixed,
        "outer",
        &scope,
        &["--singleton", "--instance", "outer-nested"],
    )?;
    let said = child.go()?;
    assert!(
        said.starts_with("held"),
        "the ancestor's lock blocked its child: {said}"
    );
    assert_eq!(child.release()?, "released");
    guard.release()?;
    Ok(())
}

#[test]
fn a_lock_held_by_a_child_blocks_its_parent_and_siblings() -> TestResult {
    let (f, scope) = project()?;
    let mut holder = f.spawn_attempt(Impl::Fixed, "single", &scope, &["--singleton"])?;
    assert!(holder.go()?.starts_with("held"));

    // The parent (this process) is not a descendant of the holder: blocked.
    let other_path = f.path("elsewhere");
    let err = f
        .locks
        .try_acquire(
            &LockRequest::new("single")
                .instance_id("single-2")
                .scope([other_path.as_str()])
                .singleton(true),
        )
        .map(|_| ())
        .unwrap_err();
    let conflict = err.conflict().ok_or("expected a conflict")?;
    assert_eq!(conflict.rule(), &ConflictRule::Singleton);
    assert_eq!(conflict.holder().map(LockRecord::pid), Some(holder.pid()));

    // A sibling process is not a descendant either.
    let mut sibling = f.spawn_attempt(
        Impl::Fixed,
        "single",
        &other_path,
        &["--singleton", "--instance", "single-3"],
    )?;
    let said = sibling.go()?;
    assert!(said.starts_with("conflict"), "{said}");
    assert!(said.contains("singleton"), "{said}");
    sibling.release()?;
    assert_eq!(holder.release()?, "released");
    Ok(())
}

/// An original-format lock (no flock) whose pid belongs to another user's live process must be
/// kept: `kill(pid, 0)` answers `EPERM`, which means alive. As an ordinary user, pid 1 is such
/// a process; as root (CI containers), a worker drops to `nobody` and looks at a root process
/// that is not its ancestor (an idle worker), so the ancestor rule cannot be what keeps it.
#[test]
fn eperm_from_kill_means_the_holder_is_alive() -> TestResult {
    let (f, scope) = project()?;
    let is_root = rustix::process::geteuid().is_root();
    let idle_root_process = if is_root {
        let elsewhere = f.root.join("idle");
        Some(AttemptProcess::spawn(
            worker(),
            Impl::Fixed,
            &f.root.join("idle-loops"),
            "idle",
            &elsewhere.to_string_lossy(),
            Vec::<String>::new(),
        )?)
    } else {
        None
    };
    let holder_pid = idle_root_process.as_ref().map_or(1, AttemptProcess::pid);
    let record = LockRecord::new(
        "other-user",
        vec![scope.clone()],
        holder_pid,
        "2026-01-01T00:00:00+00:00",
    );
    let lock_file = f.write_lock_file("other-user", record.to_json().as_bytes())?;

    if !is_root {
        let conflict = f
            .locks
            .find_conflict(&LockRequest::new("me").scope([scope.as_str()]))?
            .ok_or("an EPERM holder was taken for dead")?;
        assert_eq!(conflict.lock_path(), lock_file);
    } else {
        for path in [&f.root, &f.loops_dir(), f.running(), Path::new(&scope)] {
            fs::set_permissions(path, fs::Permissions::from_mode(0o777))?;
        }
        let mut nobody = f.spawn_attempt(Impl::Fixed, "me", &scope, &["--as-uid", "65534"])?;
        let said = nobody.go()?;
        assert!(
            said.starts_with("conflict") && said.contains("other-user"),
            "an EPERM holder was taken for dead: {said}"
        );
        nobody.release()?;
    }
    drop(idle_root_process);
    assert!(lock_file.exists(), "a live holder's lock file was deleted");
    Ok(())
}
