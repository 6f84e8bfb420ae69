//! Linux (and Android): what the kernel offers beyond every Unix, one file per source:
//! [`inotify`] wakes waiters, [`procfs`] names flock holders and proves who a process is,
//! [`statfs`] tells the filesystems whose flock cannot be trusted.

mod inotify;
mod procfs;
mod statfs;

pub(crate) use inotify::DirWatch;
pub(crate) use procfs::{
    command_line, flock_holders, flock_holders_of, flocks_through_fds, own_identity, parent_of,
    process_status, start_ticks_of,
};
pub(crate) use statfs::unreliable_flock_filesystem;
