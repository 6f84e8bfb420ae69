//! What Python's `json` writes that a strict Rust reader refuses, and how much can still be
//! learnt from a file that is not a valid record.
//!
//! **Lone surrogates.** Python decodes a file name that is not UTF-8 with `surrogateescape`:
//! each undecodable byte `0x80..=0xFF` becomes the code point `U+DC80..=U+DCFF`, which
//! `json.dump` writes as the escape `"\udcXX"`. No Rust `String` can hold it, so such strings are
//! read as bytes (serde_json hands those over as WTF-8) and each escaped byte is put back: a
//! scope entry becomes the very path the original locked ([`path_from_json`]). Writing does the
//! reverse ([`push_json_path`]), so a path that is not UTF-8 survives a round trip.
//!
//! **Salvage.** A file that is not a valid record may still be the original's live lock (its
//! writer truncates and then writes, and holds no flock). What decides its fate is whether it
//! carries our marker and whether a pid can be read from it ([`salvage`]).

use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

/// A JSON string read as the bytes it encodes, lone surrogates included (as WTF-8).
pub(crate) struct JsonBytes(pub(crate) Vec<u8>);

impl<'de> de::Deserialize<'de> for JsonBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl Visitor<'_> for BytesVisitor {
            type Value = JsonBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<JsonBytes, E> {
                Ok(JsonBytes(v.as_bytes().to_vec()))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<JsonBytes, E> {
                Ok(JsonBytes(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<JsonBytes, E> {
                Ok(JsonBytes(v))
            }
        }
        // serde_json answers `deserialize_bytes` for a string with its raw bytes, escapes
        // decoded, lone surrogates as WTF-8 (where `deserialize_string` would fail).
        deserializer.deserialize_bytes(BytesVisitor)
    }
}

/// Puts back the bytes `surrogateescape` turned into `U+DC80..=U+DCFF`. Other lone
/// surrogates cannot come from a file name; they stay as their WTF-8 bytes.
pub(crate) fn unescape_surrogates(wtf8: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(wtf8.len());
    let mut rest = wtf8;
    loop {
        rest = match rest {
            // U+DC80..=U+DCBF is ED B2 80..=BF in WTF-8 and stands for the bytes 0x80..=0xBF;
            // U+DCC0..=U+DCFF is ED B3 80..=BF and stands for 0xC0..=0xFF.
            [0xED, middle @ 0xB2..=0xB3, last @ 0x80..=0xBF, after @ ..] => {
                out.push(if *middle == 0xB2 { *last } else { *last + 0x40 });
                after
            }
            [byte, after @ ..] => {
                out.push(*byte);
                after
            }
            [] => return out,
        };
    }
}

/// A scope entry as the original meant it: the path whose bytes its JSON string encodes.
pub(crate) fn path_from_json(bytes: JsonBytes) -> PathBuf {
    PathBuf::from(OsString::from_vec(unescape_surrogates(&bytes.0)))
}

/// Text for people: valid UTF-8 as is, every other byte as U+FFFD.
pub(crate) fn text_from_json(bytes: &JsonBytes) -> String {
    String::from_utf8_lossy(&unescape_surrogates(&bytes.0)).into_owned()
}

/// `path` as a JSON string, quotes included, written as the lock files write paths (the way
/// Python's `json.dump` writes `os.fsdecode(path)`): printable ASCII as is, other characters as
/// `\uXXXX` escapes, and each byte that is not UTF-8 as the lone surrogate `\udcXX`. Any file
/// name is then valid JSON, which [`deserialize_json_path`] (or Python's
/// `os.fsencode(json.loads(...))`) reads back byte for byte.
///
/// ```
/// use std::os::unix::ffi::OsStrExt;
/// let name = std::path::Path::new(std::ffi::OsStr::from_bytes(b"caf\xe9"));
/// assert_eq!(scope_lock::path_to_json(name), r#""caf\udce9""#);
/// ```
pub fn path_to_json(path: &Path) -> String {
    let mut out = String::new();
    push_json_path(&mut out, path);
    out
}

/// For serde's `deserialize_with`: a JSON string read back as the path whose bytes it encodes,
/// the reverse of [`path_to_json`]. Needs a deserializer that hands a string to
/// `deserialize_bytes` as its raw bytes, lone surrogates included, as `serde_json`'s does.
///
/// # Errors
///
/// The deserializer's error when the value is not a string.
pub fn deserialize_json_path<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<PathBuf, D::Error> {
    de::Deserialize::deserialize(deserializer).map(path_from_json)
}

/// Appends `path` as Python's `json.dump` writes the string `os.fsdecode(path)`:
/// printable ASCII as is, the short escapes, other characters as `\uXXXX` UTF-16 units, and
/// each byte that is not UTF-8 as the lone surrogate `\udcXX` of `surrogateescape`.
pub(crate) fn push_json_path(out: &mut String, path: &Path) {
    out.push('"');
    for chunk in path.as_os_str().as_bytes().utf8_chunks() {
        push_escaped(out, chunk.valid());
        for byte in chunk.invalid() {
            // Only bytes >= 0x80 can be invalid UTF-8.
            let _ = write!(out, "\\u{:04x}", 0xDC00 | u16::from(*byte));
        }
    }
    out.push('"');
}

/// Appends `s` as a JSON string the way Python's `json.dump` does with `ensure_ascii=True`.
pub(crate) fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    push_escaped(out, s);
    out.push('"');
}

fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Salvage
// ---------------------------------------------------------------------------------------------

/// What could be read from a file that is not a valid record.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Salvaged {
    /// It carries our `"liveness": "flock"`: only this crate writes that, always flocked.
    pub(crate) ours: bool,
    /// A process id from its `pid` key: a positive integer that fits a `pid_t`, or a string of
    /// decimal digits with that value.
    pub(crate) pid: Option<u32>,
}

/// Reads the top-level `pid` and `liveness` keys of a JSON object from `reader`, keeping what
/// was read before any error (a file cut short after its `pid` still tells its pid). Streams:
/// memory stays small whatever the file's size. Nesting deeper than serde_json's limit ends
/// the read there.
pub(crate) fn salvage(reader: impl Read) -> Salvaged {
    let mut found = Salvaged::default();
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let _ = TopLevel(&mut found).deserialize(&mut deserializer);
    found
}

/// The seed that walks the top-level object, writing what it finds as it goes.
struct TopLevel<'a>(&'a mut Salvaged);

impl<'de> DeserializeSeed<'de> for TopLevel<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a lock record object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<JsonBytes>()? {
            match key.0.as_slice() {
                b"pid" => self.0.pid = map.next_value::<PidValue>()?.0,
                b"liveness" => {
                    self.0.ours = map.next_value::<Option<JsonBytes>>()?.map(|v| v.0)
                        == Some(b"flock".to_vec());
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A `pid` value, if it names a process.
struct PidValue(Option<u32>);

impl<'de> de::Deserialize<'de> for PidValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PidVisitor;
        fn positive(n: i128) -> Option<u32> {
            (1..=i128::from(i32::MAX))
                .contains(&n)
                .then(|| u32::try_from(n).ok())
                .flatten()
        }
        impl<'de> Visitor<'de> for PidVisitor {
            type Value = PidValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a pid")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PidValue, E> {
                Ok(PidValue(positive(i128::from(v))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PidValue, E> {
                Ok(PidValue(positive(i128::from(v))))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<PidValue, E> {
                Ok(PidValue(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<PidValue, E> {
                Ok(PidValue(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<PidValue, E> {
                Ok(PidValue(None))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PidValue, E> {
                // Only digits: `parse` would also take a sign. An empty string fails `parse`.
                let digits = v.bytes().all(|b| b.is_ascii_digit());
                Ok(PidValue(
                    digits.then(|| v.parse().ok().and_then(positive)).flatten(),
                ))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<PidValue, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(PidValue(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PidValue, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(PidValue(None))
            }
        }
        deserializer.deserialize_any(PidVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<JsonBytes, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn surrogateescape_bytes_come_back_as_the_original_bytes() -> Result<(), serde_json::Error> {
        let path = path_from_json(read(r#""/r/caf\udce9/\u00e9\ud83d\ude00""#)?);
        assert_eq!(
            path.as_os_str().as_bytes(),
            b"/r/caf\xe9/\xc3\xa9\xf0\x9f\x98\x80"
        );
        // A high surrogate alone cannot come from a file name: kept as its WTF-8 bytes.
        let odd = path_from_json(read(r#""\ud800x""#)?);
        assert_eq!(odd.as_os_str().as_bytes(), b"\xed\xa0\x80x");
        assert_eq!(text_from_json(&read(r#""caf\udce9""#)?), "caf\u{fffd}");
        // The ends of the range, and the lone surrogates just outside it.
        let ends = path_from_json(read(r#""\udc80\udcbf\udcc0\udcff\udc7f\udd00""#)?);
        assert_eq!(
            ends.as_os_str().as_bytes(),
            b"\x80\xbf\xc0\xff\xed\xb1\xbf\xed\xb4\x80"
        );
        Ok(())
    }

    /// A scope entry or name that is not a string is refused with a message that says what
    /// was expected, which the record's error passes on.
    #[test]
    fn a_value_that_is_not_a_string_is_refused_saying_what_was_expected() {
        let err = read("[5]").map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("expected a string"), "{err}");
    }

    #[test]
    fn paths_are_written_as_python_writes_them_and_read_back_equal() -> Result<(), serde_json::Error>
    {
        let path = PathBuf::from(OsString::from_vec(
            b"/r/caf\xe9/\xc3\xa9 \"q\"\xff".to_vec(),
        ));
        let mut out = String::new();
        push_json_path(&mut out, &path);
        assert_eq!(out, r#""/r/caf\udce9/\u00e9 \"q\"\udcff""#);
        assert_eq!(path_from_json(read(&out)?), path);
        // The public pair says the same.
        assert_eq!(path_to_json(&path), out);
        let back = deserialize_json_path(&mut serde_json::Deserializer::from_str(&out))?;
        assert_eq!(back, path);
        Ok(())
    }

    #[test]
    fn salvage_reads_pid_and_marker_from_what_it_can() {
        let cases: &[(&[u8], Salvaged)] = &[
            (b"", Salvaged::default()),
            (b"[1, 2]", Salvaged::default()),
            (
                br#"{"pid": 42, "scope": 5}"#,
                Salvaged {
                    ours: false,
                    pid: Some(42),
                },
            ),
            (
                br#"{"scope": [], "pid": 42, "started_at": "2026-"#,
                Salvaged {
                    ours: false,
                    pid: Some(42),
                },
            ),
            (
                br#"{"pid": "42"}"#,
                Salvaged {
                    ours: false,
                    pid: Some(42),
                },
            ),
            (br#"{"pid": " 42"}"#, Salvaged::default()),
            (br#"{"pid": "+42"}"#, Salvaged::default()),
            (br#"{"pid": ""}"#, Salvaged::default()),
            (
                br#"{"pid": "000000000042"}"#,
                Salvaged {
                    ours: false,
                    pid: Some(42),
                },
            ),
            (br#"{"pid": "2147483648"}"#, Salvaged::default()),
            (
                br#"{"pid": "99999999999999999999999999999999999999999"}"#,
                Salvaged::default(),
            ),
            (br#"{"pid": 0}"#, Salvaged::default()),
            (br#"{"pid": -4}"#, Salvaged::default()),
            (br#"{"pid": 3000000000}"#, Salvaged::default()),
            (br#"{"pid": 1e3}"#, Salvaged::default()),
            (br#"{"pid": null}"#, Salvaged::default()),
            (br#"{"pid": [42]}"#, Salvaged::default()),
            (br#"{"x": {"pid": 42}}"#, Salvaged::default()),
            (
                br#"{"loop_name": "caf\udce9", "pid": 7}"#,
                Salvaged {
                    ours: false,
                    pid: Some(7),
                },
            ),
            (
                br#"{"pid": 7, "liveness": "flock", "scope": 1}"#,
                Salvaged {
                    ours: true,
                    pid: Some(7),
                },
            ),
            (br#"{"liveness": "lease"}"#, Salvaged::default()),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                salvage(*bytes),
                *expected,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        let deep = format!(
            r#"{{"pid": 9, "x": {}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(salvage(deep.as_bytes()).pid, Some(9));
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: if std::env::var("SCOPE_LOCK_SOAK").is_ok_and(|v| v == "1") { 100_000 } else { 1_000 },
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        })]

        /// Any path, UTF-8 or not, comes back byte for byte from the JSON we write for it,
        /// and salvage survives any bytes.
        #[test]
        fn any_path_round_trips_and_salvage_survives_any_bytes(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let path = PathBuf::from(OsString::from_vec(bytes.clone()));
            let mut json = String::new();
            push_json_path(&mut json, &path);
            let read = read(&json).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            proptest::prop_assert_eq!(path_from_json(read), path);
            let _ = salvage(bytes.as_slice());
        }
    }
}
