//! The `scope-lock` binary; everything is in the `scope_lock_cli` library next to it.

fn main() -> std::process::ExitCode {
    scope_lock_cli::main()
}
