//! What a scan reports instead of a live lock: a [`ScanProblem`], the file and what is wrong
//! with it ([`ProblemKind`]), in words for people and names for machines.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::request::lock_name_of;
use crate::sys::FileType;

/// A `*.lock` entry that a scan could not take for a live lock (or a stale ticket of the
/// waiting queue that it could not remove).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanProblem {
    pub(crate) path: PathBuf,
    pub(crate) kind: ProblemKind,
}

/// What is wrong with a [`ScanProblem`]; [`as_str`](Self::as_str) names each kind for machines.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// Not a regular file (a symlink, FIFO, socket or device): not a lock; left alone.
    NotRegular {
        /// What it is instead.
        file_kind: FileKind,
    },
    /// Could not be opened, probed or read. It might be a live lock, so it blocks acquires.
    Unreadable {
        /// The I/O error.
        reason: String,
    },
    /// Flocked, so its holder is alive, but its record is invalid. Its scope is unknown, so it
    /// blocks acquires.
    BlocksHeldInvalid {
        /// Why the record is invalid.
        reason: String,
    },
    /// Not flocked, its record is invalid, and nothing proves its holder gone: it has no
    /// marker of ours (so it may be the original's, which holds no flock) and its `pid` is
    /// alive or cannot be read. It might be a live lock of unknown scope, so it blocks
    /// acquires, and it is left as it is.
    BlocksMaybeLive {
        /// Why the record is invalid.
        reason: String,
        /// The pid read from it, alive; `None` when no pid could be read.
        pid: Option<u32>,
    },
    /// Not flocked, its record is invalid, and its holder is provably gone (our marker, or
    /// a dead pid): moved aside to a dot file that scans skip (never deleted). If even the
    /// move failed, it is left in place, `moved_to` is `None` and the reason says why.
    MovedAside {
        /// Why the record is invalid (and, when the move failed, why that failed).
        reason: String,
        /// Where it now is, if it was moved.
        moved_to: Option<PathBuf>,
    },
    /// As [`MovedAside`](Self::MovedAside) (not flocked, record invalid, holder provably
    /// gone), found by a [dry run](super::LockListing::is_dry_run), which left it in place: a
    /// cleaning scan would move it aside.
    WouldMoveAside {
        /// Why the record is invalid.
        reason: String,
    },
    /// Stale (its holder is gone) but could not be removed.
    ReclaimFailed {
        /// The I/O error.
        reason: String,
    },
}

impl ProblemKind {
    /// The kind's name for machines (the CLI's JSON, the Python binding): `not_regular`,
    /// `unreadable`, `held_invalid`, `invalid_maybe_live`, `invalid` (moved aside, or not
    /// movable), `invalid_stale` (would be moved aside) or `reclaim_failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProblemKind::NotRegular { .. } => "not_regular",
            ProblemKind::Unreadable { .. } => "unreadable",
            ProblemKind::BlocksHeldInvalid { .. } => "held_invalid",
            ProblemKind::BlocksMaybeLive { .. } => "invalid_maybe_live",
            ProblemKind::MovedAside { .. } => "invalid",
            ProblemKind::WouldMoveAside { .. } => "invalid_stale",
            ProblemKind::ReclaimFailed { .. } => "reclaim_failed",
        }
    }

    /// Why, in words: the error or the record's fault; for
    /// [`NotRegular`](Self::NotRegular), what the entry is instead.
    pub fn reason(&self) -> &str {
        match self {
            ProblemKind::NotRegular { file_kind } => file_kind.as_str(),
            ProblemKind::Unreadable { reason }
            | ProblemKind::BlocksHeldInvalid { reason }
            | ProblemKind::BlocksMaybeLive { reason, .. }
            | ProblemKind::MovedAside { reason, .. }
            | ProblemKind::WouldMoveAside { reason }
            | ProblemKind::ReclaimFailed { reason } => reason,
        }
    }
}

/// What a directory entry is when it is not a regular file. Named, in text and when
/// serialised, by [`as_str`](Self::as_str).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A symbolic link (never followed in the lock directory).
    Symlink,
    /// A directory.
    Directory,
    /// A named pipe.
    Fifo,
    /// A Unix domain socket.
    Socket,
    /// A block or character device.
    Device,
    /// Anything else the system may have.
    Other,
}

impl FileKind {
    /// What `file_type` is, or `None` for a regular file.
    pub(crate) fn of(file_type: FileType) -> Option<Self> {
        Some(match file_type {
            FileType::RegularFile => return None,
            FileType::Symlink => FileKind::Symlink,
            FileType::Directory => FileKind::Directory,
            FileType::Fifo => FileKind::Fifo,
            FileType::Socket => FileKind::Socket,
            FileType::BlockDevice | FileType::CharacterDevice => FileKind::Device,
            FileType::Unknown => FileKind::Other,
        })
    }

