//! Uncontended costs: acquire+release and `list_locks` beside held locks (P1, P2), against
//! scope sizes (P5), and bare cycles for `strace`.

use std::path::Path;
use std::process::Command;

use regression::pre_fix::PreFixLockManager;
use scope_lock::{LockManager, LockRequest};
use serde_json::{Value, json};

use crate::floor::{self, LADDER, Rung};
use crate::holder::{Arena, Holder};
use crate::measure::{Op, Plan, Samples, interleaved};
use crate::run::Shape;
use crate::{child_json, err};

/// P1 and P2: acquire+release and `list_locks` while another process holds N live locks.
/// Returns the rows and the peak RSS of `list_locks` over the largest count.
pub(crate) fn held_locks(
    exe: &Path,
    work: &Path,
    shape: &Shape,
    cli: Option<&Path>,
) -> Result<(Vec<Value>, Value), String> {
    let arena = Arena::new(work, "p2")?;
    let mut holder = Holder::spawn(exe, &arena.running_dir, &arena.root, 1)?;
    let scope = vec![format!("{}/ours/p0", arena.root.display())];
    let locks = LockManager::new(&arena.loops_dir);
    let request = LockRequest::new("bench-ours").scope(scope.clone());
    let pre_fix = PreFixLockManager::new(&arena.loops_dir);
    let mut rows = Vec::new();
    for &count in &shape.held_counts {
        holder.grow(count)?;
        let plan = if count >= 10_000 {
            Plan {
                rounds: shape.big_rounds,
                ..shape.plan
            }
        } else {
            shape.plan
        };
        let mut cycle: Vec<Op<'_>> = vec![
            Box::new(|| ours_cycle(&locks, &request)),
            Box::new(|| floor_cycle(&arena.running_dir, "bench-floor", &scope)),
            Box::new(|| {
                if !pre_fix.acquire("bench-pre-fix", &scope).map_err(err)? {
                    return Err("the pre-fix port refused a free scope".into());
                }
                pre_fix.release("bench-pre-fix").map_err(err)
            }),
        ];
        // The ladder: the floor plus each guarantee it leaves out, one rung at a time.
        for rung in LADDER {
            let (running_dir, scope) = (&arena.running_dir, &scope);
            cycle.push(Box::new(move || {
                rung_cycle(rung, running_dir, "bench-floor", scope)
            }));
        }
        let mut measured = interleaved(plan, &mut cycle)?;
        drop(cycle);
        let rungs = measured.split_off(3);
        let [ours, floor, pre] = three(measured)?;
        // In the ladder's order, lowest rung first.
        let ladder: Vec<Value> = LADDER
            .iter()
            .zip(&rungs)
            .map(|(rung, samples)| {
                let mut timing = samples.to_json();
                timing["rung"] = json!(rung.name());
                timing
            })
            .collect();
        let mut list: Vec<Op<'_>> = vec![
            Box::new(|| {
                let listing = locks.list_locks().map_err(err)?;
                expect_count("list_locks", listing.locks().len(), count)
            }),
            Box::new(|| {
                let live = floor::list(&arena.running_dir).map_err(err)?;
                expect_count("the floor's list", live.len(), count)
            }),
        ];
        let [list_ours, list_floor] = two(interleaved(plan, &mut list)?)?;
        eprintln!(
            "  {count:>5} held: acquire+release ours {:.1} µs, floor {:.1} µs, pre-fix {:.1} µs; \
             list ours {:.1} µs, floor {:.1} µs",
            ours.best(),
            floor.best(),
            pre.best(),
            list_ours.best(),
            list_floor.best()
        );
        rows.push(json!({
            "held": count,
            "acquire_release": {"ours": ours.to_json(), "floor": floor.to_json(), "pre_fix": pre.to_json(), "ladder": ladder},
            "list_locks": {"ours": list_ours.to_json(), "floor": list_floor.to_json()},
        }));
    }
    let mut list_rss = child_json(
        Command::new(exe)
            .arg("rss-list")
            .arg("--root")
            .arg(&arena.root),
    )?;
    if let Some(cli) = cli {
        let measured = child_json(
            Command::new(exe)
                .arg("rss-cli")
                .arg("--cli")
                .arg(cli)
                .arg("--root")
                .arg(&arena.root),
        )?;
        list_rss["cli_peak_rss_kib"] = measured["peak_rss_kib"].clone();
    }
    holder.finish()?;
    Ok((rows, list_rss))
}

