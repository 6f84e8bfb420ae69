//! Running cargo from xtask, and what it says about the workspace.

use std::{env, path::PathBuf};

use anyhow::Context;
use cargo_metadata::{Metadata, MetadataCommand};
use xshell::{Cmd, Shell, cmd};

/// `cargo`, without the variables `cargo run` gave xtask itself.
pub(crate) fn cargo(sh: &Shell) -> Cmd<'_> {
    without_cargo_package_env(cmd!(sh, "cargo"))
}

/// The workspace as `cargo metadata` sees it (members only). Its `target_directory` is where
/// builds really go: it honours `CARGO_TARGET_DIR` and `build.target-dir` in any cargo config.
pub(crate) fn metadata(sh: &Shell) -> anyhow::Result<Metadata> {
    let json = cargo(sh)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .read()
        .context("cargo metadata failed")?;
    MetadataCommand::parse(json).context("reading cargo metadata's output")
}

/// The target directory (see [`metadata`]).
pub(crate) fn target_dir(sh: &Shell) -> anyhow::Result<PathBuf> {
    Ok(metadata(sh)?.target_directory.into_std_path_buf())
}

/// `cargo run` hands xtask its own package's variables; a nested cargo (or a test binary) must
/// not inherit them. xshell 0.2 has no `Shell::remove_var`, so each command is cleaned here.
pub(crate) fn without_cargo_package_env(mut cmd: Cmd<'_>) -> Cmd<'_> {
    for (key, _) in env::vars_os() {
        if let Some(key) = key.to_str()
            && (key == "CARGO_MANIFEST_DIR" || key.starts_with("CARGO_PKG_"))
        {
            cmd = cmd.env_remove(key);
        }
    }
    cmd
}

/// Builds binary `bin` of `package` (in release mode if `release`) and returns its path: where
/// cargo says it put it, else where it normally is.
pub(crate) fn build_bin(
    sh: &Shell,
    package: &str,
    bin: &str,
    release: bool,
) -> anyhow::Result<PathBuf> {
    let (profile, flag) = if release {
        ("release", &["--release"][..])
    } else {
        ("debug", &[][..])
    };
    eprintln!("building {bin} ({profile}) ...");
    let messages = without_cargo_package_env(cmd!(
        sh,
        "cargo build {flag...} -p {package} --bin {bin} --message-format=json-render-diagnostics"
    ))
    .read()
    .with_context(|| format!("building {bin} failed"))?;
    let from_cargo = cargo_metadata::Message::parse_stream(messages.as_bytes())
        .filter_map(Result::ok)
        .find_map(|message| match message {
            cargo_metadata::Message::CompilerArtifact(artifact) if artifact.target.name == bin => {
                artifact.executable.map(PathBuf::from)
            }
            _ => None,
        });
    match from_cargo {
        Some(path) => Ok(path),
        None => Ok(target_dir(sh)?.join(profile).join(bin)),
    }
}
