//! Judging a run: a pure function from the mutants generated, their fates and the accepted
//! list to a [`Verdict`], with counts per file. No files, no processes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{
    LIBRARY_SRC,
    accepted::Accepted,
    outcomes::{Fate, Mutant, Stage, Tested},
};

/// Which accepted entries a run can judge as gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Coverage {
    /// Every mutant of these files or directories was generated: an entry for them that
    /// matches no generated mutant is stale.
    Paths(Vec<String>),
    /// Only mutants on the lines changed since the merge base with this revision were
    /// generated: an entry can be judged only when its mutant was among them.
    Diff(String),
}

impl Coverage {
    fn covers_all_of(&self, file: &str) -> bool {
        match self {
            Coverage::Paths(paths) => paths.iter().any(|path| {
                file == path
                    || file
                        .strip_prefix(path.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }),
            Coverage::Diff(_) => false,
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Coverage::Paths(paths) if paths == &[LIBRARY_SRC] => {
                format!("the whole library ({LIBRARY_SRC})")
            }
            Coverage::Paths(paths) => paths.join(", "),
            Coverage::Diff(base) => format!("lines changed since the merge base with {base}"),
        }
    }
}

/// Counts for one file (or the total).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counts {
    pub(crate) file: String,
    pub(crate) caught: usize,
    /// Of `caught`, those that only the workspace's tests caught (stage 2).
    #[serde(default)]
    pub(crate) caught_by_workspace: usize,
    /// Survivors not listed in the accepted file.
    pub(crate) missed: usize,
    /// Survivors listed in the accepted file.
    pub(crate) accepted: usize,
    pub(crate) timeout: usize,
    pub(crate) unviable: usize,
    pub(crate) unclassified: usize,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.caught += other.caught;
        self.caught_by_workspace += other.caught_by_workspace;
        self.missed += other.missed;
        self.accepted += other.accepted;
        self.timeout += other.timeout;
        self.unviable += other.unviable;
        self.unclassified += other.unclassified;
    }
}

/// A survivor with the reason it is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AcceptedSurvivor {
    pub(crate) mutant: String,
    pub(crate) reason: String,
}

/// An accepted entry that does not describe a survivor of this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StaleEntry {
    pub(crate) file: String,
    pub(crate) mutant: String,
    pub(crate) why: String,
}

/// The judgement of one run.
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Verdict {
    pub(crate) files: Vec<Counts>,
    /// Survivors not in the accepted file: each is a behaviour no test pins down, or code
    /// that makes no difference.
    pub(crate) unlisted_survivors: Vec<String>,
    pub(crate) accepted_survivors: Vec<AcceptedSurvivor>,
    /// Mutants that survived the library's tests and that only the workspace's caught: the
    /// library's own tests do not pin these behaviours down.
    #[serde(default)]
    pub(crate) caught_by_workspace: Vec<String>,
    pub(crate) stale_entries: Vec<StaleEntry>,
    /// Mutants generated but never tested (an interrupted run).
    pub(crate) not_run: Vec<String>,
    /// Mutants cargo-mutants could not classify.
    pub(crate) unclassified: Vec<String>,
}

impl Verdict {
    pub(crate) fn passed(&self) -> bool {
        self.unlisted_survivors.is_empty()
            && self.stale_entries.is_empty()
            && self.not_run.is_empty()
            && self.unclassified.is_empty()
    }

    pub(super) fn totals(&self) -> Counts {
        let mut total = Counts {
            file: "total".to_owned(),
            ..Counts::default()
        };
        for counts in &self.files {
            total.add(counts);
        }
        total
    }
}

