//! What cargo-mutants wrote, read: every mutant generated (`mutants.json`) and the fate of
//! each tested (`outcomes.json`); then stage 1's and stage 2's results combined into one.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// One mutant, as cargo-mutants names it: `<file>:<line>:<column>: <description>`. The
/// description (`replace < with <= in validate_name`) is what the accepted file quotes: line
/// numbers move with every edit above the mutant, the description does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mutant {
    pub(crate) file: String,
    pub(crate) name: String,
}

impl Mutant {
    /// The name without `<file>:<line>:<column>: `.
    pub(crate) fn description(&self) -> &str {
        let rest = self.name.strip_prefix(&self.file).unwrap_or(&self.name);
        let mut parts = rest.splitn(4, ':');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(""), Some(line), Some(column), Some(description))
                if line.bytes().all(|b| b.is_ascii_digit())
                    && column.bytes().all(|b| b.is_ascii_digit()) =>
            {
                description.trim_start()
            }
            _ => rest,
        }
    }

    pub(super) fn key(&self) -> (&str, &str) {
        (&self.file, self.description())
    }
}

/// What became of a mutant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Fate {
    /// A test failed: the mutant was caught.
    Caught,
    /// Every test passed: the mutant survived.
    Missed,
    /// The tests ran past the timeout (most often a mutant that makes a loop endless).
    Timeout,
    /// It did not build.
    Unviable,
    /// Anything else cargo-mutants reports (it should not happen).
    Unclassified,
}

impl Fate {
    fn from_summary(summary: &str) -> Fate {
        match summary {
            "CaughtMutant" => Fate::Caught,
            "MissedMutant" => Fate::Missed,
            "Timeout" => Fate::Timeout,
            "Unviable" => Fate::Unviable,
            _ => Fate::Unclassified,
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Fate::Caught => "caught",
            Fate::Missed => "missed",
            Fate::Timeout => "timeout",
            Fate::Unviable => "unviable",
            Fate::Unclassified => "unclassified",
        }
    }
}

#[derive(Deserialize)]
struct RawMutant {
    name: String,
    file: String,
}

impl From<RawMutant> for Mutant {
    fn from(raw: RawMutant) -> Mutant {
        Mutant {
            file: raw.file,
            name: raw.name,
        }
    }
}

/// `mutants.out/mutants.json`: every mutant generated, written before testing starts.
pub(crate) fn read_generated(json: &str) -> anyhow::Result<Vec<Mutant>> {
    let raw: Vec<RawMutant> =
        serde_json::from_str(json).context("mutants.json is not a list of mutants")?;
    Ok(raw.into_iter().map(Mutant::from).collect())
}

/// `mutants.out/outcomes.json`: the fate of each mutant tested, and the cargo-mutants version.
/// A baseline that did not succeed is an error: no mutant's fate means anything then.
pub(crate) fn read_outcomes(json: &str) -> anyhow::Result<(Vec<(Mutant, Fate)>, String)> {
    #[derive(Deserialize)]
    struct Outcomes {
        outcomes: Vec<Outcome>,
        cargo_mutants_version: String,
    }
    #[derive(Deserialize)]
    struct Outcome {
        scenario: Scenario,
        summary: String,
    }
    #[derive(Deserialize)]
    enum Scenario {
        Baseline,
        Mutant(RawMutant),
    }
    let parsed: Outcomes =
        serde_json::from_str(json).context("outcomes.json is not cargo-mutants' outcomes")?;
    let mut results = Vec::new();
    for outcome in parsed.outcomes {
        match outcome.scenario {
            Scenario::Baseline if outcome.summary != "Success" => {
                bail!(
                    "the baseline (no mutation) ended in {}: the tests must pass first",
                    outcome.summary
                )
            }
            Scenario::Baseline => {}
            Scenario::Mutant(raw) => {
                results.push((Mutant::from(raw), Fate::from_summary(&outcome.summary)));
            }
        }
    }
    Ok((results, parsed.cargo_mutants_version))
}

