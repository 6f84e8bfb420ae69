//! One module per subcommand.

pub(crate) mod brk;
pub(crate) mod check;
pub(crate) mod clean;
pub(crate) mod docs;
pub(crate) mod list;
pub(crate) mod run;
