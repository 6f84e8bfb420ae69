//! The two kinds of process a fleet runs (`regression::fleet`): lockers that `cycle` through
//! holds under a witness, and `scan`ners that read every lock file as the original's status
//! tools do, without any lock.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use regression::args::Args;
use regression::locker::{Attempt, Locker};
use regression::original_reader;
use regression::probe::{Probe, probe};
use regression::witness::Witness;
use scope_lock::LockMode;
use serde_json::json;

use crate::{ready_then_wait_for_start, say, which};

/// `--cycles` times or until `--deadline-ms`: acquire (trying again on conflict), witness,
/// probe, release. A cycle is one hold; the attempts it took are counted too.
pub(crate) fn cycle(args: &Args) -> Result<(), String> {
    let locker = Locker::new(which(args)?, &args.path("loops-dir")?);
    let name = args.get("name")?;
    let scope = vec![args.get("scope")?.to_owned()];
    let cycles = args.number("cycles")?;
    let deadline = Duration::from_millis(args.number("deadline-ms")?);
    let worker = u32::try_from(args.number("worker")?).map_err(|err| err.to_string())?;
    let mut witness = Witness::open(&args.path("witness")?, worker)
        .map_err(|err| format!("witness log: {err}"))?;
    let with_probe = args.flag("probe");
    let (mode, together) = if args.flag("shared") {
        witness = witness.shared();
        let readers = args.number("readers")?;
        (
            LockMode::Shared,
            Some((args.path("together-dir")?, readers)),
        )
    } else {
        (LockMode::Exclusive, None)
    };

    ready_then_wait_for_start()?;
    let started = Instant::now();
    let mut counts = CycleCounts::default();
    'cycles: for cycle in 0..cycles {
        let held = loop {
            if started.elapsed() > deadline {
                break 'cycles;
            }
            counts.attempts += 1;
            match locker.try_acquire_in(name, &scope, mode) {
                Attempt::Held(held) => break held,
                Attempt::Conflict => {
                    counts.conflicts += 1;
                    // Give the holder the processor rather than spinning against it.
                    std::thread::yield_now();
                }
                Attempt::Failed(message) => {
                    counts.error(false, message);
                    continue 'cycles;
                }
            }
        };
        counts.cycles += 1;
        witness
            .enter(cycle, held.token())
            .map_err(|err| err.to_string())?;
        if let (0, Some((dir, readers))) = (cycle, &together) {
            hold_until_all_readers_hold(dir, worker, *readers, started + deadline)?;
        }
        if with_probe {
            counts.probes += 1;
            // Missing counts too: a lock file someone deleted under us holds nothing.
            if probe(held.path()).map_err(|err| err.to_string())? != Probe::Held {
                counts.unheld_probes += 1;
            }
        }
        witness.exit(cycle).map_err(|err| err.to_string())?;
        if let Err(failure) = locker.release(held) {
            counts.error(failure.not_found, failure.to_string());
        }
    }
    say(&json!({
        "cycles": counts.cycles,
        "holds": counts.cycles,
        "attempts": counts.attempts,
        "conflicts": counts.conflicts,
        "not_found_on_release": counts.not_found,
        "other_errors": counts.errors,
        "first_error": counts.first_error,
        "probes": counts.probes,
        "unheld_probes": counts.unheld_probes,
    })
    .to_string())
}

/// Says that reader `worker` holds (a file in `dir`), then waits, holding, until `readers`
/// readers have said so, or fails at `deadline`: if shared locks were exclusive, no second
/// reader could get in while the first one waits here.
fn hold_until_all_readers_hold(
    dir: &Path,
    worker: u32,
    readers: u64,
    deadline: Instant,
) -> Result<(), String> {
    fs::write(dir.join(worker.to_string()), b"").map_err(|err| format!("{dir:?}: {err}"))?;
    loop {
        let holding = fs::read_dir(dir)
            .map_err(|err| format!("{dir:?}: {err}"))?
            .count() as u64;
        if holding >= readers {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "readers never held together: {holding} of {readers} held at once"
            ));
        }
        // Polled: the other readers' files are what ends the wait, and they come within an
        // acquire or two.
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[derive(Default)]
struct CycleCounts {
    cycles: u64,
    attempts: u64,
    conflicts: u64,
    not_found: u64,
    errors: u64,
    first_error: Option<String>,
    probes: u64,
    unheld_probes: u64,
}

impl CycleCounts {
    fn error(&mut self, not_found: bool, message: String) {
        if not_found {
            self.not_found += 1;
        } else {
            self.errors += 1;
        }
        self.first_error.get_or_insert(message);
    }
}

/// Reads every lock file, without any lock, as the original's status tools do, and counts the
/// reads the original's reader would reject.
pub(crate) fn scan(args: &Args) -> Result<(), String> {
    let running_dir = args.path("running-dir")?;
    let stop_file = args.path("stop-file")?;
    let max_scans = args.number("max-scans")?;
    let deadline = Duration::from_millis(args.number("deadline-ms")?);

    ready_then_wait_for_start()?;
    let started = Instant::now();
    let (mut scans, mut reads, mut partial, mut errors) = (0u64, 0u64, 0u64, 0u64);
    let mut first_partial: Option<String> = None;
    while scans < max_scans && started.elapsed() < deadline && !stop_file.exists() {
        scans += 1;
        let Ok(entries) = fs::read_dir(&running_dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !name.ends_with(".lock") {
                continue;
            }
            match fs::read(entry.path()) {
                Ok(bytes) => {
                    reads += 1;
                    if let Err(why) = original_reader::parse(&bytes) {
                        partial += 1;
                        first_partial.get_or_insert_with(|| {
                            format!("{why} in {:?}", String::from_utf8_lossy(&bytes))
                        });
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(_) => errors += 1,
            }
        }
    }
    say(&json!({
        "scans": scans,
        "reads": reads,
        "partial_reads": partial,
        "first_partial": first_partial,
        "errors": errors,
    })
    .to_string())
}
