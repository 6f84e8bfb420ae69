//! The record's JSON, both ways: read strictly about types and leniently where the original
//! is ([`LockRecord::from_json`], and serde through [`RawRecord`]), written byte for byte as
//! the original writes it ([`LockRecord::to_json`]). The shape is described in the parent
//! module.

use std::fmt::Write as _;

use serde::Deserialize;

use super::{LivenessKey, LockRecord, MAX_RECORD_BYTES};
use crate::error::{Error, ErrorKind};
use crate::mode::LockMode;
use crate::python_json::{
    JsonBytes, path_from_json, push_json_path, push_json_string, text_from_json,
};
use crate::sys::ProcessIdentity;

/// A record as parsed, before the checks that make it a [`LockRecord`]. Private: the only way
/// to a `LockRecord` from outside is through those checks. Strings are read as bytes, so that
/// the lone surrogates Python writes for file names that are not UTF-8 are accepted (see
/// [`crate::python_json`]).
#[derive(Deserialize)]
pub(super) struct RawRecord {
    loop_name: JsonBytes,
    #[serde(deserialize_with = "scope_list_or_legacy_string")]
    scope: Vec<JsonBytes>,
    pid: u32,
    started_at: JsonBytes,
    #[serde(default)]
    singleton: bool,
    #[serde(default)]
    liveness: Option<LivenessKey>,
    #[serde(default)]
    pid_namespace: Option<u64>,
    #[serde(default)]
    pid_start_ticks: Option<u64>,
    #[serde(default)]
    mode: Option<ModeKey>,
    token: Option<u64>,
}

impl TryFrom<RawRecord> for LockRecord {
    type Error = String;

    fn try_from(raw: RawRecord) -> Result<Self, String> {
        // kill(2) takes a pid_t: 0 means "my process group", and nothing above i32::MAX is a
        // process.
        if raw.pid == 0 || i32::try_from(raw.pid).is_err() {
            return Err(format!("pid {} is not a process id", raw.pid));
        }
        let scope = raw.scope.iter().map(text_from_json).collect();
        let paths = raw.scope.into_iter().map(path_from_json).collect();
        Ok(Self {
            loop_name: text_from_json(&raw.loop_name),
            scope,
            paths,
            pid: raw.pid,
            started_at: text_from_json(&raw.started_at),
            singleton: raw.singleton,
            liveness: raw.liveness,
            // Both or nothing: half an identity proves nothing.
            identity: raw.pid_namespace.zip(raw.pid_start_ticks).map(
                |(pid_namespace, start_ticks)| ProcessIdentity {
                    pid_namespace,
                    start_ticks,
                },
            ),
            mode: match raw.mode {
                Some(ModeKey::Shared) => LockMode::Shared,
                // Absent (the original's, or an exclusive lock of ours), or a value we do not
                // know: the stricter reading.
                Some(ModeKey::Exclusive | ModeKey::Unknown) | None => LockMode::Exclusive,
            },
            token: raw.token,
        })
    }
}

/// The value of our `mode` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ModeKey {
    Shared,
    Exclusive,
    /// From some future writer: read as exclusive, which never lets two holders overlap that
    /// the writer meant to keep apart.
    #[serde(other)]
    Unknown,
}

impl LockRecord {
    /// Parses a lock file's bytes.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidRecord`] when the bytes are empty, larger than
    /// [`MAX_RECORD_BYTES`], not a JSON object, miss a key, have a key of the wrong type, or
    /// have a `pid` that is not a positive process id. The message says which.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        let invalid = |what: String| Error::input(ErrorKind::InvalidRecord, what);
        if bytes.is_empty() {
            return Err(invalid("empty lock file (no record)".into()));
        }
        if bytes.len() as u64 > MAX_RECORD_BYTES {
            return Err(invalid(format!(
                "lock file larger than {MAX_RECORD_BYTES} bytes"
            )));
        }
        serde_json::from_slice(bytes).map_err(|err| invalid(format!("not a lock record: {err}")))
    }

    /// The record as the original writes it: one line of JSON, Python's separators and ASCII
    /// escaping, no trailing newline.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(128);
        out.push_str("{\"loop_name\": ");
        push_json_string(&mut out, &self.loop_name);
        out.push_str(", \"scope\": [");
        for (i, path) in self.paths.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            push_json_path(&mut out, path);
        }
        let _ = write!(out, "], \"pid\": {}, \"started_at\": ", self.pid);
        push_json_string(&mut out, &self.started_at);
        if self.singleton {
            out.push_str(", \"singleton\": true");
        }
        if self.liveness == Some(LivenessKey::Lease) {
            out.push_str(", \"liveness\": \"lease\"");
        }
        if self.liveness == Some(LivenessKey::Flock) {
            out.push_str(", \"liveness\": \"flock\"");
            if let Some(identity) = self.identity {
                let _ = write!(
                    out,
                    ", \"pid_namespace\": {}, \"pid_start_ticks\": {}",
                    identity.pid_namespace, identity.start_ticks
                );
            }
            if let Some(token) = self.token {
                let _ = write!(out, ", \"token\": {token}");
            }
        }
        if self.mode == LockMode::Shared {
            out.push_str(", \"mode\": \"shared\"");
        }
        out.push('}');
        out
    }
}

/// A list of path strings, or (legacy files) one path string read as a one-element list.
fn scope_list_or_legacy_string<'de, D>(deserializer: D) -> Result<Vec<JsonBytes>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct ScopeVisitor;
    impl<'de> serde::de::Visitor<'de> for ScopeVisitor {
        type Value = Vec<JsonBytes>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of path strings or a single path string")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut paths = Vec::new();
            while let Some(path) = seq.next_element::<JsonBytes>()? {
                paths.push(path);
            }
            Ok(paths)
        }
        // A legacy string arrives here only when it is valid UTF-8: serde_json cannot hand
        // `deserialize_any` a lone surrogate. Such a file is then read as unparsable, and its
        // pid decides (see the scan).
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![JsonBytes(v.as_bytes().to_vec())])
        }
    }
    deserializer.deserialize_any(ScopeVisitor)
}
