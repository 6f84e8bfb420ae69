//! The accepted-survivors file, [`ACCEPTED_FILE`](super::ACCEPTED_FILE): each survivor a
//! reviewer accepted, with the reason no test can or should catch it.

use std::collections::BTreeSet;

use anyhow::bail;
use serde::{Deserialize, Serialize};

/// One accepted survivor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Accepted {
    /// The source file, relative to the workspace root.
    pub(crate) file: String,
    /// The mutant's description as cargo-mutants names it, without file, line and column.
    pub(crate) mutant: String,
    /// Why no test can or should catch it, in one line a reviewer can check.
    pub(crate) reason: String,
}

/// Reads the accepted-survivors file: `[[accepted]]` tables with `file`, `mutant` and a
/// one-line `reason`, each mutant listed once.
pub(crate) fn parse_accepted(text: &str) -> anyhow::Result<Vec<Accepted>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        accepted: Vec<Accepted>,
    }
    let file: File = toml::from_str(text)?;
    let mut seen = BTreeSet::new();
    for entry in &file.accepted {
        let what = format!("{}: {}", entry.file, entry.mutant);
        if entry.file.is_empty() || entry.mutant.is_empty() {
            bail!("an entry has an empty file or mutant: {what:?}");
        }
        if entry.reason.trim().is_empty() || entry.reason.contains('\n') {
            bail!("{what}: the reason must be one non-empty line");
        }
        if !seen.insert((entry.file.as_str(), entry.mutant.as_str())) {
            bail!("{what} is listed twice");
        }
    }
    Ok(file.accepted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        mutants::{ACCEPTED_FILE, fixtures::A},
        project_root,
    };

    #[test]
    fn the_accepted_file_needs_a_reason_per_entry_and_no_duplicates() -> anyhow::Result<()> {
        let entry = |reason: &str| {
            format!(
                "[[accepted]]\nfile = \"{A}\"\nmutant = \"replace f -> bool with true\"\nreason = {reason:?}\n"
            )
        };
        let good = parse_accepted(&entry("equivalent: the caller checks it again"))?;
        assert_eq!(good.len(), 1);
        assert!(parse_accepted("")?.is_empty());
        assert!(parse_accepted(&entry("")).is_err());
        assert!(parse_accepted(&entry("two\nlines")).is_err());
        let twice = entry("a") + &entry("b");
        assert!(
            parse_accepted(&twice)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        let unknown_key = entry("a") + "note = \"x\"\n";
        assert!(parse_accepted(&unknown_key).is_err());
        Ok(())
    }

    /// The checked-in list parses, and names only files that exist.
    #[test]
    fn the_repositorys_accepted_survivors_are_well_formed() -> anyhow::Result<()> {
        let root = project_root();
        let text = std::fs::read_to_string(root.join(ACCEPTED_FILE))?;
        for entry in parse_accepted(&text)? {
            assert!(
                root.join(&entry.file).is_file(),
                "{ACCEPTED_FILE}: {} does not exist",
                entry.file
            );
        }
        Ok(())
    }
}
