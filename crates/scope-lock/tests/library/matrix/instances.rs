//! M1-M3: several instances of one loop.

use scope_lock::LockRequest;
use scope_lock::testing::{TestResult, expect_conflict, fixture};

use super::assert_overlap;

#[test]
fn one_loop_with_distinct_instance_ids_gets_distinct_lock_files_and_leaves_none() -> TestResult {
    let f = fixture()?;
    let request = |id: &str| {
        f.request("worker", &format!(".loops/runs/{id}"))
            .instance_id(id)
    };
    assert_ne!(
        f.locks.lock_path(&request("worker-1")),
        f.locks.lock_path(&request("worker-2"))
    );
    let first = f.locks.try_acquire(&request("worker-1"))?;
    assert_eq!(first.path(), f.running().join("worker-1.lock"));
    first.release()?;
    let second = f.locks.try_acquire(&request("worker-2"))?;
    assert_eq!(second.path(), f.running().join("worker-2.lock"));
    second.release()?;
    assert!(f.lock_files()?.is_empty());
    Ok(())
}

#[test]
fn one_loop_with_disjoint_run_directories_runs_twice_but_with_the_project_scope_once() -> TestResult
{
    let f = fixture()?;
    let run = |id: &str, scope: String| {
        f.locks.try_acquire(
            &LockRequest::new("worker")
                .scope([scope])
                .instance_id(format!("worker-{id}")),
        )
    };
    let a = run("a", f.path(".loops/runs/a"))?;
    let b = run("b", f.path(".loops/runs/b"))?;
    assert_eq!(f.lock_files()?.len(), 2);
    a.release()?;
    b.release()?;

    let whole = run("c", f.path("."))?;
    assert_eq!(
        whole.record().scope(),
        [f.root.to_string_lossy().into_owned()]
    );
    let conflict = expect_conflict(run("d", f.path(".")));
    assert_eq!(conflict.holder(), Some(whole.record()));
    Ok(())
}

#[test]
fn instances_sharing_a_path_exclude_each_other_but_their_own_run_dirs_do_not() -> TestResult {
    let f = fixture()?;
    let instance = |id: &str, rel: &[&str]| {
        let scope: Vec<String> = rel.iter().map(|r| f.path(r)).collect();
        f.locks
            .try_acquire(&LockRequest::new("issues").scope(scope).instance_id(id))
    };
    let a = instance("issues-a", &[".issues/", ".loops/runs/a"])?;
    let conflict = expect_conflict(instance("issues-b", &[".issues/", ".loops/runs/b"]));
    assert_overlap(&f, &conflict, ".issues", ".issues");
    let b = instance("issues-b", &[".loops/runs/b"])?;
    assert_eq!(f.lock_files()?.len(), 2);
    a.release()?;
    b.release()?;
    Ok(())
}
