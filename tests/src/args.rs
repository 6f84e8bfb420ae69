//! The command line of the suite's helper binaries (`regression-worker`, `bench-driver`):
//! after the command's name, `--key value` options, `--flag`s and positional arguments. Each
//! command names the options it takes; anything else is refused, never ignored.

use std::collections::HashMap;
use std::fmt::Display;
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use lexopt::ValueExt as _;

/// A command's parsed arguments.
pub struct Args {
    values: HashMap<String, String>,
    flags: Vec<String>,
    positional: Vec<String>,
}

impl Args {
    /// Reads the rest of the command line; `keys` take a value, `flags` do not.
    ///
    /// # Errors
    ///
    /// An option the command does not take, or a key without its value.
    pub fn parse(
        mut parser: lexopt::Parser,
        keys: &[&str],
        flags: &[&str],
    ) -> Result<Self, String> {
        let mut args = Args {
            values: HashMap::new(),
            flags: Vec::new(),
            positional: Vec::new(),
        };
        let mut next = || -> Result<bool, lexopt::Error> {
            let Some(arg) = parser.next()? else {
                return Ok(false);
            };
            match arg {
                lexopt::Arg::Long(flag) if flags.contains(&flag) => {
                    args.flags.push(flag.to_owned())
                }
                lexopt::Arg::Long(key) if keys.contains(&key) => {
                    let key = key.to_owned();
                    let value = parser.value()?.string()?;
                    args.values.insert(key, value);
                }
                lexopt::Arg::Value(value) => args.positional.push(value.string()?),
                other => return Err(other.unexpected()),
            }
            Ok(true)
        };
        while next().map_err(|err| err.to_string())? {}
        Ok(args)
    }

    /// The value of `--key`.
    ///
    /// # Errors
    ///
    /// When it was not given.
    pub fn get(&self, key: &str) -> Result<&str, String> {
        self.values
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("missing --{key}"))
    }

    /// The value of `--key` as a path.
    ///
    /// # Errors
    ///
    /// When it was not given.
    pub fn path(&self, key: &str) -> Result<PathBuf, String> {
        self.get(key).map(PathBuf::from)
    }

    /// The value of `--key` as a number.
    ///
    /// # Errors
    ///
    /// When it was not given or is not a number; the message names the key.
    pub fn number(&self, key: &str) -> Result<u64, String> {
        self.get(key)?
            .parse()
            .map_err(|err| format!("--{key}: {err}"))
    }

    /// Whether `--flag` was given (`flag` without its dashes).
    pub fn flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// The positional arguments, in order.
    pub fn positional(&self) -> &[String] {
        &self.positional
    }
}

/// The command a helper binary was asked to run (its first argument, empty when there is
/// none) and the parser over the arguments that follow it.
pub fn command() -> (String, lexopt::Parser) {
    let mut parser = lexopt::Parser::from_env();
    let command = match parser.next() {
        Ok(Some(lexopt::Arg::Value(command))) => command.to_string_lossy().into_owned(),
        _ => String::new(),
    };
    (command, parser)
}

/// The error for a command the binary does not have.
pub fn unknown_command(command: &str) -> String {
    format!("unknown command {command:?}; see the source's header")
}

/// How `program command` exits: success, or failure after its error, as `<program>
/// <command>: <error>` on stderr.
pub fn exit_status(program: &str, command: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(io::stderr(), "{program} {command}: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `line` to stdout and flushes it: whoever reads the binary's output line by line
/// sees it at once.
///
/// # Errors
///
/// When stdout cannot be written.
pub fn print_line<T: Display + ?Sized>(line: &T) -> Result<(), String> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|err| format!("writing to stdout: {err}"))
}
