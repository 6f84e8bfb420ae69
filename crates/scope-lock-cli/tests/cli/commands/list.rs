//! `list`: its JSON and its table, of the populated directory.

use super::{Populated, longest_first, redact, redact_invalid_suffix};
use crate::support::TestResult;

#[test]
fn list_json_has_the_documented_shape() -> TestResult {
    let p = Populated::new()?;
    let out = p.sandbox.run(&["list", "--json"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let value: serde_json::Value = serde_json::from_str(&out.stdout)?;
    // The moved-aside file is named after the pid of the scanning `list` process.
    let text = redact_invalid_suffix(&redact(&out.stdout, &p.sandbox, &p.pids())?);
    insta::assert_snapshot!("list_json", text);
    assert_eq!(value["locks"].as_array().map(Vec::len), Some(2));
    p.finish();
    Ok(())
}

#[test]
fn list_prints_holders_problems_and_what_clean_would_do() -> TestResult {
    let p = Populated::new()?;
    let out = p.sandbox.run(&["list"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let text = redact(&out.stdout, &p.sandbox, &p.pids())?;
    // Column widths follow the pids' lengths; the table layout itself is unit-tested.
    let mut text: String = redact_invalid_suffix(&text)
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" ") + "\n")
        .collect();
    for pid in longest_first(&p.pids()) {
        text = text.replace(&format!(" {pid} "), " [pid] ");
    }
    insta::assert_snapshot!("list_text", text);
    p.finish();
    Ok(())
}
