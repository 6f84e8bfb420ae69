//! The `scope-lock` command's tests, driving the real binary, one module per subject in one
//! test binary; `support` runs the binary, `support::hostile` makes the threat model's world.

mod break_kill;
mod commands;
mod completions;
mod etcd;
mod flock_habits;
mod globs;
mod help;
mod hostile_world;
mod listing;
mod messages;
mod paths;
mod pid_namespaces;
mod run;
mod run_terminal;
mod shared_dir;
mod shared_scopes;
mod support;
mod symlink_race;