/// Judges a run: every survivor must be accepted, every accepted entry that the run can judge
/// must still be a survivor, and every generated mutant must have been tested.
pub(crate) fn judge(
    generated: &[Mutant],
    results: &[Tested],
    accepted: &[Accepted],
    coverage: &Coverage,
) -> Verdict {
    let mut verdict = Verdict::default();
    let mut per_file: BTreeMap<&str, Counts> = BTreeMap::new();
    let reason_of = |mutant: &Mutant| {
        accepted
            .iter()
            .find(|entry| (entry.file.as_str(), entry.mutant.as_str()) == mutant.key())
            .map(|entry| entry.reason.clone())
    };
    for Tested {
        mutant,
        fate,
        stage,
    } in results
    {
        let counts = per_file
            .entry(mutant.file.as_str())
            .or_insert_with(|| Counts {
                file: mutant.file.clone(),
                ..Counts::default()
            });
        match fate {
            Fate::Caught => {
                counts.caught += 1;
                if *stage == Stage::Workspace {
                    counts.caught_by_workspace += 1;
                    verdict.caught_by_workspace.push(mutant.name.clone());
                }
            }
            Fate::Missed => match reason_of(mutant) {
                Some(reason) => {
                    counts.accepted += 1;
                    verdict.accepted_survivors.push(AcceptedSurvivor {
                        mutant: mutant.name.clone(),
                        reason,
                    });
                }
                None => {
                    counts.missed += 1;
                    verdict.unlisted_survivors.push(mutant.name.clone());
                }
            },
            Fate::Timeout => counts.timeout += 1,
            Fate::Unviable => counts.unviable += 1,
            Fate::Unclassified => {
                counts.unclassified += 1;
                verdict.unclassified.push(mutant.name.clone());
            }
        }
    }
    verdict.files = per_file.into_values().collect();

    let tested: BTreeSet<&str> = results.iter().map(|it| it.mutant.name.as_str()).collect();
    verdict.not_run = generated
        .iter()
        .filter(|m| !tested.contains(m.name.as_str()))
        .map(|m| m.name.clone())
        .collect();

    for entry in accepted {
        let key = (entry.file.as_str(), entry.mutant.as_str());
        let fates: Vec<Fate> = results
            .iter()
            .filter(|it| it.mutant.key() == key)
            .map(|it| it.fate)
            .collect();
        let was_generated = generated.iter().any(|m| m.key() == key);
        let why = if fates.contains(&Fate::Missed) {
            continue;
        } else if let Some(fate) = fates.first() {
            format!("it is {} now; remove the entry", fate.as_str())
        } else if !was_generated && coverage.covers_all_of(&entry.file) {
            "no such mutant is generated any more; remove or update the entry".to_owned()
        } else {
            // Not in this run (another file, or outside the diff), or generated but not run
            // (reported as not run): nothing to say about it.
            continue;
        };
        verdict.stale_entries.push(StaleEntry {
            file: entry.file.clone(),
            mutant: entry.mutant.clone(),
            why,
        });
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutants::fixtures::*;

    #[test]
    fn an_unlisted_survivor_fails_and_a_listed_one_passes() {
        let survivor = mutant(A, 10, "replace == with != in f");
        let caught = mutant(B, 20, "replace g -> bool with true");
        let generated = [survivor.clone(), caught.clone()];
        let results = [lib(&survivor, Fate::Missed), lib(&caught, Fate::Caught)];

        let verdict = judge(&generated, &results, &[], &library());
        assert!(!verdict.passed());
        assert_eq!(verdict.unlisted_survivors, [survivor.name]);
        assert_eq!(verdict.files.len(), 2);
        assert_eq!(
            (verdict.files[0].file.as_str(), verdict.files[0].missed),
            (A, 1)
        );
        assert_eq!(
            (verdict.files[1].file.as_str(), verdict.files[1].caught),
            (B, 1)
        );

        // Listed under its description, at any line: the survivor moved from line 10 to 14.
        let moved = mutant(A, 14, "replace == with != in f");
        let results = [lib(&moved, Fate::Missed), lib(&caught, Fate::Caught)];
        let list = [accepted(A, "replace == with != in f")];
        let verdict = judge(
            &[moved.clone(), caught.clone()],
            &results,
            &list,
            &library(),
        );
        assert!(verdict.passed(), "{verdict:?}");
        assert!(verdict.unlisted_survivors.is_empty());
        assert_eq!(verdict.files[0].accepted, 1);
        assert_eq!(verdict.files[0].missed, 0);
        assert_eq!(verdict.accepted_survivors[0].mutant, moved.name);
        assert_eq!(verdict.accepted_survivors[0].reason, list[0].reason);
        assert_eq!(verdict.totals().accepted, 1);
        assert_eq!(verdict.totals().caught, 1);
    }

    #[test]
    fn an_entry_for_a_mutant_that_is_gone_or_caught_fails() {
        let caught = mutant(A, 10, "replace == with != in f");
        let results = [lib(&caught, Fate::Caught)];
        let list = [
            accepted(A, "replace == with != in f"),
            accepted(A, "replace f -> bool with false"),
        ];
        let verdict = judge(&[caught], &results, &list, &library());
        assert!(!verdict.passed());
        let stale: Vec<(&str, &str)> = verdict
            .stale_entries
            .iter()
            .map(|it| (it.mutant.as_str(), it.why.as_str()))
            .collect();
        assert_eq!(stale.len(), 2, "{stale:?}");
        assert!(stale[0].1.contains("caught now"), "{stale:?}");
        assert!(stale[1].1.contains("no such mutant"), "{stale:?}");
    }

    #[test]
    fn entries_are_judged_gone_only_for_files_that_were_run_whole() {
        let m = mutant(A, 10, "replace == with != in f");
        let results = [lib(&m, Fate::Caught)];
        let gone_in_b = [accepted(B, "replace h -> bool with true")];
        // Only a.rs was run: b.rs's entry cannot be judged.
        let only_a = Coverage::Paths(vec![A.to_owned()]);
        assert!(judge(std::slice::from_ref(&m), &results, &gone_in_b, &only_a).passed());
        // The whole library was run: it is gone.
        assert!(!judge(std::slice::from_ref(&m), &results, &gone_in_b, &library()).passed());
        // A directory covers the files below it, and only those.
        let dir = Coverage::Paths(vec!["crates/scope-lock/src/sys".to_owned()]);
        assert!(dir.covers_all_of("crates/scope-lock/src/sys/unix.rs"));
        assert!(!dir.covers_all_of("crates/scope-lock/src/sysfoo.rs"));
        // A diff generates only the mutants of changed lines: absence proves nothing ...
        let diff = Coverage::Diff("main".to_owned());
        assert!(judge(std::slice::from_ref(&m), &results, &gone_in_b, &diff).passed());
        // ... but a listed mutant that was generated and caught is still stale.
        let caught_in_a = [accepted(A, "replace == with != in f")];
        assert!(!judge(&[m], &results, &caught_in_a, &diff).passed());
    }

    #[test]
    fn timeouts_and_unviable_mutants_are_counted_not_failed() {
        let hang = mutant(A, 1, "replace += with *= in f");
        let broken = mutant(A, 2, "replace f -> Foo with Default::default()");
        let results = [lib(&hang, Fate::Timeout), lib(&broken, Fate::Unviable)];
        let verdict = judge(&[hang, broken], &results, &[], &library());
        assert!(verdict.passed(), "{verdict:?}");
        assert_eq!(
            (verdict.files[0].timeout, verdict.files[0].unviable),
            (1, 1)
        );
    }

    #[test]
    fn a_mutant_generated_but_not_tested_fails() {
        let tested = mutant(A, 1, "replace f -> bool with true");
        let skipped = mutant(A, 2, "replace f -> bool with false");
        let results = [lib(&tested, Fate::Caught)];
        let verdict = judge(&[tested, skipped.clone()], &results, &[], &library());
        assert!(!verdict.passed());
        assert_eq!(verdict.not_run, [skipped.name]);
    }
}
