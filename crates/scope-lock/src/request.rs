//! What a caller asks for: a loop name, a scope, optionally an instance id and the singleton
//! flag. Validation of names lives here because a name becomes a path.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind};
use crate::mode::LockMode;
use crate::record::{LockRecord, MAX_RECORD_BYTES};

/// The suffix of every lock file.
pub(crate) const LOCK_SUFFIX: &str = ".lock";

/// The directory, inside the loops directory, that holds the lock files.
pub const RUNNING_DIR: &str = ".running";

/// The loops directory the original uses when none is given.
pub const DEFAULT_LOOPS_DIR: &str = ".loops";

/// The longest file name most filesystems allow (`NAME_MAX`).
pub(crate) const NAME_MAX: usize = 255;

/// How many directories a nested name may have (`a/b/c` has two). Scans descend exactly this
/// deep, so every name a request may have is one a scan sees.
pub(crate) const MAX_NESTING: usize = 32;

/// A request for a scope lock.
///
/// ```
/// use scope_lock::LockRequest;
///
/// let request = LockRequest::new("docs-fixer")
///     .scope(["docs/", "README.md"])
///     .instance_id("docs-fixer-20261127T2150")
///     .singleton(true);
/// assert_eq!(request.lock_name(), "docs-fixer-20261127T2150");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRequest {
    loop_name: String,
    scope: Vec<PathBuf>,
    instance_id: Option<String>,
    singleton: bool,
    mode: LockMode,
}

impl LockRequest {
    /// A request for loop `loop_name` with an empty scope (the whole project, `.`).
    pub fn new(loop_name: impl Into<String>) -> Self {
        Self {
            loop_name: loop_name.into(),
            scope: Vec::new(),
            instance_id: None,
            singleton: false,
            mode: LockMode::Exclusive,
        }
    }

