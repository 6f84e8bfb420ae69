//! What every JSON document shares: how it writes a path, its version, and a lock's record.

use std::path::PathBuf;

use scope_lock::LockRecord;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// A path (or a lock's name) in a JSON document, written as the lock files write paths
/// ([`scope_lock::path_to_json`]: Python's `json.dump` of `os.fsdecode(path)`). serde_json
/// refuses a path that is not UTF-8, which cut the document off in the middle of a key; here
/// each such byte is the escape `\udcXX`, which Python's `json` reads back as the same name.
#[derive(Debug)]
pub(crate) struct JsonPath(pub(super) PathBuf);

impl JsonPath {
    pub(super) fn all(paths: &[PathBuf]) -> Vec<Self> {
        paths.iter().cloned().map(Self).collect()
    }
}

impl Serialize for JsonPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A JSON string is all `path_to_json` writes, so the check cannot fail.
        RawValue::from_string(scope_lock::path_to_json(&self.0))
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

/// The version of every JSON document the commands print (their `"version"` key). Within a
/// version keys are only added: none is renamed or removed, nor changes its type or meaning
/// (docs/cli.md, "JSON output"). A change that breaks that raises it.
pub(crate) const JSON_VERSION: u32 = 1;

/// The record's keys, as the lock file has them.
#[derive(Debug, Serialize)]
pub(crate) struct RecordJson {
    loop_name: String,
    scope: Vec<JsonPath>,
    pid: u32,
    started_at: String,
    singleton: bool,
    /// `"exclusive"` or `"shared"`; a file without our `mode` key is exclusive.
    mode: &'static str,
    /// The entries of `scope` that read as patterns.
    patterns: Vec<JsonPath>,
    /// The fencing token; `null` in a record the original wrote.
    token: Option<u64>,
}

impl RecordJson {
    pub(super) fn new(record: &LockRecord) -> Self {
        Self::with_token(record, record.token())
    }

    /// The record with the token kept outside it (on etcd, the key's create revision).
    pub(super) fn with_token(record: &LockRecord, token: Option<u64>) -> Self {
        Self {
            loop_name: record.loop_name().to_owned(),
            scope: JsonPath::all(record.scope_paths()),
            pid: record.pid(),
            started_at: record.started_at().to_owned(),
            singleton: record.singleton(),
            mode: record.mode().as_str(),
            patterns: record
                .scope_paths()
                .iter()
                .filter(|path| scope_lock::is_pattern(path))
                .cloned()
                .map(JsonPath)
                .collect(),
            token,
        }
    }
}

/// A command line: each argument bytes, written as paths are.
pub(super) fn command_json(command: Option<Vec<std::ffi::OsString>>) -> Option<Vec<JsonPath>> {
    command.map(|args| args.into_iter().map(|arg| JsonPath(arg.into())).collect())
}
