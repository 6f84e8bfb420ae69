//! What an etcd lock manager connects to and how: [`EtcdConfig`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use crate::error::{Error, ErrorKind};

/// The key prefix under which projects keep their locks, unless
/// [`EtcdConfig::with_key_prefix`] says otherwise.
pub const DEFAULT_KEY_PREFIX: &str = "scope-lock";

/// How long a holder's lease outlives its last keep-alive, unless
/// [`EtcdConfig::with_lease_ttl`] says otherwise: the most a holder that is killed, stopped or
/// cut off from etcd can keep a scope from others, and the least time after which it loses it.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(5);

/// How long one request to etcd may take (connecting included) before it fails with
/// [`ErrorKind::Etcd`], unless [`EtcdConfig::with_request_timeout`] says otherwise. Waiting for
/// a scope is not a request: it lasts until its deadline.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the locks of a project live in etcd, and how to reach it.
///
/// ```
/// use std::time::Duration;
/// use scope_lock::etcd::EtcdConfig;
///
/// let config = EtcdConfig::new(["http://127.0.0.1:2379"], "my-repo")
///     .with_lease_ttl(Duration::from_secs(10))
///     .with_root("/src/my-repo");
/// assert_eq!(config.key_prefix(), "scope-lock");
/// ```
#[derive(Clone)]
pub struct EtcdConfig {
    endpoints: Vec<String>,
    project: String,
    key_prefix: String,
    lease_ttl: Duration,
    request_timeout: Duration,
    root: Option<PathBuf>,
    user: Option<(String, String)>,
    tls: Option<TlsFiles>,
}

/// The files of a TLS connection: the CA that signs the servers' certificates, and the client's
/// own certificate and key when the servers ask for one.
#[derive(Debug, Clone, Default)]
struct TlsFiles {
    ca: Option<PathBuf>,
    identity: Option<(PathBuf, PathBuf)>,
}

impl fmt::Debug for EtcdConfig {
    // The password stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("project", &self.project)
            .field("key_prefix", &self.key_prefix)
            .field("lease_ttl", &self.lease_ttl)
            .field("request_timeout", &self.request_timeout)
            .field("root", &self.root)
            .field("user", &self.user.as_ref().map(|(name, _)| name))
            .field("tls", &self.tls)
            .finish()
    }
}

impl EtcdConfig {
    /// The locks of `project` on the etcd cluster at `endpoints` (`http://host:port` or
    /// `https://…`; any one member will do, the client moves between them). Every clone of a
    /// project must use the same project name: it is what makes their locks one set.
    pub fn new<I, S>(endpoints: I, project: impl Into<String>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            project: project.into(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            lease_ttl: DEFAULT_LEASE_TTL,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            root: None,
            user: None,
            tls: None,
        }
    }

    /// Sets the key prefix: the locks are the keys `<prefix>/<project>/locks/<lock name>`.
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets the lease's time to live, in whole seconds (rounded up; etcd may raise a very short
    /// one to its own minimum, about two seconds).
    #[must_use]
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Sets how long one request may take.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the project root, which scopes are relative to; otherwise it is the git toplevel
    /// of the current directory when the manager is made.
    #[must_use]
    pub fn with_root(mut self, root: impl AsRef<Path>) -> Self {
        self.root = Some(root.as_ref().to_path_buf());
        self
    }

