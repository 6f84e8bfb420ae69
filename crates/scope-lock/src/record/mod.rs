//! The lock record: the JSON object in every lock file.
//!
//! The on-disk shape is the one little-loops writes with Python's default `json.dump`, so that
//! both implementations can share a `.running/` directory (`docs/protocol.md`, "The original's
//! lock file"):
//!
//! ```json
//! {"loop_name": "demo", "scope": ["/abs/repo/src"], "pid": 7818, "started_at": "2026-11-27T21:33:58.129615+00:00", "singleton": true, "liveness": "flock", "pid_namespace": 4026531836, "pid_start_ticks": 139908, "token": 17}
//! ```
//!
//! - one line, separators `", "` and `": "`, no trailing newline, non-ASCII escaped as
//!   `\uXXXX` (Python's `ensure_ascii`);
//! - the five keys of the original in its order; `singleton` only when true;
//! - a key of ours, `"liveness": "flock"`, after them: it says "this record is alive exactly while
//!   its file is flocked". The original's reader picks its keys by name and ignores it. A file
//!   without it was written by the original, whose liveness is its pid (`kill(pid, 0)`);
//! - after it, where the writer could read them from its own `/proc` (Linux), two more:
//!   `pid_namespace` and `pid_start_ticks`, which tell the writer from another process with the
//!   same pid number (see `protocol/ancestry/`). Absent, or one without the other, they
//!   prove nothing;
//! - last, only for a shared lock, `"mode": "shared"`. Without it a lock is exclusive, as
//!   every lock of the original is; a value we do not know reads as exclusive too, the
//!   stricter reading. The original ignores the key, so it takes our shared locks for
//!   exclusive ones: stricter than we are, never weaker.
//! - with `liveness`, after the identity and before `mode`, `token`: the lock's fencing token
//!   (`protocol/token.rs`).
//!
//! Reading is strict about types (a string, null, zero or negative `pid` is an error naming the
//! problem) and lenient where the original is: a legacy string `scope` reads as a one-element
//! list, a missing `singleton` as false, unknown keys are ignored. Every way in goes through the
//! same checks: [`LockRecord::from_json`] and serde alike (`serde_json::from_str::<LockRecord>`
//! deserialises a private raw record and converts it with `TryFrom`, which refuses what
//! `from_json` refuses).
//!
//! The JSON both ways is [`json`]'s; records made by hand for tests are `by_hand`'s.

#[cfg(any(test, feature = "test-support"))]
mod by_hand;
mod json;

use std::path::PathBuf;

use serde::Deserialize;

use crate::mode::LockMode;
use crate::sys::ProcessIdentity;

/// Lock files larger than this are not lock records; reading stops here so that a huge file
/// cannot stall a scan or exhaust memory.
pub const MAX_RECORD_BYTES: u64 = 1024 * 1024;

/// The record a lock file holds: who holds which scope since when.
///
/// Read one with [`from_json`](LockRecord::from_json), or with serde
/// (`serde_json::from_str::<LockRecord>`): both refuse a record whose `pid` is not a process id.
///
/// ```
/// use scope_lock::LockRecord;
///
/// # fn main() -> Result<(), scope_lock::Error> {
/// // What the original writes; a path that is not UTF-8 comes as Python's surrogate escape.
/// let json = br#"{"loop_name": "demo", "scope": ["/repo/src", "/repo/caf\udce9"], "pid": 7818, "started_at": "2026-11-27T21:33:58.129615+00:00", "singleton": true}"#;
/// let record = LockRecord::from_json(json)?;
/// assert_eq!((record.loop_name(), record.pid(), record.singleton()), ("demo", 7818, true));
/// assert!(!record.is_flock_liveness()); // the original's: alive while its pid is
/// use std::os::unix::ffi::OsStrExt;
/// assert_eq!(record.scope_paths()[1].as_os_str().as_bytes(), b"/repo/caf\xe9");
/// assert_eq!(record.scope()[1], "/repo/caf\u{fffd}"); // as text, for people
/// assert_eq!(LockRecord::from_json(record.to_json().as_bytes())?, record);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "json::RawRecord")]
pub struct LockRecord {
    loop_name: String,
    /// The scope as text (bytes that are not UTF-8 shown as U+FFFD), for people.
    scope: Vec<String>,
    /// The scope as the paths it names, byte for byte: what overlap is decided on.
    paths: Vec<PathBuf>,
    pid: u32,
    started_at: String,
    singleton: bool,
    liveness: Option<LivenessKey>,
    /// Who the writer is beyond its pid number, when it could tell (ours, on Linux).
    identity: Option<ProcessIdentity>,
    mode: LockMode,
    /// The lock's fencing token (ours; docs/protocol.md, "Fencing tokens").
    token: Option<u64>,
}

