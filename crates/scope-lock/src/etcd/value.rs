//! A key's value: the lock record, as locally, with the holder's host and lease after it.
//!
//! ```json
//! {"loop_name": "docs", "scope": ["docs/api"], "pid": 7818, "started_at": "…", "liveness": "lease", "host": "ci-3", "lease": 7587883434216423000}
//! ```
//!
//! The scope is relative to the project root. The record's reader ignores the two extra keys,
//! so the local record type reads it whole.

use serde::Deserialize;

use crate::error::{Error, ErrorKind};
use crate::record::LockRecord;

/// A record as etcd keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Value {
    pub(crate) record: LockRecord,
    pub(crate) host: String,
    pub(crate) lease: i64,
}

#[derive(Deserialize)]
struct Extra {
    host: String,
    lease: i64,
}

impl Value {
    pub(crate) fn to_json(&self) -> String {
        let mut json = self.record.to_json();
        json.pop(); // its closing brace
        json.push_str(", \"host\": ");
        json.push_str(&serde_json::Value::from(self.host.as_str()).to_string());
        json.push_str(&format!(", \"lease\": {}}}", self.lease));
        json
    }

    /// Reads a value; a record that is not one of ours (no lease liveness, no host or lease)
    /// is refused, and so counts as unreadable: held, of unknown scope.
    pub(crate) fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        let record = LockRecord::from_json(bytes)?;
        if !record.is_lease_liveness() {
            return Err(Error::input(
                ErrorKind::InvalidRecord,
                "not a record of the etcd backend (no \"liveness\": \"lease\")".to_owned(),
            ));
        }
        let extra: Extra = serde_json::from_slice(bytes).map_err(|err| {
            Error::input(
                ErrorKind::InvalidRecord,
                format!("not a lock record: {err}"),
            )
        })?;
        Ok(Self {
            record,
            host: extra.host,
            lease: extra.lease,
        })
    }
}

/// This machine's name, for people reading `list`.
pub(crate) fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::LockMode;

    #[test]
    fn a_value_is_the_record_with_host_and_lease_and_reads_back() -> Result<(), Error> {
        let value = Value {
            record: LockRecord::for_new_lease_lock(
                "docs",
                vec!["docs/api".into()],
                true,
                LockMode::Exclusive,
            ),
            host: "ci \"3\"".into(),
            lease: 7_587_883_434_216_423_000,
        };
        let json = value.to_json();
        assert!(
            json.contains(
                r#""liveness": "lease", "host": "ci \"3\"", "lease": 7587883434216423000}"#
            ),
            "{json}"
        );
        assert_eq!(Value::from_json(json.as_bytes())?, value);
        // A reader's lock keeps its mode through etcd.
        let shared = Value {
            record: value.record.clone().with_mode(LockMode::Shared),
            ..value.clone()
        };
        let read = Value::from_json(shared.to_json().as_bytes())?;
        assert_eq!(read.record.mode(), LockMode::Shared);
        let local = LockRecord::new("a", vec!["/x".into()], 5, "t").with_flock_liveness();
        assert!(Value::from_json(local.to_json().as_bytes()).is_err());
        Ok(())
    }
}