    /// The name used in messages: "symlink", "directory", "FIFO", "socket", "device",
    /// "special file".
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Symlink => "symlink",
            FileKind::Directory => "directory",
            FileKind::Fifo => "FIFO",
            FileKind::Socket => "socket",
            FileKind::Device => "device",
            FileKind::Other => "special file",
        }
    }
}

impl ScanProblem {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What is wrong.
    pub fn kind(&self) -> &ProblemKind {
        &self.kind
    }

    /// Whether this entry must be treated as a live lock of unknown scope.
    pub fn blocks(&self) -> bool {
        matches!(
            self.kind,
            ProblemKind::Unreadable { .. }
                | ProblemKind::BlocksHeldInvalid { .. }
                | ProblemKind::BlocksMaybeLive { .. }
        )
    }
}

/// Why a file of [`ProblemKind::BlocksMaybeLive`] at `path` is treated as held, and what the
/// user can do about it.
fn maybe_live_reason(path: &Path, pid: Option<u32>) -> String {
    let force = format!("`scope-lock break {} --force`", lock_name(path));
    match pid {
        Some(pid) => format!(
            "not flocked and not written by scope-lock, and its pid {pid} is alive: treated as \
             held. If pid {pid} is not the little-loops loop that wrote it, {force} moves it \
             aside"
        ),
        None => format!(
            "not flocked and not written by scope-lock, and no pid can be read to prove it \
             stale: treated as held while it may be a lock being written. Scans move it aside \
             once it has been left unchanged for the grace (a minute, unless \
             `LockManager::with_invalid_grace` or `--invalid-grace` says otherwise); if \
             nothing is writing it, {force} moves it aside now"
        ),
    }
}

/// A lock file's name as commands take it, for messages.
fn lock_name(path: &Path) -> String {
    lock_name_of(path).to_string_lossy().into_owned()
}

impl ScanProblem {
    /// What is wrong, what the scan did about it and, for a file that blocks, what the user
    /// can do: the message without the path in front.
    pub(crate) fn what(&self) -> String {
        match &self.kind {
            ProblemKind::NotRegular { file_kind } => {
                format!("is a {file_kind}, not a lock file; left alone")
            }
            ProblemKind::Unreadable { reason } => format!(
                "cannot be read ({reason}); treated as held. Its owner or root can make it \
                 readable or remove it"
            ),
            ProblemKind::BlocksHeldInvalid { reason } => format!(
                "held, but {reason}; treated as held. `scope-lock break {}` shows who holds it",
                lock_name(&self.path)
            ),
            ProblemKind::BlocksMaybeLive { reason, pid } => {
                format!("{reason}; {}", maybe_live_reason(&self.path, *pid))
            }
            ProblemKind::MovedAside {
                reason,
                moved_to: Some(to),
            } => format!("{reason}; not held, moved aside to {}", to.display()),
            ProblemKind::MovedAside {
                reason,
                moved_to: None,
            } => format!("{reason}; not held, could not be moved aside"),
            ProblemKind::WouldMoveAside { reason } => {
                format!("{reason}; not held, would be moved aside")
            }
            ProblemKind::ReclaimFailed { reason } => {
                format!("stale, but cannot be removed ({reason})")
            }
        }
    }
}