/// The value of our `liveness` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum LivenessKey {
    /// Alive exactly while the file is flocked.
    Flock,
    /// Alive exactly while its etcd lease is (the etcd backend: the record is a key's value).
    Lease,
    /// A value from some future writer: we do not know its rule, so we fall back to the pid,
    /// which never reclaims a lock whose process is alive.
    #[serde(other)]
    Unknown,
}

impl LockRecord {
    /// A record for a lock this crate is about to publish: this process, now, flock liveness.
    pub(crate) fn for_new_lock(
        loop_name: &str,
        paths: Vec<PathBuf>,
        singleton: bool,
        mode: LockMode,
    ) -> Self {
        Self {
            loop_name: loop_name.to_owned(),
            scope: paths
                .iter()
                .map(|path| path.to_string_lossy().into_owned())
                .collect(),
            paths,
            pid: std::process::id(),
            started_at: now_iso8601(),
            singleton,
            liveness: Some(LivenessKey::Flock),
            identity: crate::sys::own_identity(),
            mode,
            token: None,
        }
    }

    /// A record for a lock of the etcd backend: this process, now, lease liveness. `scope` is
    /// relative to the project root, so that every clone of the project reads it the same.
    #[cfg(feature = "etcd")]
    pub(crate) fn for_new_lease_lock(
        loop_name: &str,
        scope: Vec<String>,
        singleton: bool,
        mode: LockMode,
    ) -> Self {
        Self {
            liveness: Some(LivenessKey::Lease),
            identity: None,
            ..Self::for_new_lock(
                loop_name,
                scope.into_iter().map(PathBuf::from).collect(),
                singleton,
                mode,
            )
        }
    }

    /// The same record over another scope: the etcd backend decides on a holder's scope
    /// rebased onto this clone's project root.
    #[cfg(feature = "etcd")]
    pub(crate) fn with_scope(&self, scope: Vec<String>) -> Self {
        Self {
            paths: scope.iter().map(PathBuf::from).collect(),
            scope,
            ..self.clone()
        }
    }

    /// The same record, started now: what an attempt publishes from a record prepared earlier.
    /// `started_at` always has the same length, so the record's size is unchanged.
    pub(crate) fn restamped(&self) -> Self {
        Self {
            started_at: now_iso8601(),
            ..self.clone()
        }
    }

    /// The same record with the fencing token `token`: what is published.
    pub(crate) fn fenced(self, token: u64) -> Self {
        Self {
            token: Some(token),
            ..self
        }
    }

    /// The lock's fencing token: a number above that of every lock acquired before it in the
    /// same lock directory (docs/protocol.md, "Fencing tokens"). `None` for a record the
    /// original, or a version of this crate before tokens, wrote.
    pub fn token(&self) -> Option<u64> {
        self.token
    }

    /// The loop's name.
    pub fn loop_name(&self) -> &str {
        &self.loop_name
    }

    /// The locked paths, as the holder normalised them, as text: a byte of a path that is
    /// not UTF-8 (which only the original can write) shows as U+FFFD. Overlap is decided on
    /// [`scope_paths`](Self::scope_paths).
    pub fn scope(&self) -> &[String] {
        &self.scope
    }

    /// The locked paths byte for byte, as the holder named them.
    pub fn scope_paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The process that acquired the lock.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// When the lock was acquired: UTC ISO-8601 with microseconds and `+00:00`.
    pub fn started_at(&self) -> &str {
        &self.started_at
    }

    /// Whether the holder is a singleton (no other singleton of its name may run).
    pub fn singleton(&self) -> bool {
        self.singleton
    }

    /// Whether the lock is shared (a reader's) or exclusive; a record without our `mode` key
    /// (every record of the original) is exclusive.
    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// Whether liveness is the file's flock (written by this crate) rather than the pid
    /// (written by the original).
    pub fn is_flock_liveness(&self) -> bool {
        self.liveness == Some(LivenessKey::Flock)
    }