    /// Authenticates as `name` with `password` (etcd's own users).
    #[must_use]
    pub fn with_user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((name.into(), password.into()));
        self
    }

    /// Trusts servers whose certificates `ca_pem` (a PEM file) signed. Needs the `etcd-tls`
    /// feature; without it, connecting fails with an error that says so.
    #[must_use]
    pub fn with_tls_ca(mut self, ca_pem: impl AsRef<Path>) -> Self {
        self.tls.get_or_insert_with(TlsFiles::default).ca = Some(ca_pem.as_ref().to_path_buf());
        self
    }

    /// Presents the client certificate `cert_pem` with its key `key_pem` (PEM files) to
    /// servers that ask for one. Needs the `etcd-tls` feature.
    #[must_use]
    pub fn with_tls_identity(
        mut self,
        cert_pem: impl AsRef<Path>,
        key_pem: impl AsRef<Path>,
    ) -> Self {
        self.tls.get_or_insert_with(TlsFiles::default).identity = Some((
            cert_pem.as_ref().to_path_buf(),
            key_pem.as_ref().to_path_buf(),
        ));
        self
    }

    /// The etcd endpoints.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The project name.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// The lease's time to live.
    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl
    }

    /// The time to live in whole seconds, as etcd takes it.
    pub(crate) fn lease_ttl_secs(&self) -> i64 {
        let secs = self.lease_ttl.as_secs() + u64::from(self.lease_ttl.subsec_nanos() > 0);
        i64::try_from(secs.max(1)).unwrap_or(i64::MAX)
    }

    /// How long one request may take.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The project root, when given.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Checks what would otherwise fail later, or quietly make keys nobody else finds.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let invalid = |message: String| Error::input(ErrorKind::InvalidName, message);
        if self.endpoints.is_empty() || self.endpoints.iter().any(|it| it.trim().is_empty()) {
            return Err(invalid(format!(
                "invalid etcd endpoints {:?}: give at least one, as http://host:port",
                self.endpoints
            )));
        }
        let plain = |what: &str, value: &str| {
            if value.is_empty()
                || value.starts_with('.')
                || value.contains(['/', '\0'])
                || value.chars().any(char::is_control)
            {
                Err(invalid(format!(
                    "invalid {what} {value:?}: must be non-empty, without `/`, control \
                     characters or a leading dot"
                )))
            } else {
                Ok(())
            }
        };
        plain("etcd project name", &self.project)?;
        if self.key_prefix.is_empty()
            || self.key_prefix.ends_with('/')
            || self.key_prefix.contains('\0')
        {
            return Err(invalid(format!(
                "invalid etcd key prefix {:?}: must be non-empty and not end with `/`",
                self.key_prefix
            )));
        }
        if self.lease_ttl.is_zero() {
            return Err(invalid(
                "invalid etcd lease TTL 0s: must be at least 1s".to_owned(),
            ));
        }
        Ok(())
    }

    /// A client connected to the endpoints, within the request timeout.
    pub(crate) async fn connect(&self) -> Result<Client, Error> {
        let what = || format!("cannot connect to etcd at {}", self.endpoints.join(","));
        let mut options = ConnectOptions::new()
            .with_connect_timeout(self.request_timeout)
            // A dead connection is noticed within about the lease's lifetime, so that a
            // holder learns it was cut off while the lease could still be renewed elsewhere.
            .with_keep_alive(
                self.lease_ttl / 3 + Duration::from_millis(1),
                self.request_timeout,
            )
            .with_keep_alive_while_idle(true);
        if let Some((name, password)) = &self.user {
            options = options.with_user(name.clone(), password.clone());
        }
        if let Some(tls) = &self.tls {
            options = with_tls(options, tls).await?;
        }
        let connect = Client::connect(&self.endpoints, Some(options));
        match tokio::time::timeout(self.request_timeout, connect).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(err)) => Err(Error::etcd(what(), err)),
            Err(elapsed) => Err(Error::etcd(what(), elapsed)),
        }
    }
}

#[cfg(feature = "etcd-tls")]
async fn with_tls(options: ConnectOptions, files: &TlsFiles) -> Result<ConnectOptions, Error> {
    use etcd_client::{Certificate, Identity, TlsOptions};
    // A few small files, read once when connecting.
    let read =
        |path: &PathBuf| std::fs::read(path).map_err(|err| Error::io("cannot read", path, err));
    let mut tls = TlsOptions::new();
    if let Some(ca) = &files.ca {
        tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
    }
    if let Some((cert, key)) = &files.identity {
        let identity = Identity::from_pem(read(cert)?, read(key)?);
        tls = tls.identity(identity);
    }
    Ok(options.with_tls(tls))
}

#[cfg(not(feature = "etcd-tls"))]
#[allow(clippy::unused_async)]
async fn with_tls(_options: ConnectOptions, _files: &TlsFiles) -> Result<ConnectOptions, Error> {
    Err(Error::input(
        ErrorKind::Etcd,
        "TLS to etcd needs scope-lock built with the `etcd-tls` feature".to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_make_stray_keys_are_refused_by_name() {
        let bad = EtcdConfig::new(["http://127.0.0.1:1"], "a/b").validate();
        assert!(bad.is_err_and(|err| err.to_string().contains("\"a/b\"")));
        let none = EtcdConfig::new(Vec::<String>::new(), "p").validate();
        assert!(none.is_err_and(|err| err.to_string().contains("endpoints")));
        let prefix = EtcdConfig::new(["x"], "p").with_key_prefix("k/").validate();
        assert!(prefix.is_err_and(|err| err.to_string().contains("\"k/\"")));
        assert!(EtcdConfig::new(["x"], "p").validate().is_ok());
    }

    #[test]
    fn the_ttl_is_rounded_up_to_whole_seconds_and_the_password_never_shown() {
        let config = EtcdConfig::new(["x"], "p")
            .with_lease_ttl(Duration::from_millis(1500))
            .with_user("me", "sesame");
        assert_eq!(config.lease_ttl_secs(), 2);
        assert!(!format!("{config:?}").contains("sesame"));
    }
}
