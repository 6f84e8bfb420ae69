//! Shell completions and manual pages (issue 20, SL-25): generated from the clap definitions by
//! the binary itself, so they cannot drift from its command line; bash really completes with
//! the script installed.

use std::fs;
use std::process::Command;

use crate::support::{Sandbox, TestResult, run_to_end};

/// What bash's completion function for `scope-lock` (as `completions bash` prints it, sourced)
/// offers for the command line `words`, completing its last word.
fn bash_completes(
    script: &std::path::Path,
    words: &[&str],
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let quoted: Vec<String> = words.iter().map(|word| format!("'{word}'")).collect();
    let current = words.len() - 1;
    let previous = words[current.saturating_sub(1)];
    // As bash calls a completion function: COMP_WORDS and COMP_CWORD set, and the command, the
    // word being completed and the word before it as arguments.
    let program = format!(
        "source '{}' || exit 9\n\
         function=$(complete -p scope-lock | sed -n 's/.* -F \\([^ ]*\\) .*/\\1/p')\n\
         COMP_WORDS=({})\n\
         COMP_CWORD={current}\n\
         COMP_LINE=\"${{COMP_WORDS[*]}}\"\n\
         COMP_POINT=${{#COMP_LINE}}\n\
         \"$function\" scope-lock '{}' '{previous}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words[current],
    );
    let mut bash = Command::new("bash");
    bash.args(["--norc", "--noprofile", "-c", &program]);
    let out = run_to_end(bash)?;
    assert_eq!(out.code(), 0, "bash: {}", out.stderr);
    Ok(out.stdout.lines().map(str::to_owned).collect())
}

#[test]
fn bash_completes_commands_options_and_values_with_the_script_installed() -> TestResult {
    let sandbox = Sandbox::new()?;
    let out = sandbox.run(&["completions", "bash"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let script = sandbox.path().join("scope-lock.bash");
    fs::write(&script, &out.stdout)?;

    assert_eq!(bash_completes(&script, &["scope-lock", "li"])?, ["list"]);
    assert_eq!(
        bash_completes(&script, &["scope-lock", "c"])?,
        ["check", "clean", "completions"]
    );
    // After a subcommand, its own options (clap issue 6421 broke this for hyphenated names).
    assert_eq!(
        bash_completes(&script, &["scope-lock", "run", "--na"])?,
        ["--name"]
    );
    assert_eq!(
        bash_completes(&script, &["scope-lock", "run", "--conf"])?,
        ["--conflict-exit-code"]
    );
    assert_eq!(
        bash_completes(&script, &["scope-lock", "list", "--no"])?,
        ["--noheadings"]
    );
    assert_eq!(
        bash_completes(&script, &["scope-lock", "completions", "z"])?,
        ["zsh"]
    );
    Ok(())
}

#[test]
fn zsh_and_fish_completions_and_the_manual_pages_are_generated() -> TestResult {
    let sandbox = Sandbox::new()?;
    let zsh = sandbox.run(&["completions", "zsh"])?;
    assert!(
        zsh.stdout.starts_with("#compdef scope-lock\n"),
        "{}",
        zsh.stdout
    );
    assert!(
        zsh.stdout.contains("--conflict-exit-code"),
        "{}",
        zsh.stdout
    );
    let fish = sandbox.run(&["completions", "fish"])?;
    assert!(
        fish.stdout.contains("complete -c scope-lock "),
        "{}",
        fish.stdout
    );
    assert!(fish.stdout.contains("-l noheadings"), "{}", fish.stdout);

    let man = sandbox.run(&["man"])?;
    assert_eq!(man.code(), 0, "{}", man.stderr);
    assert!(man.stdout.contains(".TH scope-lock 1"), "{}", man.stdout);
    assert!(
        man.stdout.contains("scope\\-lock\\-run(1)"),
        "{}",
        man.stdout
    );

    let pages = sandbox.path().join("man1");
    let out = sandbox.run(&["man", "--dir", "man1"])?;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let run_page = fs::read_to_string(pages.join("scope-lock-run.1"))?;
    assert!(run_page.contains(".TH scope-lock-run 1"), "{run_page}");
    assert!(run_page.contains("conflict\\-exit\\-code"), "{run_page}");
    for page in [
        "scope-lock.1",
        "scope-lock-list.1",
        "scope-lock-check.1",
        "scope-lock-clean.1",
        "scope-lock-break.1",
    ] {
        assert!(pages.join(page).is_file(), "no {page}");
    }
    Ok(())
}
