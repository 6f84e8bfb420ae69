//! A reader that knows only what the original's `ScopeLock.from_dict` knows: the four required
//! keys and `singleton`, picked by name, everything else ignored. Used to prove that the files
//! we write are files the original accepts, and by the pre-fix port.

use serde_json::Value;

/// A lock as the original sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalLock {
    /// `data["loop_name"]`.
    pub loop_name: String,
    /// `data["scope"]`, a legacy string read as one path.
    pub scope: Vec<String>,
    /// `data["pid"]`.
    pub pid: u32,
    /// `data["started_at"]`.
    pub started_at: String,
    /// `data.get("singleton", False)`.
    pub singleton: bool,
}

/// Parses a lock file as the original would, or says why it would skip it (a
/// `JSONDecodeError` or a `KeyError` there).
///
/// # Errors
///
/// The reason the original would skip the file.
pub fn parse(bytes: &[u8]) -> Result<OriginalLock, String> {
    let data: Value =
        serde_json::from_slice(bytes).map_err(|err| format!("JSONDecodeError: {err}"))?;
    let key = |name: &str| data.get(name).ok_or_else(|| format!("KeyError: {name}"));
    let string = |name: &str| -> Result<String, String> {
        key(name)?
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{name} is not a string"))
    };
    let scope = match key("scope")? {
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| "scope entry is not a string".to_owned())
            })
            .collect::<Result<_, _>>()?,
        Value::String(path) => vec![path.clone()],
        _ => return Err("scope is neither a list nor a string".into()),
    };
    let pid = key("pid")?
        .as_u64()
        .and_then(|pid| u32::try_from(pid).ok())
        .ok_or_else(|| "pid is not a process id".to_owned())?;
    Ok(OriginalLock {
        loop_name: string("loop_name")?,
        scope,
        pid,
        started_at: string("started_at")?,
        singleton: data
            .get("singleton")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_originals_shape_and_ignores_extra_keys() {
        let lock = parse(br#"{"loop_name": "a", "scope": "/x", "pid": 3, "started_at": "t", "liveness": "flock"}"#);
        assert_eq!(
            lock,
            Ok(OriginalLock {
                loop_name: "a".into(),
                scope: vec!["/x".into()],
                pid: 3,
                started_at: "t".into(),
                singleton: false
            })
        );
    }

    #[test]
    fn skips_what_the_original_skips() {
        assert!(parse(b"").unwrap_err().starts_with("JSONDecodeError"));
        assert!(
            parse(br#"{"loop_name": "a", "sc"#)
                .unwrap_err()
                .starts_with("JSONDecodeError")
        );
        assert!(
            parse(br#"{"loop_name": "a"}"#)
                .unwrap_err()
                .starts_with("KeyError")
        );
    }
}
