//! `statfs`: the filesystems whose flock cannot be trusted to exclude.

use std::fs::File;
use std::io;

/// Names the filesystem under `file` when it is one whose `flock` is emulated or local to one
/// client (NFS, SMB/CIFS, 9p): there a lock taken here may not exclude a process elsewhere, and
/// on NFS a second descriptor in the same process does not even conflict, which would make our
/// own live locks look stale. We refuse such directories rather than silently lock nothing.
pub(crate) fn unreliable_flock_filesystem(file: &File) -> io::Result<Option<&'static str>> {
    let stat = rustix::fs::fstatfs(file)?;
    // The magic numbers all fit in 32 bits, whatever the width of f_type on this target.
    #[allow(clippy::unnecessary_cast)]
    Ok(unreliable_flock_magic(stat.f_type as u32))
}

/// The filesystems whose flock we do not trust, by `f_type` (linux/magic.h and the
/// filesystems' own headers). Network and cluster filesystems either emulate flock with their
/// own lock protocol (whose guarantees and failure modes differ from one version or mount
/// option to the next) or keep it local to one client. FUSE passes flock to the userspace
/// daemon when it asks for it (sshfs, GlusterFS's native client, and others), so what a
/// lock excludes depends on that daemon; `statfs` cannot tell which daemon it is.
fn unreliable_flock_magic(magic: u32) -> Option<&'static str> {
    match magic {
        0x6969 => Some("NFS"),
        0xFF53_4D42 => Some("CIFS"),
        0xFE53_4D42 => Some("SMB2"),
        0x517B => Some("SMB"),
        0x0102_1997 => Some("9p"),
        0x6573_5546 => Some("FUSE (sshfs, GlusterFS and other userspace filesystems)"),
        0x00C3_6400 => Some("CephFS"),
        0x0BD0_0BD0 => Some("Lustre"),
        0x5346_414F => Some("AFS"),
        0x6B41_4653 => Some("AFS (kAFS)"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::unix::tests::open_sentinel;

    #[test]
    fn network_filesystems_are_recognised_and_local_ones_are_not() -> io::Result<()> {
        // (f_type, a word the name must contain), from the kernel's and the filesystems'
        // headers.
        let unreliable = [
            (0x6969, "NFS"),
            (0xFF53_4D42, "CIFS"),
            (0xFE53_4D42, "SMB2"),
            (0x517B, "SMB"),
            (0x0102_1997, "9p"),
            (0x6573_5546, "FUSE"),
            (0x6573_5546, "GlusterFS"),
            (0x6573_5546, "sshfs"),
            (0x00C3_6400, "CephFS"),
            (0x0BD0_0BD0, "Lustre"),
            (0x5346_414F, "AFS"),
            (0x6B41_4653, "AFS"),
        ];
        for (magic, name) in unreliable {
            let found = unreliable_flock_magic(magic);
            assert!(
                found.is_some_and(|found| found.contains(name)),
                "{magic:#x} should be {name}, is {found:?}"
            );
        }
        // ext4, tmpfs, btrfs, xfs, overlayfs
        for local in [0xEF53, 0x0102_1994, 0x9123_683E, 0x5846_5342, 0x794C_7630] {
            assert_eq!(unreliable_flock_magic(local), None, "{local:#x}");
        }
        let dir = tempfile::tempdir()?;
        let file = open_sentinel(&dir.path().join("s"))?;
        assert_eq!(unreliable_flock_filesystem(&file)?, None);
        Ok(())
    }
}