    /// Whether liveness is an etcd lease (a record of the etcd backend, whose scope is
    /// relative to the project root).
    pub fn is_lease_liveness(&self) -> bool {
        self.liveness == Some(LivenessKey::Lease)
    }

    /// The inode number of the writer's pid namespace (`/proc/<pid>/ns/pid`), when the record
    /// says: ours do on Linux, where `/proc` lets the writer tell. With
    /// [`pid_start_ticks`](Self::pid_start_ticks) it tells the writer from another process
    /// with the same pid number (in another pid namespace, or later).
    pub fn pid_namespace(&self) -> Option<u64> {
        self.identity.map(|identity| identity.pid_namespace)
    }

    /// When the writer started, in clock ticks after boot (`/proc/<pid>/stat` field 22), when
    /// the record says (see [`pid_namespace`](Self::pid_namespace)).
    pub fn pid_start_ticks(&self) -> Option<u64> {
        self.identity.map(|identity| identity.start_ticks)
    }

    /// Both [`pid_namespace`](Self::pid_namespace) and
    /// [`pid_start_ticks`](Self::pid_start_ticks).
    pub(crate) fn identity(&self) -> Option<ProcessIdentity> {
        self.identity
    }
}

/// The current time as Python's `datetime.now(UTC).isoformat()` writes it (always with
/// microseconds).
pub(crate) fn now_iso8601() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, ErrorKind};

    fn parse(json: &str) -> Result<LockRecord, Error> {
        LockRecord::from_json(json.as_bytes())
    }

    fn parse_err(json: &str) -> String {
        match parse(json) {
            Ok(record) => panic!("parsed {json} into {record:?}"),
            Err(err) => {
                assert_eq!(err.kind(), ErrorKind::InvalidRecord);
                err.to_string()
            }
        }
    }

    const ORIGINAL: &str = r#"{"loop_name": "demo", "scope": ["/abs/repo/src", "/abs/repo/docs"], "pid": 7818, "started_at": "2026-11-27T21:33:58.129615+00:00", "singleton": true}"#;

    #[test]
    fn reads_the_originals_file_and_writes_it_back_byte_for_byte() -> Result<(), Error> {
        let record = parse(ORIGINAL)?;
        assert_eq!(record.loop_name(), "demo");
        assert_eq!(record.scope(), ["/abs/repo/src", "/abs/repo/docs"]);
        assert_eq!(record.pid(), 7818);
        assert!(record.singleton());
        assert!(!record.is_flock_liveness());
        assert_eq!(record.to_json(), ORIGINAL);
        Ok(())
    }

    #[test]
    fn singleton_false_is_omitted_and_missing_reads_false() -> Result<(), Error> {
        let record = LockRecord::new("a", vec!["/x".into()], 5, "t");
        assert_eq!(
            record.to_json(),
            r#"{"loop_name": "a", "scope": ["/x"], "pid": 5, "started_at": "t"}"#
        );
        assert!(!parse(&record.to_json())?.singleton());
        let flock = record.with_singleton(true).with_flock_liveness();
        assert!(
            flock
                .to_json()
                .ends_with(r#""singleton": true, "liveness": "flock"}"#)
        );
        assert_eq!(parse(&flock.to_json())?, flock);
        Ok(())
    }

    /// Our identity keys come last, after `liveness`, and only with it; a record without
    /// them (the original's, an older version of ours), or with one of the two, has none.
    #[test]
    fn the_writers_identity_is_written_last_and_read_only_whole() -> Result<(), Error> {
        let record = LockRecord::new("a", vec!["/x".into()], 5, "t")
            .with_flock_liveness()
            .with_identity(4_026_531_836, 139_908);
        let json = record.to_json();
        assert_eq!(
            json,
            r#"{"loop_name": "a", "scope": ["/x"], "pid": 5, "started_at": "t", "liveness": "flock", "pid_namespace": 4026531836, "pid_start_ticks": 139908}"#
        );
        let read = parse(&json)?;
        assert_eq!(read, record);
        assert_eq!(read.pid_namespace(), Some(4_026_531_836));
        assert_eq!(read.pid_start_ticks(), Some(139_908));

        let without = parse(
            r#"{"loop_name": "a", "scope": [], "pid": 5, "started_at": "t", "liveness": "flock"}"#,
        )?;
        assert_eq!(
            (without.pid_namespace(), without.pid_start_ticks()),
            (None, None)
        );
        let half = parse(
            r#"{"loop_name": "a", "scope": [], "pid": 5, "started_at": "t", "liveness": "flock", "pid_namespace": 7}"#,
        )?;
        assert_eq!(half.identity(), None);
        assert!(parse_err(r#"{"loop_name": "a", "scope": [], "pid": 5, "started_at": "t", "pid_namespace": "7", "pid_start_ticks": 1}"#).contains("invalid type: string"));

        // Without flock liveness nothing proves the writer holds the file: not written.
        let unmarked = LockRecord::new("a", vec![], 5, "t").with_identity(1, 2);
        assert!(!unmarked.to_json().contains("pid_namespace"));
        Ok(())
    }

    /// `mode` is written only for a shared lock, last; without it, or with a value we do
    /// not know, a record is exclusive, so every record of the original keeps its meaning.
    #[test]
    fn the_mode_key_is_written_only_when_shared_and_anything_else_reads_exclusive()
    -> Result<(), Error> {
        let exclusive = LockRecord::new("a", vec!["/x".into()], 5, "t").with_flock_liveness();
        assert!(!exclusive.to_json().contains("mode"));
        let shared = exclusive
            .clone()
            .with_identity(1, 2)
            .with_mode(LockMode::Shared);
        let json = shared.to_json();
        assert!(
            json.ends_with(r#""pid_start_ticks": 2, "mode": "shared"}"#),
            "{json}"
        );
        assert_eq!(parse(&json)?, shared);
        assert_eq!(parse(&json)?.mode(), LockMode::Shared);
        assert_eq!(parse(ORIGINAL)?.mode(), LockMode::Exclusive);
        for value in [r#""exclusive""#, r#""intent""#, r#""SHARED""#] {
            let record = parse(&format!(
                r#"{{"loop_name": "a", "scope": [], "pid": 5, "started_at": "t", "mode": {value}}}"#
            ))?;
            assert_eq!(record.mode(), LockMode::Exclusive, "{value}");
        }
        Ok(())
    }

    /// The fencing token comes after the writer's identity, with flock liveness only, and
    /// reads back; a record without one (the original's, an older version of ours) has none.
    #[test]
    fn the_fencing_token_is_written_after_the_identity_and_read_back() -> Result<(), Error> {
        let record = LockRecord::new("a", vec!["/x".into()], 5, "t")
            .with_flock_liveness()
            .with_identity(4_026_531_836, 139_908)
            .with_token(17);
        let json = record.to_json();
        assert!(
            json.ends_with(r#""pid_start_ticks": 139908, "token": 17}"#),
            "{json}"
        );
        assert_eq!(parse(&json)?.token(), Some(17));
        assert_eq!(parse(ORIGINAL)?.token(), None);
        let unmarked = LockRecord::new("a", vec![], 5, "t").with_token(3);
        assert!(
            !unmarked.to_json().contains("token"),
            "{}",
            unmarked.to_json()
        );
        Ok(())
    }

    #[test]
    fn legacy_string_scope_reads_as_one_path() -> Result<(), Error> {
        let record = parse(r#"{"loop_name": "a", "scope": "/x", "pid": 5, "started_at": "t"}"#)?;
        assert_eq!(record.scope(), ["/x"]);
        Ok(())
    }

    #[test]
    fn unknown_keys_and_unknown_liveness_are_tolerated() -> Result<(), Error> {
        let record = parse(
            r#"{"loop_name": "a", "scope": [], "pid": 5, "started_at": "t", "x": 1, "liveness": "gossip"}"#,
        )?;
        assert!(!record.is_flock_liveness());
        Ok(())
    }

    #[test]
    fn non_ascii_is_escaped_like_python() {
        let record = LockRecord::new("é\u{7f}\"\\\n😀/", vec![], 1, "t");
        assert_eq!(
            record.to_json(),
            r#"{"loop_name": "\u00e9\u007f\"\\\n\ud83d\ude00/", "scope": [], "pid": 1, "started_at": "t"}"#
        );
    }

    /// Python's `json.dumps` has short escapes for these, and `\uXXXX` for other controls.
    #[test]
    fn control_characters_are_escaped_like_python() {
        let record = LockRecord::new("\r\t\u{8}\u{c}\u{1}\u{1f}", vec![], 1, "t");
        assert_eq!(
            record.to_json(),
            r#"{"loop_name": "\r\t\b\f\u0001\u001f", "scope": [], "pid": 1, "started_at": "t"}"#
        );
    }

    /// The size cap is a guard against junk, not a limit on real scopes: a record with a
    /// thousand long paths (about 200 KiB) is read, and so is one padded to exactly the cap.
    #[test]
    fn large_records_up_to_the_cap_are_read() -> Result<(), Error> {
        let scope: Vec<String> = (0..1000)
            .map(|i| format!("/repo/{}/{i}", "deep/".repeat(40)))
            .collect();
        let big = LockRecord::new("a", scope, 5, "t").to_json();
        assert!(big.len() > 128 * 1024, "{}", big.len());
        assert_eq!(parse(&big)?.scope().len(), 1000);

        let mut padded = LockRecord::new("a", vec!["/x".into()], 5, "t")
            .to_json()
            .into_bytes();
        padded.resize(MAX_RECORD_BYTES as usize, b' ');
        assert_eq!(LockRecord::from_json(&padded)?.pid(), 5);
        Ok(())
    }

    #[test]
    fn bad_files_are_errors_that_say_why() {
        assert!(parse_err("").contains("empty"));
        assert!(parse_err(r#"{"loop_name": "a", "sco"#).contains("not a lock record"));
        assert!(parse_err("[1, 2]").contains("not a lock record"));
        assert!(parse_err("null").contains("not a lock record"));
        let with_pid = |pid: &str| {
            format!(r#"{{"loop_name": "a", "scope": ["/x"], "pid": {pid}, "started_at": "t"}}"#)
        };
        assert!(parse_err(&with_pid(r#""123""#)).contains("invalid type: string"));
        assert!(parse_err(&with_pid("null")).contains("invalid type: null"));
        assert!(parse_err(&with_pid("-4")).contains("-4"));
        assert!(parse_err(&with_pid("0")).contains("pid 0 is not a process id"));
        assert!(parse_err(&with_pid("3000000000")).contains("not a process id"));
        assert!(parse_err(&with_pid("1.5")).contains("floating point"));
        assert!(parse_err(r#"{"loop_name": "a", "pid": 1, "started_at": "t"}"#).contains("scope"));
        // A scope of the wrong type says what a scope may be.
        assert!(
            parse_err(r#"{"loop_name": "a", "scope": 5, "pid": 1, "started_at": "t"}"#)
                .contains("expected a list of path strings or a single path string"),
        );
        assert!(
            parse_err(r#"{"loop_name": 7, "scope": [], "pid": 1, "started_at": "t"}"#)
                .contains("invalid type: integer")
        );
        let huge = vec![b' '; MAX_RECORD_BYTES as usize + 1];
        let err = LockRecord::from_json(&huge).map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("larger than"));
    }

    #[test]
    fn serde_refuses_what_from_json_refuses() -> Result<(), Box<dyn std::error::Error>> {
        let with_pid = |pid: &str| {
            format!(r#"{{"loop_name": "a", "scope": ["/x"], "pid": {pid}, "started_at": "t"}}"#)
        };
        for pid in ["0", "3000000000"] {
            let json = with_pid(pid);
            match serde_json::from_str::<LockRecord>(&json) {
                Ok(record) => panic!("serde accepted {json} as {record:?}"),
                Err(err) => assert!(err.to_string().contains("not a process id"), "{err}"),
            }
            assert!(parse(&json).is_err());
        }
        // Inside other structures too: the checks are the type's, not one function's.
        let list = format!("[{}, {}]", with_pid("5"), with_pid("0"));
        assert!(serde_json::from_str::<Vec<LockRecord>>(&list).is_err());
        // What passes the checks reads the same both ways.
        let json = with_pid("5");
        assert_eq!(serde_json::from_str::<LockRecord>(&json)?.pid(), 5);
        assert_eq!(
            serde_json::from_str::<LockRecord>(ORIGINAL)?,
            parse(ORIGINAL)?
        );
        Ok(())
    }

    #[test]
    fn timestamps_look_like_pythons_isoformat() {
        let now = now_iso8601();
        // 2026-11-27T21:33:58.129615+00:00
        assert_eq!(now.len(), 32, "{now}");
        assert!(now.ends_with("+00:00"), "{now}");
        assert_eq!(&now[10..11], "T");
        assert_eq!(&now[19..20], ".");
        assert!(now[20..26].bytes().all(|b| b.is_ascii_digit()), "{now}");
    }
}
