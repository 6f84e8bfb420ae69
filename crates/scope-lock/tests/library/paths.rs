//! Scope entries are paths, not text: a `PathBuf` is accepted as it is, and a path that is not
//! UTF-8 is locked, compared, written, read back and listed byte for byte.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use scope_lock::testing::{TestResult, expect_conflict, fixture};
use scope_lock::{ConflictRule, LockRecord, LockRequest};

/// `root/caf<0xE9>`: Latin-1 `café`, a name many older file systems hold and no `String` can.
fn latin1_cafe(root: &Path) -> PathBuf {
    root.join(OsStr::from_bytes(b"caf\xe9"))
}

#[test]
fn a_non_utf8_scope_excludes_an_overlapping_one_and_only_that() -> TestResult {
    let f = fixture()?;
    let cafe = latin1_cafe(&f.root);
    let holder = f
        .locks
        .try_acquire(&LockRequest::new("latin1").scope([&cafe]))?;

    // Inside it: refused, the rule naming both paths.
    let inside = cafe.join("menu");
    let conflict = expect_conflict(
        f.locks
            .try_acquire(&LockRequest::new("in").scope([&inside])),
    );
    assert_eq!(conflict.holder(), Some(holder.record()));
    assert!(
        matches!(conflict.rule(), ConflictRule::Overlap { .. }),
        "{conflict}"
    );

    // Names that only look alike once the byte is lost are other paths: U+FFFD itself, and
    // `café` in UTF-8 (0xC3 0xA9).
    for lookalike in ["caf\u{fffd}", "caf\u{e9}"] {
        let guard = f
            .locks
            .try_acquire(&LockRequest::new(lookalike).scope([f.root.join(lookalike)]))?;
        guard.release()?;
    }
    Ok(())
}

#[test]
fn a_non_utf8_scope_round_trips_through_the_lock_file_and_the_listing() -> TestResult {
    let f = fixture()?;
    let cafe = latin1_cafe(&f.root);
    let guard = f
        .locks
        .try_acquire(&LockRequest::new("latin1").scope([cafe.clone()]))?;
    assert_eq!(guard.record().scope_paths(), std::slice::from_ref(&cafe));

    // Written as Python writes `os.fsdecode(path)`: the byte as the lone surrogate \udce9.
    let bytes = fs::read(guard.path())?;
    let json = String::from_utf8(bytes.clone())?;
    assert!(json.contains("/caf\\udce9\""), "{json}");
    assert_eq!(&LockRecord::from_json(&bytes)?, guard.record());

    let listing = f.locks.list_locks()?;
    let [live] = listing.locks() else {
        panic!("one lock expected: {listing:?}");
    };
    assert_eq!(live.record().scope_paths(), [cafe]);
    Ok(())
}

#[test]
fn path_bufs_and_strs_make_the_same_request() {
    let from_str = LockRequest::new("a").scope(["src", "docs/"]);
    let from_paths = LockRequest::new("a").scope([PathBuf::from("src"), PathBuf::from("docs/")]);
    assert_eq!(from_str, from_paths);
    assert_eq!(
        from_paths.scope_entries(),
        [Path::new("src"), Path::new("docs/")]
    );
}

/// Glob and `literal:` entries are read on bytes: a pattern holds a name that is not UTF-8
/// when it matches it (`?` takes the one byte), and `literal:` before such a name locks the
/// path it spells, `*` and all, and nothing else.
#[test]
fn a_glob_holds_a_non_utf8_name_it_matches_and_literal_takes_one_as_written() -> TestResult {
    let f = fixture()?;
    let cafe = latin1_cafe(&f.root);
    let glob = f
        .locks
        .try_acquire(&LockRequest::new("glob").scope([f.root.join("caf?")]))?;
    let conflict = expect_conflict(
        f.locks
            .try_acquire(&LockRequest::new("latin1").scope([&cafe])),
    );
    assert_eq!(conflict.holder(), Some(glob.record()));
    let longer = f.root.join(OsStr::from_bytes(b"caf\xe9\xe9"));
    f.locks
        .try_acquire(&LockRequest::new("longer").scope([longer]))?
        .release()?;
    glob.release()?;

    let mut cafe_star = cafe.clone().into_os_string();
    cafe_star.push("*");
    let cafe_star = PathBuf::from(cafe_star);
    let literal = f
        .locks
        .try_acquire(&LockRequest::new("literal").scope([literal_of(&cafe_star)]))?;
    let stored = literal.record().scope_paths()[0].as_os_str().as_bytes();
    assert!(stored.ends_with(b"/caf\xe9[*]"), "{stored:?}");
    let inside = cafe_star.join("menu");
    let conflict = expect_conflict(
        f.locks
            .try_acquire(&LockRequest::new("inside").scope([literal_of(&inside)])),
    );
    assert_eq!(conflict.holder(), Some(literal.record()));
    f.locks
        .try_acquire(&LockRequest::new("cafe").scope([&cafe]))?
        .release()?;
    Ok(())
}

/// `literal:PATH`, for a path of any bytes.
fn literal_of(path: &Path) -> PathBuf {
    let mut bytes = b"literal:".to_vec();
    bytes.extend_from_slice(path.as_os_str().as_bytes());
    PathBuf::from(OsStr::from_bytes(&bytes))
}