impl fmt::Display for ScanProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.what())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::os::unix::net::UnixListener;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn kind_of(path: &Path) -> Result<Option<FileKind>, std::io::Error> {
        Ok(FileKind::of(crate::sys::lstat_type(path)?))
    }

    /// Every kind of entry a lock directory may hold is named for what it is; a regular file
    /// is not a "kind" at all. (FIFOs are covered by the bad-input tests, which need a FIFO
    /// made without spawning.)
    #[test]
    fn each_file_type_is_named_for_what_it_is() -> TestResult {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("file.lock");
        fs::write(&file, "{}")?;
        let link = dir.path().join("link.lock");
        symlink(&file, &link)?;
        let sub = dir.path().join("sub.lock");
        fs::create_dir(&sub)?;
        let socket = dir.path().join("socket.lock");
        let _listener = UnixListener::bind(&socket)?;

        assert_eq!(kind_of(&file)?, None);
        assert_eq!(kind_of(&link)?, Some(FileKind::Symlink));
        assert_eq!(kind_of(&sub)?, Some(FileKind::Directory));
        assert_eq!(kind_of(&socket)?, Some(FileKind::Socket));
        // A character device that every Unix has.
        assert_eq!(kind_of(Path::new("/dev/null"))?, Some(FileKind::Device));
        Ok(())
    }

    /// Front ends print and serialise these names as they are, so they must not drift.
    #[test]
    fn file_kinds_and_problem_kinds_have_one_name_each() -> serde_json::Result<()> {
        assert_eq!(serde_json::to_string(&FileKind::Fifo)?, r#""FIFO""#);
        let reason = || "why".to_owned();
        let kinds = [
            (
                ProblemKind::NotRegular {
                    file_kind: FileKind::Socket,
                },
                "not_regular",
                "socket",
            ),
            (
                ProblemKind::Unreadable { reason: reason() },
                "unreadable",
                "why",
            ),
            (
                ProblemKind::BlocksHeldInvalid { reason: reason() },
                "held_invalid",
                "why",
            ),
            (
                ProblemKind::BlocksMaybeLive {
                    reason: reason(),
                    pid: Some(7),
                },
                "invalid_maybe_live",
                "why",
            ),
            (
                ProblemKind::MovedAside {
                    reason: reason(),
                    moved_to: None,
                },
                "invalid",
                "why",
            ),
            (
                ProblemKind::WouldMoveAside { reason: reason() },
                "invalid_stale",
                "why",
            ),
            (
                ProblemKind::ReclaimFailed { reason: reason() },
                "reclaim_failed",
                "why",
            ),
        ];
        for (kind, name, why) in kinds {
            assert_eq!((kind.as_str(), kind.reason()), (name, why), "{kind:?}");
        }
        Ok(())
    }

    #[test]
    fn file_kinds_and_problems_read_as_what_they_are() {
        let names = [
            (FileKind::Symlink, "symlink"),
            (FileKind::Directory, "directory"),
            (FileKind::Fifo, "FIFO"),
            (FileKind::Socket, "socket"),
            (FileKind::Device, "device"),
            (FileKind::Other, "special file"),
        ];
        for (kind, name) in names {
            assert_eq!(kind.as_str(), name);
            assert_eq!(kind.to_string(), name);
        }

        let problem = |kind: ProblemKind| ScanProblem {
            path: PathBuf::from("/r/.running/x.lock"),
            kind,
        };
        let reason = || "not a lock record: EOF".to_owned();
        let cases = [
            (
                ProblemKind::NotRegular {
                    file_kind: FileKind::Socket,
                },
                false,
                "/r/.running/x.lock: is a socket, not a lock file; left alone",
            ),
            (
                ProblemKind::Unreadable {
                    reason: "permission denied".into(),
                },
                true,
                "/r/.running/x.lock: cannot be read (permission denied); treated as held. Its \
                 owner or root can make it readable or remove it",
            ),
            (
                ProblemKind::BlocksHeldInvalid { reason: reason() },
                true,
                "/r/.running/x.lock: held, but not a lock record: EOF; treated as held. \
                 `scope-lock break x` shows who holds it",
            ),
            (
                ProblemKind::BlocksMaybeLive {
                    reason: reason(),
                    pid: None,
                },
                true,
                "/r/.running/x.lock: not a lock record: EOF; not flocked and not written by \
                 scope-lock, and no pid can be read to prove it stale: treated as held while it \
                 may be a lock being written. Scans move it aside once it has been left \
                 unchanged for the grace (a minute, unless `LockManager::with_invalid_grace` or \
                 `--invalid-grace` says otherwise); if nothing is writing it, `scope-lock break \
                 x --force` moves it aside now",
            ),
            (
                ProblemKind::BlocksMaybeLive {
                    reason: reason(),
                    pid: Some(7),
                },
                true,
                "/r/.running/x.lock: not a lock record: EOF; not flocked and not written by \
                 scope-lock, and its pid 7 is alive: treated as held. If pid 7 is not the \
                 little-loops loop that wrote it, `scope-lock break x --force` moves it aside",
            ),
            (
                ProblemKind::MovedAside {
                    reason: reason(),
                    moved_to: Some(PathBuf::from("/r/.running/.x.lock.invalid")),
                },
                false,
                "/r/.running/x.lock: not a lock record: EOF; not held, moved aside to \
                 /r/.running/.x.lock.invalid",
            ),
            (
                ProblemKind::MovedAside {
                    reason: reason(),
                    moved_to: None,
                },
                false,
                "/r/.running/x.lock: not a lock record: EOF; not held, could not be moved aside",
            ),
            (
                ProblemKind::ReclaimFailed {
                    reason: "read-only filesystem".into(),
                },
                false,
                "/r/.running/x.lock: stale, but cannot be removed (read-only filesystem)",
            ),
        ];
        // A nested lock is named as commands take it, from below `.running`.
        let nested = ScanProblem {
            path: PathBuf::from("/r/.running/gen/.running.d/run-7.lock"),
            kind: ProblemKind::BlocksHeldInvalid { reason: reason() },
        };
        assert!(
            nested
                .to_string()
                .contains("`scope-lock break gen/.running.d/run-7`")
        );
        for (kind, blocks, message) in cases {
            let problem = problem(kind);
            assert_eq!(problem.blocks(), blocks, "{problem}");
            assert_eq!(problem.to_string(), message);
        }
    }
}
