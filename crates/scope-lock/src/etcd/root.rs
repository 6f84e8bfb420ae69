//! The project root: what makes scopes mean the same in every clone. A record in etcd holds
//! its scope relative to the root; each client resolves a request against its own root, and
//! rebases the holders' scopes onto it before deciding, so the overlap rules compare absolute
//! paths exactly as they do locally.

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind};
use crate::scope;

/// A project root, resolved (symlinks followed, as scope entries are).
#[derive(Debug, Clone)]
pub(crate) struct Root {
    path: String,
}

impl Root {
    /// `given`, or else the git toplevel of the current directory: the nearest directory, from
    /// the current one up, that has a `.git` entry (a directory, or the file of a worktree).
    pub(crate) fn find(given: Option<&Path>) -> Result<Self, Error> {
        let cwd = scope::current_dir()?;
        let root = match given {
            Some(root) => cwd.join(root),
            None => cwd
                .ancestors()
                .find(|dir| dir.join(".git").symlink_metadata().is_ok())
                .map(Path::to_path_buf)
                .ok_or_else(|| {
                    Error::at_path(
                        ErrorKind::InvalidScope,
                        &cwd,
                        "is not inside a git work tree, so the etcd project root is unknown: \
                         give it (EtcdConfig::with_root, `--root`)",
                    )
                })?,
        };
        let resolved = std::fs::canonicalize(&root)
            .map_err(|err| Error::io("cannot resolve the project root", &root, err))?;
        let path = resolved.into_os_string().into_string().map_err(|raw| {
            Error::at_path(
                ErrorKind::InvalidScope,
                Path::new(&raw),
                "the project root is not UTF-8, so scopes under it cannot be recorded",
            )
        })?;
        Ok(Self { path })
    }

    /// The root.
    pub(crate) fn path(&self) -> &Path {
        Path::new(&self.path)
    }

    /// `absolute` (normalised) relative to the root: `.` for the root itself; `None` outside.
    pub(crate) fn relative(&self, absolute: &str) -> Option<String> {
        if absolute == self.path {
            return Some(".".to_owned());
        }
        let rest = if self.path == "/" {
            absolute.strip_prefix('/')
        } else {
            absolute.strip_prefix(self.path.as_str())?.strip_prefix('/')
        }?;
        Some(rest.to_owned())
    }

    /// A recorded `relative` scope entry as an absolute path under this root; `None` for one no
    /// client of ours writes (absolute, or climbing out with `..`), which is then unreadable.
    pub(crate) fn rebase(&self, relative: &str) -> Option<String> {
        if relative == "." {
            return Some(self.path.clone());
        }
        let clean = !relative.is_empty()
            && Path::new(relative)
                .components()
                .all(|part| matches!(part, std::path::Component::Normal(_)));
        clean.then(|| {
            PathBuf::from(&self.path)
                .join(relative)
                .to_string_lossy()
                .into_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_relative_to_the_root_and_rebased_onto_another() {
        let here = Root {
            path: "/home/a/repo".into(),
        };
        let there = Root {
            path: "/ci/work/repo".into(),
        };
        assert_eq!(here.relative("/home/a/repo"), Some(".".into()));
        let rel = here.relative("/home/a/repo/docs/api");
        assert_eq!(rel.as_deref(), Some("docs/api"));
        assert_eq!(
            there.rebase("docs/api").as_deref(),
            Some("/ci/work/repo/docs/api")
        );
        assert_eq!(there.rebase(".").as_deref(), Some("/ci/work/repo"));
        // A sibling that shares the root's name as a prefix is outside it.
        assert_eq!(here.relative("/home/a/repo2/x"), None);
        assert_eq!(here.relative("/etc"), None);
        assert_eq!(there.rebase("../x"), None);
        assert_eq!(there.rebase("/etc"), None);
    }
}