pub(crate) fn ours_cycle(locks: &LockManager, request: &LockRequest) -> Result<(), String> {
    locks
        .try_acquire(request)
        .map_err(|e| e.to_string())?
        .release()
        .map_err(err)
}

pub(crate) fn floor_cycle(running_dir: &Path, name: &str, scope: &[String]) -> Result<(), String> {
    rung_cycle(Rung::Floor, running_dir, name, scope)
}

/// One cycle of the floor with the guarantees of the ladder up to `rung`.
pub(crate) fn rung_cycle(
    rung: Rung,
    running_dir: &Path,
    name: &str,
    scope: &[String],
) -> Result<(), String> {
    match floor::acquire_at(rung, running_dir, name, scope).map_err(err)? {
        Ok(guard) => floor::release_at(rung, running_dir, guard).map_err(err),
        Err(blocker) => Err(format!(
            "the floor ({}) was refused by {}",
            rung.name(),
            blocker.display()
        )),
    }
}

pub(crate) fn expect_count(what: &str, got: usize, want: usize) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what} saw {got} live locks, expected {want}"))
    }
}

/// P5: acquire+release with scopes of 1, 10 and 100 paths against holders of 1, 10 and 100
/// paths each (never overlapping, so every entry is compared).
pub(crate) fn scope_size(exe: &Path, work: &Path, shape: &Shape) -> Result<Vec<Value>, String> {
    let mut rows = Vec::new();
    for &theirs in &shape.p5_sizes {
        let arena = Arena::new(work, &format!("p5-{theirs}"))?;
        let mut holder = Holder::spawn(exe, &arena.running_dir, &arena.root, theirs)?;
        holder.grow(shape.p5_holders)?;
        let locks = LockManager::new(&arena.loops_dir);
        for &ours_paths in &shape.p5_sizes {
            let scope: Vec<String> = (0..ours_paths)
                .map(|j| format!("{}/ours/p{j}", arena.root.display()))
                .collect();
            let request = LockRequest::new("bench-ours").scope(scope.clone());
            let mut ops: Vec<Op<'_>> = vec![
                Box::new(|| ours_cycle(&locks, &request)),
                Box::new(|| floor_cycle(&arena.running_dir, "bench-floor", &scope)),
            ];
            let [ours, floor] = two(interleaved(shape.p5_plan, &mut ops)?)?;
            eprintln!(
                "  {ours_paths:>3} paths vs {} holders of {theirs:>3}: ours {:.1} µs, floor {:.1} µs",
                shape.p5_holders,
                ours.best(),
                floor.best()
            );
            rows.push(json!({
                "ours_paths": ours_paths,
                "holder_paths": theirs,
                "holders": shape.p5_holders,
                "ours": ours.to_json(),
                "floor": floor.to_json(),
            }));
        }
        holder.finish()?;
    }
    Ok(rows)
}

/// `count` uncontended acquire+release cycles, ours or the floor's, in `<root>/.loops`: what
/// `strace -c` counts per cycle (run it at two counts and take the difference).
pub(crate) fn cycles(side: &str, root: &Path, count: u64) -> Result<(), String> {
    let scope = vec![format!("{}/ours/p0", root.display())];
    let loops = root.join(".loops");
    let running_dir = loops.join(".running");
    let locks = LockManager::new(&loops);
    let request = LockRequest::new("cycles").scope(scope.clone());
    let rung = match side {
        "ours" => None,
        other => Some(Rung::parse(other).ok_or_else(|| {
            format!("--side {other:?}: expected ours, floor, or floor+ one of normalise, sentinel, queue, token")
        })?),
    };
    for _ in 0..count {
        match rung {
            None => ours_cycle(&locks, &request)?,
            Some(rung) => rung_cycle(rung, &running_dir, "cycles", &scope)?,
        }
    }
    Ok(())
}

fn two(samples: Vec<Samples>) -> Result<[Samples; 2], String> {
    <[Samples; 2]>::try_from(samples).map_err(|_| "expected two contenders".to_owned())
}

pub(crate) fn three(samples: Vec<Samples>) -> Result<[Samples; 3], String> {
    <[Samples; 3]>::try_from(samples).map_err(|_| "expected three contenders".to_owned())
}
