//! The library's integration tests, one module per subject, in one test binary (one link for
//! the whole suite, which every mutant of `cargo xtask mutants` pays). The fixture is
//! `scope_lock::testing` (the `test-support` feature).

mod async_acquire;
mod bad_input;
mod cancel_wait;
mod etcd;
mod globs;
mod held_for_life;
mod inspect;
mod malformed;
mod matrix;
mod paths;
mod properties;
mod protocol_edges;
mod proven_holders;
mod shared_scopes;
mod sharing;
mod waiting;