    /// Sets the scope: paths (files or directories, existing or not), relative to the current
    /// directory or absolute. Empty means the whole project (`.`).
    ///
    /// Any path will do, `&str` and `PathBuf` alike, and one that is not UTF-8 is locked byte
    /// for byte: the lock file carries it as the original does (see
    /// [`path_to_json`](crate::path_to_json)).
    ///
    /// ```
    /// use std::path::PathBuf;
    /// use scope_lock::LockRequest;
    ///
    /// let out: PathBuf = ["target", "doc"].iter().collect();
    /// let request = LockRequest::new("docs").scope([out.as_path(), "README.md".as_ref()]);
    /// assert_eq!(request.scope_entries(), [out, PathBuf::from("README.md")]);
    /// ```
    #[must_use]
    pub fn scope<I, S>(mut self, scope: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<Path>,
    {
        self.scope = scope
            .into_iter()
            .map(|entry| entry.as_ref().to_path_buf())
            .collect();
        self
    }

    /// Names the lock file after this instance instead of the loop, so that several instances
    /// of one loop can hold disjoint scopes at once. May contain `/` to nest
    /// (`generated/run-1`).
    #[must_use]
    pub fn instance_id(mut self, instance_id: impl Into<String>) -> Self {
        self.instance_id = Some(instance_id.into());
        self
    }

    /// [`instance_id`](Self::instance_id) when there is one; `None` names the lock file after
    /// the loop. For front ends whose instance id is an optional argument.
    #[must_use]
    pub fn optional_instance_id<S: Into<String>>(mut self, instance_id: Option<S>) -> Self {
        self.instance_id = instance_id.map(Into::into);
        self
    }

    /// Makes this a singleton: it conflicts with any live singleton of the same loop name,
    /// whatever the scopes.
    #[must_use]
    pub fn singleton(mut self, singleton: bool) -> Self {
        self.singleton = singleton;
        self
    }

    /// Makes this a shared (read) request: it may hold its scope together with other shared
    /// locks whose scopes overlap it, but not with an exclusive one, and it waits in line
    /// behind an exclusive request that came before it. Requests are exclusive unless made
    /// shared.
    ///
    /// ```
    /// use scope_lock::{LockMode, LockRequest};
    ///
    /// let review = LockRequest::new("review").scope(["src/"]).shared();
    /// assert_eq!(review.mode(), LockMode::Shared);
    /// assert_eq!(LockRequest::new("fix").mode(), LockMode::Exclusive);
    /// ```
    #[must_use]
    pub fn shared(self) -> Self {
        self.with_mode(LockMode::Shared)
    }

    /// Sets the mode: [`LockMode::Shared`] is [`shared`](Self::shared), and
    /// [`LockMode::Exclusive`] the default.
    #[must_use]
    pub fn with_mode(mut self, mode: LockMode) -> Self {
        self.mode = mode;
        self
    }

    /// Whether the request is shared or exclusive.
    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// The loop name.
    pub fn loop_name(&self) -> &str {
        &self.loop_name
    }

    /// The scope as given (not yet normalised).
    pub fn scope_entries(&self) -> &[PathBuf] {
        &self.scope
    }

    /// The instance id, if any.
    pub fn instance(&self) -> Option<&str> {
        self.instance_id.as_deref()
    }

    /// Whether this is a singleton request.
    pub fn is_singleton(&self) -> bool {
        self.singleton
    }

    /// The lock file's name without `.lock`: the instance id, or else the loop name.
    pub fn lock_name(&self) -> &str {
        self.instance_id.as_deref().unwrap_or(&self.loop_name)
    }

    /// The scope entries, `["."]` when empty.
    pub(crate) fn effective_scope(&self) -> Vec<&Path> {
        if self.scope.is_empty() {
            vec![Path::new(".")]
        } else {
            self.scope.iter().map(PathBuf::as_path).collect()
        }
    }

    /// Checks that the names can name a lock file and the scope entries can be paths, as every
    /// acquire does before anything else; for a caller that asks about a name without
    /// acquiring it.
    ///
    /// # Errors
    ///
    /// An [`Error`] of kind [`ErrorKind::InvalidName`] or [`ErrorKind::InvalidScope`] that
    /// quotes the input and says what is wrong with it.
    pub fn validate(&self) -> Result<(), Error> {
        validate_name("loop name", &self.loop_name)?;
        if let Some(id) = &self.instance_id {
            validate_name("instance id", id)?;
        }
        self.validate_scope()
    }

    /// Checks what a question about the scope alone looks at: the scope entries, and the loop
    /// name of a singleton (the only rule that compares it).
    pub(crate) fn validate_scope(&self) -> Result<(), Error> {
        if self.singleton {
            validate_name("loop name", &self.loop_name)?;
        }
        for entry in &self.scope {
            if entry.as_os_str().as_bytes().contains(&0) {
                return Err(Error::input(
                    ErrorKind::InvalidScope,
                    format!("invalid scope entry {entry:?}: contains a NUL byte"),
                ));
            }
        }
        Ok(())
    }
}

impl LockRequest {
    /// The record that a lock (or a waiter's ticket) for this request writes, over `scope`,
    /// the request's scope normalised. Refused here, before any sentinel, ticket or wait, when
    /// readers could not read it back: a waiter would otherwise queue under a ticket nobody can
    /// order against, and learn only when the scope came free that it can never publish.
    pub(crate) fn record(&self, scope: Vec<PathBuf>) -> Result<LockRecord, Error> {
        let record = LockRecord::for_new_lock(&self.loop_name, scope, self.singleton, self.mode);
        // Sized with the widest token it can be published with, so that no attempt finds it
        // too large later.
        json_that_fits(
            &record.clone().fenced(u64::MAX),
            &format!("{:?}", self.lock_name()),
        )?;
        Ok(record)
    }
}

/// The JSON of `record`, refused when over [`MAX_RECORD_BYTES`], the one limit writer and
/// reader share: such a record would block every acquire in the directory as an unreadable
/// live lock. `whose` names the request or the lock file in the message.
pub(crate) fn json_that_fits(record: &LockRecord, whose: &str) -> Result<String, Error> {
    let json = record.to_json();
    let len = json.len();
    if len as u64 > MAX_RECORD_BYTES {
        return Err(Error::input(
            ErrorKind::InvalidScope,
            format!(
                "the lock record for {whose} would be {len} bytes, over the limit of \
                 {MAX_RECORD_BYTES} bytes (MAX_RECORD_BYTES) that readers accept; the scope has \
                 {} entries: lock fewer, shorter paths (a common parent directory)",
                record.scope().len()
            ),
        ));
    }
    Ok(json)
}

/// The lock name of a lock file (or of a waiter's ticket): its path below the last `.running`
/// directory, without `.lock`, byte for byte: `gen/run-7` for `.loops/.running/gen/run-7.lock`,
/// the name commands take and [`LockRequest::lock_name`] gives. No name may have a component
/// that starts with a dot, so the last `.running` is the lock directory itself; a path outside
/// any `.running` is named by its file name.
pub fn lock_name_of(lock_path: &Path) -> PathBuf {
    let components: Vec<_> = lock_path.components().collect();
    let below = components
        .iter()
        .rposition(|c| c.as_os_str() == RUNNING_DIR)
        .map_or(&components[components.len().saturating_sub(1)..], |at| {
            &components[at + 1..]
        });
    let name: PathBuf = below.iter().collect();
    let bytes = name.as_os_str().as_bytes();
    match bytes.strip_suffix(LOCK_SUFFIX.as_bytes()) {
        Some(stem) => PathBuf::from(OsStr::from_bytes(stem)),
        None => name,
    }
}

/// A name becomes `.running/<name>.lock`, so it must be a relative path of plain components
/// that stays inside `.running/`. No component may start with a dot either: dot entries are
/// where the protocol keeps its own files (the sentinel, files being published, records moved
/// aside), and scans skip them, so a lock under a dot name would be invisible.
fn validate_name(what: &str, name: &str) -> Result<(), Error> {
    let invalid = |why: &str| {
        Error::input(
            ErrorKind::InvalidName,
            format!("invalid {what} {name:?}: {why}"),
        )
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.contains('\0') {
        return Err(invalid("it contains a NUL byte"));
    }
    if name.starts_with('/') {
        return Err(invalid("it is an absolute path"));
    }
    let components: Vec<&str> = name.split('/').collect();
    let last = components.len() - 1;
    if last > MAX_NESTING {
        return Err(invalid(&format!(
            "it is nested {last} directories deep; at most {MAX_NESTING} are allowed"
        )));
    }
    for (i, component) in components.iter().enumerate() {
        if component.is_empty() {
            return Err(invalid("it has an empty path component"));
        }
        if *component == "." || *component == ".." {
            return Err(invalid("it has a `.` or `..` component"));
        }
        if component.starts_with('.') {
            return Err(invalid("it starts with a dot"));
        }
        let len = component.len() + if i == last { LOCK_SUFFIX.len() } else { 0 };
        if len > NAME_MAX {
            return Err(invalid(&format!(
                "`{component}{}` is longer than the {NAME_MAX} bytes a file name may have",
                if i == last { LOCK_SUFFIX } else { "" }
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_error(name: &str) -> String {
        let err = LockRequest::new(name).validate().map(|_| ()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidName);
        let message = err.to_string();
        assert!(message.contains(&format!("{name:?}")), "{message}");
        message
    }

    #[test]
    fn good_names_pass() {
        for name in [
            "demo",
            "generated/foo-20260101T000000",
            "a b",
            "x.lock",
            "é",
        ] {
            assert!(LockRequest::new(name).validate().is_ok(), "{name}");
        }
        let longest = "n".repeat(NAME_MAX - LOCK_SUFFIX.len());
        assert!(LockRequest::new(longest).validate().is_ok());
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        assert!(name_error("").contains("empty"));
        assert!(name_error("/etc/passwd").contains("absolute"));
        assert!(name_error("a/../../b").contains("`..`"));
        assert!(name_error("./a").contains("`.`"));
        assert!(name_error("a//b").contains("empty path component"));
        assert!(name_error("a/").contains("empty path component"));
        assert!(name_error(".hidden").contains("starts with a dot"));
        assert!(name_error("a/.acquire").contains("starts with a dot"));
        assert!(name_error("nul\0byte").contains("NUL"));
        assert!(name_error(&"n".repeat(NAME_MAX - LOCK_SUFFIX.len() + 1)).contains("longer"));
        let too_deep = format!("{}x", "d/".repeat(MAX_NESTING + 1));
        assert!(name_error(&too_deep).contains("nested 33 directories deep"));
        assert!(
            LockRequest::new(format!("{}x", "d/".repeat(MAX_NESTING)))
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn instance_ids_are_checked_like_names() {
        let err = LockRequest::new("ok")
            .instance_id("../escape")
            .validate()
            .map(|_| ())
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid instance id \"../escape\""),
            "{err}"
        );
    }

    #[test]
    fn scope_entries_with_nul_are_refused() {
        let err = LockRequest::new("ok")
            .scope(["a\0b"])
            .validate()
            .map(|_| ())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidScope);
    }

    #[test]
    fn the_builder_keeps_what_it_was_given() {
        let request = LockRequest::new("docs")
            .scope(["docs/", "README.md"])
            .instance_id("docs-7")
            .singleton(true);
        assert_eq!(request.loop_name(), "docs");
        let given = [Path::new("docs/"), Path::new("README.md")];
        assert_eq!(request.scope_entries(), given);
        assert_eq!(request.effective_scope(), given);
        assert_eq!(request.instance(), Some("docs-7"));
        assert!(request.is_singleton());

        let plain = LockRequest::new("docs");
        assert!(plain.scope_entries().is_empty());
        assert_eq!(plain.instance(), None);
        assert!(!plain.is_singleton());
    }

    #[test]
    fn the_lock_name_is_the_instance_id_or_the_loop_name() {
        assert_eq!(LockRequest::new("loop").lock_name(), "loop");
        assert_eq!(
            LockRequest::new("loop").instance_id("i-1").lock_name(),
            "i-1"
        );
        assert_eq!(LockRequest::new("loop").effective_scope(), [Path::new(".")]);
        let optional = |id: Option<&str>| LockRequest::new("loop").optional_instance_id(id);
        assert_eq!(
            optional(Some("i-1")),
            LockRequest::new("loop").instance_id("i-1")
        );
        assert_eq!(optional(None), LockRequest::new("loop"));
    }

    /// A lock file, a nested one and a ticket are named from below `.running`, byte for byte.
    #[test]
    fn a_lock_files_name_is_its_path_below_running_without_the_suffix() {
        let dir = Path::new("/r/.loops/.running");
        assert_eq!(lock_name_of(&dir.join("docs.lock")), Path::new("docs"));
        assert_eq!(
            lock_name_of(&dir.join("gen/run-1.lock")),
            Path::new("gen/run-1")
        );
        assert_eq!(
            lock_name_of(&dir.join("gen/.running.d/run-7.lock")),
            Path::new("gen/.running.d/run-7")
        );
        assert_eq!(lock_name_of(&dir.join(".queue/7")), Path::new(".queue/7"));
        assert_eq!(lock_name_of(Path::new("/elsewhere/x.lock")), Path::new("x"));
        let raw = OsStr::from_bytes(b"caf\xe9.lock");
        assert_eq!(
            lock_name_of(&dir.join(raw)).as_os_str().as_bytes(),
            b"caf\xe9"
        );
    }
}
