//! `scope-lock completions SHELL` and `scope-lock man`: shell completions and manual pages,
//! generated at run time from the clap definitions in `cli`, so that they always describe the
//! command line of the binary that prints them.

use std::io::{self, Write as _};

use clap::CommandFactory as _;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::exit::{self, Failure};

pub(crate) fn completions(args: &CompletionsArgs) -> Result<u8, Failure> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, BIN_NAME, &mut script);
    if args.shell == clap_complete::Shell::Bash {
        script = mend_bash_states(&script);
    }
    write_stdout(&script)?;
    Ok(exit::SUCCESS)
}

const BIN_NAME: &str = "scope-lock";

/// clap_complete's bash script for a name with a hyphen names each subcommand's state in two
/// ways: the loop that reads the words makes `scope__lock__subcmd__run`, the `case` that
/// completes its options expects `scope__subcmd__lock__subcmd__run`, so nothing after a
/// subcommand ever completed (clap issue 6421). The states are spelled the loop's way here;
/// the completion test in the `cli` tests catches it if the generator changes.
fn mend_bash_states(script: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(script)
        .replace("scope__subcmd__lock", "scope__lock")
        .into_bytes()
}

pub(crate) fn man(args: &ManArgs) -> Result<u8, Failure> {
    let command = Cli::command();
    match &args.dir {
        Some(dir) => {
            let cannot = |err: io::Error| {
                Failure::new(
                    exit::FAILURE,
                    format!(
                        "cannot write the manual pages into {}: {}",
                        dir.display(),
                        exit::os_reason(&err)
                    ),
                )
            };
            std::fs::create_dir_all(dir).map_err(cannot)?;
            clap_mangen::generate_to(command, dir).map_err(cannot)?;
            println!(
                "wrote scope-lock.1 and a page per command into {}",
                dir.display()
            );
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .map_err(|err| Failure::new(exit::FAILURE, exit::os_reason(&err)))?;
            write_stdout(&page)?;
        }
    }
    Ok(exit::SUCCESS)
}

fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|err| {
            Failure::new(
                exit::FAILURE,
                format!("cannot write to stdout: {}", exit::os_reason(&err)),
            )
        })
}
