//! `scope-lock`: path-scope locks for shell scripts and CI jobs, on top of the `scope-lock`
//! library. Each subcommand is a module of `commands`; `cli` declares the command line.
//!
//! The code lives in this library target and `src/main.rs` only calls [`main`], so that the
//! unit tests run in a test binary named `scope_lock_cli`: one named after the binary
//! (`scope_lock`) would make the library's test ids ambiguous for `cargo xtask verify`.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use scope_lock::LockManager;

mod cli;
mod commands;
mod exit;
mod holders;
mod output;
mod process;

use cli::{Cli, Command};
use exit::Failure;

/// Parses the command line, runs the subcommand, and returns the exit status.
pub fn main() -> ExitCode {
    // clap exits with 2 on usage errors and 0 for --help/--version.
    let cli = Cli::parse();
    let status = match run(cli) {
        Ok(status) => status,
        Err(failure) => {
            let _ = writeln!(std::io::stderr(), "scope-lock: {failure}");
            failure.status
        }
    };
    let _ = std::io::stdout().flush();
    ExitCode::from(status)
}

fn run(cli: Cli) -> Result<u8, Failure> {
    let manager = LockManager::new(absolute(&cli.loops_dir)?).with_invalid_grace(cli.invalid_grace);
    match cli.command {
        Command::Run(args) => commands::run::run(&manager, args),
        Command::List(args) => commands::list::list(&manager, &args),
        Command::Check(args) => commands::check::check(&manager, &args),
        Command::Clean(args) => commands::clean::clean(&manager, &args),
        Command::Break(args) => commands::brk::brk(&manager, &args),
    }
}

/// The loops directory as an absolute path, as the original's command line resolves it: the
/// paths in messages and JSON then do not depend on where they are read.
fn absolute(loops_dir: &Path) -> Result<std::path::PathBuf, Failure> {
    if loops_dir.as_os_str().is_empty() {
        return Err(Failure::new(exit::USAGE, "--loops-dir must not be empty"));
    }
    std::path::absolute(loops_dir).map_err(|err| {
        Failure::new(
            exit::FAILURE,
            format!(
                "cannot resolve loops directory {}: {}",
                loops_dir.display(),
                exit::os_reason(&err)
            ),
        )
    })
}