/// Whose tests decided a mutant's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Stage {
    /// Stage 1: the library's own tests (unit, integration and doc tests of scope-lock).
    Library,
    /// Stage 2: the workspace's tests, for the survivors of stage 1.
    Workspace,
}

/// A mutant, its fate, and the stage that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tested {
    pub(crate) mutant: Mutant,
    pub(crate) fate: Fate,
    pub(crate) stage: Stage,
}

/// Which mutants of stage 1 stage 2 tests again: the survivors. A timeout is not one (the
/// library's tests already hang on it, and the workspace's would only take longer to), nor is
/// a mutant that does not build.
pub(crate) fn to_retest(first: &[(Mutant, Fate)]) -> Vec<Mutant> {
    first
        .iter()
        .filter(|(_, fate)| *fate == Fate::Missed)
        .map(|(mutant, _)| mutant.clone())
        .collect()
}

/// Both stages' results as one.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Combined {
    pub(crate) results: Vec<Tested>,
    /// Survivors of stage 1 that stage 2 should have tested and did not (an interrupted run).
    pub(crate) not_retested: Vec<String>,
}

/// Combines stage 1's results with stage 2's (`None` when stage 2 did not run): a survivor of
/// stage 1 takes its fate from stage 2, every other mutant keeps its fate from stage 1.
///
/// Stage 2's results may hold mutants it was not asked for: cargo-mutants 27.1.0 applies no
/// `--re` to struct-field deletions (sourcefrog/cargo-mutants#632), so it tests those of the
/// survivors' files again. They are ignored here; stage 1 already judged them.
pub(crate) fn combine(first: Vec<(Mutant, Fate)>, second: Option<Vec<(Mutant, Fate)>>) -> Combined {
    let mut combined = Combined {
        results: Vec::with_capacity(first.len()),
        not_retested: Vec::new(),
    };
    for (mutant, fate) in first {
        let retested = match &second {
            Some(second) if fate == Fate::Missed => {
                let found = second.iter().find(|(m, _)| m.name == mutant.name);
                if found.is_none() {
                    combined.not_retested.push(mutant.name.clone());
                }
                found.map(|(_, fate)| *fate)
            }
            _ => None,
        };
        combined.results.push(match retested {
            Some(fate) => Tested {
                mutant,
                fate,
                stage: Stage::Workspace,
            },
            None => Tested {
                mutant,
                fate,
                stage: Stage::Library,
            },
        });
    }
    combined
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutants::{fixtures::*, judge::judge};

    #[test]
    fn the_description_is_the_name_without_file_line_and_column() {
        let m = mutant(A, 12, "replace < with <= in validate_name");
        assert_eq!(m.description(), "replace < with <= in validate_name");
        // A description may itself hold colons.
        let m = mutant(A, 3, "replace Foo::bar -> Result<(), String> with Ok(())");
        assert_eq!(
            m.description(),
            "replace Foo::bar -> Result<(), String> with Ok(())"
        );
    }

    #[test]
    fn stage_2_retests_only_the_survivors_and_decides_their_fate() {
        let caught = mutant(A, 1, "replace f -> bool with true");
        let survivor = mutant(A, 2, "replace f -> bool with false");
        let confirmed = mutant(A, 3, "replace == with != in f");
        let hang = mutant(B, 4, "replace += with *= in g");
        let broken = mutant(B, 5, "replace g -> Foo with Default::default()");
        let first = vec![
            (caught.clone(), Fate::Caught),
            (survivor.clone(), Fate::Missed),
            (confirmed.clone(), Fate::Missed),
            (hang.clone(), Fate::Timeout),
            (broken.clone(), Fate::Unviable),
        ];
        assert_eq!(to_retest(&first), [survivor.clone(), confirmed.clone()]);

        // Stage 2 also reports a mutant it was not asked for (cargo-mutants 27.1.0 tests every
        // struct-field deletion whatever `--re` says); stage 1's fate for it stands.
        let second = vec![
            (survivor.clone(), Fate::Caught),
            (confirmed.clone(), Fate::Missed),
            (caught.clone(), Fate::Missed),
        ];
        let combined = combine(first.clone(), Some(second));
        assert!(combined.not_retested.is_empty());
        let fates: Vec<(Fate, Stage)> = combined
            .results
            .iter()
            .map(|it| (it.fate, it.stage))
            .collect();
        assert_eq!(
            fates,
            [
                (Fate::Caught, Stage::Library),
                (Fate::Caught, Stage::Workspace),
                (Fate::Missed, Stage::Workspace),
                (Fate::Timeout, Stage::Library),
                (Fate::Unviable, Stage::Library),
            ]
        );
        let generated = [caught, survivor.clone(), confirmed.clone(), hang, broken];
        let verdict = judge(&generated, &combined.results, &[], &library());
        assert!(!verdict.passed());
        assert_eq!(
            verdict.unlisted_survivors,
            std::slice::from_ref(&confirmed.name)
        );
        assert_eq!(
            verdict.caught_by_workspace,
            std::slice::from_ref(&survivor.name)
        );
        let totals = verdict.totals();
        assert_eq!(
            (totals.caught, totals.caught_by_workspace, totals.missed),
            (2, 1, 1)
        );
        assert_eq!((totals.timeout, totals.unviable), (1, 1));

        // Without stage 2 (`--lib-tests`), a survivor of stage 1 stays one.
        let combined = combine(first.clone(), None);
        assert!(combined.not_retested.is_empty());
        assert!(combined.results.iter().all(|it| it.stage == Stage::Library));
        let verdict = judge(&generated, &combined.results, &[], &library());
        assert_eq!(verdict.unlisted_survivors.len(), 2);

        // A survivor that stage 2 did not get to is reported, not passed.
        let combined = combine(first, Some(vec![(survivor, Fate::Caught)]));
        assert_eq!(combined.not_retested, std::slice::from_ref(&confirmed.name));
        let missed = combined.results.iter().find(|it| it.mutant == confirmed);
        assert_eq!(
            missed.map(|it| (it.fate, it.stage)),
            Some((Fate::Missed, Stage::Library))
        );
    }

    #[test]
    fn reads_cargo_mutants_output() -> anyhow::Result<()> {
        // The shape cargo-mutants 27.1.0 writes (fields we do not read trimmed).
        let outcomes = r#"{
          "outcomes": [
            {"scenario": "Baseline", "summary": "Success", "log_path": "log/baseline.log"},
            {"scenario": {"Mutant": {"name": "crates/scope-lock/src/a.rs:3:9: replace f -> bool with true",
              "package": "scope-lock", "file": "crates/scope-lock/src/a.rs",
              "function": {"function_name": "f", "return_type": "-> bool"},
              "replacement": "true", "genre": "FnValue"}},
             "summary": "MissedMutant"},
            {"scenario": {"Mutant": {"name": "crates/scope-lock/src/a.rs:4:9: replace f -> bool with false",
              "file": "crates/scope-lock/src/a.rs"}}, "summary": "CaughtMutant"}
          ],
          "total_mutants": 2, "missed": 1, "caught": 1, "timeout": 0, "unviable": 0,
          "cargo_mutants_version": "27.1.0"
        }"#;
        let (results, version) = read_outcomes(outcomes)?;
        assert_eq!(version, "27.1.0");
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].1, Fate::Missed);
        assert_eq!(results[0].0.description(), "replace f -> bool with true");
        assert_eq!(results[1].1, Fate::Caught);

        let failed_baseline = outcomes.replacen(r#""Success""#, r#""Failure""#, 1);
        let err = read_outcomes(&failed_baseline).map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("baseline"), "{err}");

        let generated = read_generated(
            r#"[{"name": "crates/scope-lock/src/a.rs:3:9: replace f -> bool with true",
                 "file": "crates/scope-lock/src/a.rs", "diff": "--- ..."}]"#,
        )?;
        assert_eq!(generated[0].file, A);
        Ok(())
    }
}
