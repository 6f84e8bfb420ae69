//! Mutants, accepted entries and results built in memory for the tests of the modules beside
//! this one.

use super::{
    LIBRARY_SRC,
    accepted::Accepted,
    judge::Coverage,
    outcomes::{Fate, Mutant, Stage, Tested},
};

pub(super) fn mutant(file: &str, line: u32, description: &str) -> Mutant {
    Mutant {
        file: file.to_owned(),
        name: format!("{file}:{line}:5: {description}"),
    }
}

pub(super) fn accepted(file: &str, mutant: &str) -> Accepted {
    Accepted {
        file: file.to_owned(),
        mutant: mutant.to_owned(),
        reason: "equivalent: both orders end in the same unlink".to_owned(),
    }
}

/// Decided by stage 1, the library's tests.
pub(super) fn lib(mutant: &Mutant, fate: Fate) -> Tested {
    Tested {
        mutant: mutant.clone(),
        fate,
        stage: Stage::Library,
    }
}

pub(super) const A: &str = "crates/scope-lock/src/a.rs";
pub(super) const B: &str = "crates/scope-lock/src/b.rs";

pub(super) fn library() -> Coverage {
    Coverage::Paths(vec![LIBRARY_SRC.to_owned()])
}
