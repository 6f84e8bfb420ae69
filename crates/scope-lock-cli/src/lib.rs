//! `scope-lock`: path-scope locks for shell scripts and CI jobs, on top of the `scope-lock`
//! library. Each subcommand is a module of `commands`; `cli` declares the command line.
//!
//! The code lives in this library target and `src/main.rs` only calls [`main`], so that the
//! unit tests run in a test binary named `scope_lock_cli`: one named after the binary
//! (`scope_lock`) would make the library's test ids ambiguous for `cargo xtask verify`.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use scope_lock::LockManager;

mod cli;
mod commands;
mod exit;
mod holders;
mod loops_dir;
mod output;
mod process;
mod table;

use cli::{Cli, Command};
use exit::Failure;
use loops_dir::{LOOPS_DIR_VAR, LoopsDir};

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
    let invalid_grace = cli.invalid_grace;
    let loops_dir = || LoopsDir::choose(cli.loops_dir, std::env::var_os(LOOPS_DIR_VAR));
    let manager = |dir: &LoopsDir| LockManager::new(dir.path()).with_invalid_grace(invalid_grace);
    // Only `run` may create the loops directory; `check` asks about it once its arguments
    // are known to be good, so that a usage error is reported as one. `completions` and `man`
    // describe the command itself and use none.
    match cli.command {
        Command::Run(args) => commands::run::run(&manager(&loops_dir()?), args),
        Command::Check(args) => {
            let dir = loops_dir()?;
            commands::check::check(&manager(&dir), &args, &dir)
        }
        Command::List(args) => {
            let dir = loops_dir()?;
            dir.ensure_exists()?;
            commands::list::list(&manager(&dir), &args)
        }
        Command::Clean(args) => {
            let dir = loops_dir()?;
            dir.ensure_exists()?;
            commands::clean::clean(&manager(&dir), &args)
        }
        Command::Break(args) => {
            let dir = loops_dir()?;
            dir.ensure_exists()?;
            commands::brk::brk(&manager(&dir), &args)
        }
        Command::Completions(args) => commands::docs::completions(&args),
        Command::Man(args) => commands::docs::man(&args),
    }
}
