//! The loops directory: which one the user named (flag, environment or default), and the
//! refusal to look into one that does not exist.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::exit::{self, Failure};

/// The environment variable that names the loops directory when `--loops-dir` does not.
pub(crate) const LOOPS_DIR_VAR: &str = "SCOPE_LOCK_LOOPS_DIR";

/// Where the loops directory came from: messages name what the user typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Flag,
    Env,
    Default,
}

/// The loops directory, absolute, and where it was named.
#[derive(Debug)]
pub(crate) struct LoopsDir {
    path: PathBuf,
    origin: Origin,
}

impl LoopsDir {
    /// The absolute path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `--loops-dir`, else the environment variable's value, else `.loops`; made absolute, as
    /// the original's command line does, so that the paths in messages and JSON do not depend
    /// on where they are read. An empty value is a usage error naming the flag or the variable
    /// it came from.
    pub(crate) fn choose(flag: Option<OsString>, env: Option<OsString>) -> Result<Self, Failure> {
        let (value, origin) = match (flag, env) {
            (Some(flag), _) => (flag, Origin::Flag),
            (None, Some(env)) => (env, Origin::Env),
            (None, None) => (
                OsString::from(scope_lock::DEFAULT_LOOPS_DIR),
                Origin::Default,
            ),
        };
        if value.is_empty() {
            let message = match origin {
                Origin::Env => format!(
                    "{LOOPS_DIR_VAR} is set but empty; unset it, or set it to the loops directory"
                ),
                _ => "--loops-dir is empty; give it the loops directory".to_owned(),
            };
            return Err(Failure::new(exit::USAGE, message));
        }
        let given = PathBuf::from(value);
        let path = std::path::absolute(&given).map_err(|err| {
            Failure::new(
                exit::FAILURE,
                format!(
                    "cannot resolve the loops directory {}: {}",
                    given.display(),
                    exit::os_reason(&err)
                ),
            )
        })?;
        Ok(Self { path, origin })
    }

    /// Fails when the loops directory does not exist: a look into a directory that is not
    /// there would report every scope free, and the likelier truth is a mistyped name or the
    /// wrong current directory. (Anything else wrong with it is left to the library, whose
    /// error names the path.)
    pub(crate) fn ensure_exists(&self) -> Result<(), Failure> {
        match std::fs::metadata(&self.path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let named = match self.origin {
                    Origin::Flag => "named by --loops-dir".to_owned(),
                    Origin::Env => format!("named by {LOOPS_DIR_VAR}"),
                    Origin::Default => "the default".to_owned(),
                };
                Err(Failure::new(
                    exit::FAILURE,
                    format!(
                        "the loops directory {} ({named}) does not exist: no lock has ever \
                         been taken there. Check its spelling and the current directory; \
                         `scope-lock run` creates it",
                        self.path.display()
                    ),
                ))
            }
            _ => Ok(()),
        }
    }
}
