//! The regression suite's tests: one module per bug record (`bug_423`, `sl_1`, ...) and per
//! property (`races`, `faults`, `processes`, `snapshots`), in one test binary. The fixture is
//! `scope_lock::testing`; `support` adds the worker processes.

mod bench_driver;
mod bug_1281;
mod bug_1361;
mod bug_423;
mod bug_family;
mod etcd;
mod faults;
mod fencing;
mod processes;
mod races;
mod sl_1;
mod sl_24;
mod snapshots;
mod support;
mod turns;
