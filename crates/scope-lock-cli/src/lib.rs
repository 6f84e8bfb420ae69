//! `scope-lock`: path-scope locks for shell scripts and CI jobs, on top of the `scope-lock`
//! library. Each subcommand is a module of `commands`; `cli` declares the command line.
//!
//! The code lives in this library target and `src/main.rs` only calls [`main`], so that the
//! unit tests run in a test binary named `scope_lock_cli`: one named after the binary
//! (`scope_lock`) would make the library's test ids ambiguous for `cargo xtask verify`.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

mod backend;
mod cli;
mod commands;
mod exit;
mod held;
mod holders;
mod loops_dir;
mod output;
mod process;
mod table;

use backend::Backend;
use cli::{Cli, Command};
use exit::Failure;

/// Parses the command line, runs the subcommand, and returns the exit status.
pub fn main() -> ExitCode {
    // clap exits with 2 on usage errors and 0 for --help/--version.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
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

/// Prints clap's error (or help, or version) and returns its status. A usage error about an
/// option the user typed in its short form (`-w soon`) names that form, not the long one
/// clap names (`--timeout <SECS>`): the message should name what is on the command line.
fn usage_error(err: &clap::Error) -> ExitCode {
    let status = u8::try_from(err.exit_code()).unwrap_or(exit::USAGE);
    if !err.use_stderr() {
        let _ = err.print();
        return ExitCode::from(status);
    }
    let typed: Vec<String> = std::env::args().skip(1).collect();
    let message = as_typed(
        &err.to_string(),
        &typed,
        &<Cli as clap::CommandFactory>::command(),
    );
    let _ = write!(std::io::stderr(), "{message}");
    ExitCode::from(status)
}

/// `message` with each option of `command` (and its subcommands) that `typed` gives in its
/// short form, and not in its long one, named as typed: `'--timeout <SECS>'` → `'-w <SECS>'`.
fn as_typed(message: &str, typed: &[String], command: &clap::Command) -> String {
    let mut message = message.to_owned();
    for arg in command.get_arguments() {
        let (Some(short), Some(long)) = (arg.get_short(), arg.get_long()) else {
            continue;
        };
        let short_typed = typed
            .iter()
            .any(|word| word.starts_with(&format!("-{short}")));
        let long_typed = typed
            .iter()
            .any(|word| word.starts_with(&format!("--{long}")));
        if !short_typed || long_typed {
            continue;
        }
        let value = arg
            .get_value_names()
            .map(|names| {
                names
                    .iter()
                    .map(|name| format!(" <{name}>"))
                    .collect::<String>()
            })
            .unwrap_or_default();
        message = message.replace(&format!("'--{long}{value}'"), &format!("'-{short}{value}'"));
    }
    for sub in command.get_subcommands() {
        message = as_typed(&message, typed, sub);
    }
    message
}

fn run(cli: Cli) -> Result<u8, Failure> {
    // `completions` and `man` describe the command itself and use no locks.
    match &cli.command {
        Command::Completions(args) => return commands::docs::completions(args),
        Command::Man(args) => return commands::docs::man(args),
        _ => {}
    }
    let backend = Backend::from_cli(&cli)?;
    // Only `run` may create the loops directory; `check` asks about it once its arguments
    // are known to be good, so that a usage error is reported as one.
    match cli.command {
        Command::Run(args) => commands::run::run(&backend, args),
        Command::Check(args) => commands::check::check(&backend, &args),
        Command::List(args) => {
            backend.ensure_exists()?;
            commands::list::list(&backend, &args)
        }
        Command::Clean(args) => {
            backend.ensure_exists()?;
            commands::clean::clean(&backend, &args)
        }
        Command::Break(args) => {
            backend.ensure_exists()?;
            commands::brk::brk(&backend, &args)
        }
        // Answered above.
        Command::Completions(_) | Command::Man(_) => Ok(exit::SUCCESS),
    }
}
