use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A ticket is the waiter's record with the lock name added: every reader of records
/// reads it as the record, ours reads the name back, and a name that would make it too
/// long for a record is left out rather than make the ticket unreadable.
#[test]
fn a_ticket_is_the_record_with_the_lock_name_which_is_dropped_if_too_long() -> TestResult {
    let record = LockRecord::for_new_lock(
        "gen",
        vec![PathBuf::from("/r/caf\u{e9}")],
        false,
        crate::mode::LockMode::Exclusive,
    );
    let json = ticket_json(&record, "gen/run-7");
    assert_eq!(LockRecord::from_json(json.as_bytes())?, record);
    assert_eq!(lock_name_in(json.as_bytes()).as_deref(), Some("gen/run-7"));
    assert_eq!(lock_name_in(record.to_json().as_bytes()), None);

    let long = "n".repeat(usize::try_from(MAX_RECORD_BYTES)?);
    let json = ticket_json(&record, &long);
    assert_eq!(json, record.to_json());
    Ok(())
}

/// The name is kept up to a ticket of exactly `MAX_RECORD_BYTES`, which readers still
/// read whole, and dropped one byte past it.
#[test]
fn a_lock_name_is_kept_while_the_ticket_is_at_most_a_records_limit() -> TestResult {
    let record = LockRecord::for_new_lock(
        "gen",
        vec![PathBuf::from("/r")],
        false,
        crate::mode::LockMode::Exclusive,
    );
    let unnamed = u64::try_from(ticket_json(&record, "").len())?;
    let fits = "n".repeat(usize::try_from(MAX_RECORD_BYTES - unnamed)?);
    let json = ticket_json(&record, &fits);
    assert_eq!(u64::try_from(json.len())?, MAX_RECORD_BYTES);
    assert_eq!(lock_name_in(json.as_bytes()), Some(fits.clone()));
    assert_eq!(LockRecord::from_json(json.as_bytes())?, record);

    let one_over = format!("{fits}n");
    assert_eq!(ticket_json(&record, &one_over), record.to_json());
    Ok(())
}

#[test]
fn ticket_names_sort_like_their_numbers_and_nothing_else_is_a_ticket() {
    assert_eq!(parse_number(&file_name(7)), Some(7));
    assert_eq!(parse_number(&file_name(u64::MAX)), Some(u64::MAX));
    assert!(file_name(9) < file_name(10));
    for other in [
        "7",
        "x0000000000000000007",
        ".00000000000000000007",
        "a.lock",
        "",
    ] {
        assert_eq!(parse_number(other), None, "{other:?}");
    }
}

/// A `.running/` whose queue holds the tickets `numbers` of waiters that are gone (files
/// nobody flocks), and the queue's path.
fn queue_with_dead_waiters(
    numbers: &[u64],
) -> Result<(tempfile::TempDir, PathBuf), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let queue_dir = dir.path().join(QUEUE_DIR);
    std::fs::create_dir(&queue_dir)?;
    for number in numbers {
        std::fs::write(queue_dir.join(file_name(*number)), b"{}")?;
    }
    Ok((dir, queue_dir))
}

#[test]
fn a_waiter_with_a_ticket_judges_only_the_tickets_ahead_of_its_own()
-> Result<(), Box<dyn std::error::Error>> {
    // Two tickets of waiters that are gone (no flock held), one ahead of ticket 2 and
    // one behind it.
    let (dir, queue_dir) = queue_with_dead_waiters(&[1, 3])?;
    let sentinel = SentinelGuard::lock(dir.path(), std::time::Duration::from_secs(5))?;
    let ahead = scan_ahead_of(Some(2), Stale::Clean, &sentinel)?;
    assert_eq!(ahead.stale, [queue_dir.join(file_name(1))]);
    assert!(
        queue_dir.join(file_name(3)).exists(),
        "a ticket behind the waiter's own was judged"
    );
    // A request without a ticket judges them all.
    let all = scan(Stale::Clean, &sentinel)?;
    assert_eq!(all.stale, [queue_dir.join(file_name(3))]);
    Ok(())
}

#[test]
fn a_listed_queue_judges_from_either_end_only_as_far_as_asked()
-> Result<(), Box<dyn std::error::Error>> {
    let (dir, queue_dir) = queue_with_dead_waiters(&[2, 5])?;
    let record = LockRecord::new("w", vec!["/srv".into()], 1, "t").with_flock_liveness();
    // Live tickets 1 and 4 (flocked here, through descriptors of their own), around the
    // dead waiters' 2 and 5.
    let mut held = Vec::new();
    for number in [1, 4] {
        let path = queue_dir.join(file_name(number));
        std::fs::write(&path, record.to_json())?;
        let file = File::open(&path)?;
        assert!(sys::try_lock_exclusive(&file)?);
        held.push(file);
    }
    let sentinel = SentinelGuard::lock(dir.path(), std::time::Duration::from_secs(5))?;
    let mut listed = Listed::list(Stale::Clean, &sentinel)?;
    assert!(listed.judge_lowest());
    let numbers = |listed: &Listed<'_>| -> Vec<u64> {
        listed.queue().tickets.iter().map(|t| t.number).collect()
    };
    assert_eq!(numbers(&listed), [1]);
    // The highest live ticket: 5 is judged (and removed) on the way down to 4, and 2,
    // between, is left alone.
    listed.judge_to_highest_live();
    assert_eq!(numbers(&listed), [1, 4]);
    assert_eq!(listed.unjudged_range(), Some((2, 2)));
    assert!(!queue_dir.join(file_name(5)).exists());
    assert!(queue_dir.join(file_name(2)).exists());
    assert!(listed.judge_highest() && listed.is_complete());
    assert_eq!(listed.into_queue().stale.len(), 2);
    drop(held);
    Ok(())
}
