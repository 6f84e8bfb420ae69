//! Property tests of the record reader and of scope normalisation: whatever the
//! input, no panic; every record we write reads back equal; normalised scopes are absolute,
//! free of `.` and `..`, and normalising again changes nothing.
//!
//! 10,000 cases in all by default; with `SCOPE_LOCK_SOAK=1` (`cargo xtask verify --soak`) a
//! hundred times more, 1,000,000 (plus the library's own round trip of paths, 1,000 and
//! 100,000).

use std::path::Component;

use proptest::prelude::*;
use proptest::test_runner::Config;
use scope_lock::{LockRecord, normalize_path_in, paths_overlap};

/// `cases` by default, a hundred times more when soaking.
fn config(cases: u32) -> Config {
    let soak = std::env::var("SCOPE_LOCK_SOAK").is_ok_and(|v| v == "1");
    Config {
        cases: if soak { cases * 100 } else { cases },
        failure_persistence: None,
        ..Config::default()
    }
}

/// Text that looks like a lock record often enough to reach deep into the parser: pieces of
/// JSON and of records, numbers, short strings with escapes, glued in any order.
fn json_like() -> impl Strategy<Value = String> {
    const PIECES: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ", ",
        ": ",
        "\"loop_name\"",
        "\"scope\"",
        "\"pid\"",
        "\"started_at\"",
        "\"singleton\"",
        "\"liveness\"",
        "\"flock\"",
        "true",
        "null",
        "\"\\udce9\"",
        "\"\\ud800\"",
        "\"a/b\"",
        "\"\\\"",
        "\"",
        "-",
        "0",
        "7",
        "1.5e3",
        "2147483648",
        "\\u00",
    ];
    prop::collection::vec((0..=PIECES.len(), any::<u16>()), 0..40).prop_map(|picks| {
        picks
            .into_iter()
            .map(|(i, n)| {
                PIECES
                    .get(i)
                    .map_or_else(|| n.to_string(), |p| (*p).to_owned())
            })
            .collect()
    })
}

/// Short strings of any characters (control, non-ASCII, astral), cheap to generate.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..12).prop_map(|chars| chars.into_iter().collect())
}

fn record() -> impl Strategy<Value = LockRecord> {
    (
        text(),
        prop::collection::vec(text(), 0..4),
        1..=i32::MAX as u32,
        text(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(name, scope, pid, started, singleton, flock)| {
            let record = LockRecord::new(name, scope, pid, started).with_singleton(singleton);
            if flock {
                record.with_flock_liveness()
            } else {
                record
            }
        })
}

fn relative_path() -> impl Strategy<Value = String> {
    let component = prop_oneof![
        Just(""),
        Just("."),
        Just(".."),
        Just("a"),
        Just("b"),
        Just("c d"),
        Just("\u{e9}"),
        Just("*.md"),
    ];
    (any::<bool>(), prop::collection::vec(component, 0..8)).prop_map(|(absolute, parts)| {
        let joined = parts.join("/");
        if absolute {
            format!("/{joined}")
        } else {
            joined
        }
    })
}

proptest! {
    #![proptest_config(config(4_000))]
    #[test]
    fn the_reader_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = LockRecord::from_json(&bytes);
    }
}

proptest! {
    #![proptest_config(config(3_000))]
    #[test]
    fn the_reader_never_panics_on_json_like_text(text in json_like()) {
        let _ = LockRecord::from_json(text.as_bytes());
    }
}

proptest! {
    #![proptest_config(config(1_000))]
    #[test]
    fn every_record_we_write_reads_back_equal(record in record()) {
        let json = record.to_json();
        prop_assert!(json.is_ascii(), "{}", json);
        let read = LockRecord::from_json(json.as_bytes());
        prop_assert_eq!(read.ok(), Some(record));
    }
}

proptest! {
    #![proptest_config(config(2_000))]
    #[test]
    fn normalised_scopes_are_absolute_clean_and_stable(path in relative_path()) {
        let base = std::env::temp_dir().join("scope-lock-properties-no-such-dir");
        let normal = normalize_path_in(&base, &path).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let as_path = normal.as_path();
        prop_assert!(as_path.is_absolute(), "{}", normal.display());
        prop_assert!(
            as_path.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_))),
            "{}", normal.display()
        );
        let again = normalize_path_in(&base, &normal).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&again, &normal);
        prop_assert!(paths_overlap(&normal, &normal));
        if !path.starts_with('/') && !path.split('/').any(|c| c == "..") {
            prop_assert!(as_path.starts_with(&base), "{} is outside {}", normal.display(), base.display());
        }
    }
}
