//! What the commands print: text for people (the one-line description of a holder, scopes and
//! paths on a line) and the writing of it, here; the JSON documents in the files below, one
//! per command that prints one (their shape is documented in docs/cli.md, "JSON output", and
//! snapshot-tested; change it only by adding keys):
//!
//! - `json.rs`: what every document shares: paths ([`JsonPath`](json::JsonPath)), the version, a record;
//! - `listing.rs`: `list --json` and `clean --json`, on a loops directory and on etcd;
//! - `check.rs`: `check --json`, and the conflict that `run --json` reports too;
//! - `run.rs`: `run --json`;
//! - `brk.rs`: `break --json`.
//!
//! File names are bytes, not text. The JSON documents write every path and lock name as the
//! lock files do ([`JsonPath`](json::JsonPath)), so any name gives valid JSON that reads back byte for byte;
//! text for people shows a byte that is not UTF-8 as U+FFFD.

use std::io::{self, Write};
use std::path::PathBuf;

use scope_lock::LockRecord;
use serde::Serialize;

use crate::exit::{self, Failure};

mod brk;
mod check;
mod json;
mod listing;
mod run;

pub(crate) use brk::BreakJson;
pub(crate) use check::CheckJson;
pub(crate) use listing::{EtcdListingJson, ListingJson};
pub(crate) use run::RunJson;

/// A record's scope entries, each pattern marked as one.
pub(crate) fn scope_text(record: &LockRecord) -> String {
    record
        .scope_paths()
        .iter()
        .map(|entry| {
            let text = entry.to_string_lossy();
            if scope_lock::is_pattern(entry) {
                format!("{text} (pattern)")
            } else {
                text.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `loop L, instance I, pid P, since T`.
pub(crate) fn describe_holder(name: &str, record: &LockRecord) -> String {
    format!(
        "loop `{}`, instance `{name}`, pid {}, since {}",
        record.loop_name(),
        record.pid(),
        record.started_at()
    )
}

/// Writes a JSON document and a newline to stdout; a closed pipe (`| head`) is not worth a
/// failure, as for [`print_text`].
pub(crate) fn print_json(value: &impl Serialize) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    let written = serde_json::to_writer_pretty(&mut out, value)
        .map_err(io::Error::from)
        .and_then(|()| writeln!(out));
    stdout_outcome(written)
}

/// Writes a JSON document on one line to stderr (for `run`, whose stdout is CMD's). Nothing is
/// left to report a failure to.
pub(crate) fn print_json_line_to_stderr(value: &impl Serialize) {
    let mut err = io::stderr().lock();
    let _ = serde_json::to_writer(&mut err, value)
        .map_err(io::Error::from)
        .and_then(|()| writeln!(err));
}

/// Paths as one line for people: a byte that is not UTF-8 shows as U+FFFD
/// (the JSON output has the bytes).
pub(crate) fn paths_text(entries: &[PathBuf]) -> String {
    let texts: Vec<_> = entries
        .iter()
        .map(|entry| entry.to_string_lossy())
        .collect();
    texts.join(" ")
}

/// Writes text to stdout; a closed pipe (`| head`) is not worth a failure.
pub(crate) fn print_text(text: &str) -> Result<(), Failure> {
    stdout_outcome(io::stdout().lock().write_all(text.as_bytes()))
}

/// What a write to stdout comes to: a reader that stopped early (`| head`) took what it
/// wanted, so only other errors fail the command.
fn stdout_outcome(written: io::Result<()>) -> Result<(), Failure> {
    match written {
        Err(err) if err.kind() != io::ErrorKind::BrokenPipe => Err(Failure::new(
            exit::FAILURE,
            format!("cannot write to stdout: {}", exit::os_reason(&err)),
        )),
        _ => Ok(()),
    }
}
