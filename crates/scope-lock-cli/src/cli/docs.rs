//! `scope-lock completions` and `scope-lock man`: their flags and help.

use clap::Args;

/// Print SHELL's completion script for scope-lock, generated from this command line.
///
/// Load it in the shell you are in, or from the shell's startup file (below), or install it
/// where the shell looks for completions; each shell reads that directory when it starts, so
/// open a new one, and install again after upgrading scope-lock.
#[derive(Debug, Args)]
#[command(after_help = "\
Load (in the shell, or from ~/.bashrc, ~/.zshrc after compinit, ~/.config/fish/config.fish):
  bash: source <(scope-lock completions bash)
  zsh:  source <(scope-lock completions zsh)
  fish: scope-lock completions fish | source

Install:
  bash: mkdir -p ~/.local/share/bash-completion/completions
        scope-lock completions bash > ~/.local/share/bash-completion/completions/scope-lock
        (needs the bash-completion package loaded; for every user:
        > /usr/share/bash-completion/completions/scope-lock)
  zsh:  mkdir -p ~/.zfunc && scope-lock completions zsh > ~/.zfunc/_scope-lock
        (with `fpath+=~/.zfunc` before `compinit` in ~/.zshrc)
  fish: mkdir -p ~/.config/fish/completions
        scope-lock completions fish > ~/.config/fish/completions/scope-lock.fish")]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

/// Print the manual page scope-lock(1) (roff), generated from this command line; with --dir,
/// write it and a page for each subcommand (scope-lock-run(1), ...) into DIR.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  scope-lock man | man -l -
  scope-lock man --dir ~/.local/share/man/man1    # then: man scope-lock-run")]
pub(crate) struct ManArgs {
    /// Write scope-lock.1 and scope-lock-<command>.1 into this directory (made if missing)
    /// instead of printing scope-lock(1).
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<std::path::PathBuf>,
}
