//! `/proc`: who holds an flock (`/proc/locks`), a process's parent and start time
//! (`/proc/<pid>/stat`), and whether `/proc` is our own pid namespace's, so that what it says
//! can prove who a process is (see `protocol/ancestry/`).

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;

use crate::sys::unix::{FileId, ProcessIdentity, file_id};

/// The pids that hold an flock on `file`'s inode, as `/proc/locks` lists them (Linux); empty
/// when nobody does or this system cannot say. Only for messages: by the time it is read the
/// holder may have changed.
pub(crate) fn flock_holders(file: &File) -> Vec<u32> {
    file_id(file).map_or_else(|_| Vec::new(), flock_holders_of)
}

/// [`flock_holders`] of the inode `file`. The pids are those of `/proc`'s namespace: a holder
/// outside it shows as 0, or not at all.
pub(crate) fn flock_holders_of(file: FileId) -> Vec<u32> {
    let device = proc_locks_device(file);
    // /proc/locks is one system-wide table handed out a page at a time: a lock dropped
    // elsewhere between two pages shifts the rest, and our line can be skipped. Skipping only
    // ever hides lines, so a few reads make naming "another process" for a real holder rare.
    for _ in 0..PROC_LOCKS_READS {
        let Ok(table) = fs::read_to_string("/proc/locks") else {
            break;
        };
        let pids = parse_proc_locks(&table, &device);
        if !pids.is_empty() {
            return pids;
        }
    }
    Vec::new()
}

/// The command line of process `pid` (`/proc/<pid>/cmdline`: its arguments, each ended by a
/// NUL), for showing who holds a lock; `None` when it cannot be read (no such process, or
/// `/proc` hides it) or is empty (a kernel thread, or a process exiting).
pub(crate) fn command_line(pid: u32) -> Option<Vec<OsString>> {
    parse_cmdline(&fs::read(format!("/proc/{pid}/cmdline")).ok()?)
}

/// The arguments in the contents of a `/proc/<pid>/cmdline`; `None` when there are none.
pub(crate) fn parse_cmdline(bytes: &[u8]) -> Option<Vec<OsString>> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return None;
    }
    Some(
        bytes
            .split(|&byte| byte == 0)
            .map(|arg| OsString::from_vec(arg.to_vec()))
            .collect(),
    )
}

/// Which of `files` process `pid` holds an flock on through one of its own descriptors: a
/// descriptor of the file's inode whose open file description holds an flock on it, as
/// `/proc/<pid>/fdinfo` says (it lists the locks of each descriptor's open file description).
/// That is the same fact `/proc/locks` shows, read where no other process's locking can hide
/// it: `/proc/locks` is one system-wide table handed out a page at a time, in which a line is
/// skipped now and then while other locks come and go, whereas a process's own descriptors are
/// read one by one.
///
/// The descriptor table is walked once for all of `files`, and `fdinfo` read only for the
/// descriptors of one of them: a process holding 10,000 locks has 10,000 descriptors, and a
/// walk per lock would stat 10,000 × 10,000 of them.
///
/// # Errors
///
/// When `/proc/<pid>/fd` cannot be listed: no such process (`NotFound`), or another user's
/// (`PermissionDenied`).
pub(crate) fn flocks_through_fds(pid: u32, files: &HashSet<FileId>) -> io::Result<HashSet<FileId>> {
    let mut held = HashSet::new();
    for fd in fs::read_dir(format!("/proc/{pid}/fd"))? {
        if held.len() == files.len() {
            break;
        }
        let Ok(fd) = fd else { continue };
        // A stat through the magic link is of the open file itself, whatever its name now.
        let Ok(meta) = fs::metadata(fd.path()) else {
            continue;
        };
        let id = FileId::new(meta.dev(), meta.ino());
        if !files.contains(&id) || held.contains(&id) {
            continue;
        }
        let info = format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy());
        if fs::read_to_string(info).is_ok_and(|info| fdinfo_lists_an_flock(&info)) {
            held.insert(id);
        }
    }
    Ok(held)
}

/// Whether a `/proc/<pid>/fdinfo/<fd>` text lists an flock (`lock:\t1: FLOCK  ADVISORY  WRITE
/// ...`), which the kernel shows only for the locks of that descriptor's open file description.
fn fdinfo_lists_an_flock(fdinfo: &str) -> bool {
    fdinfo.lines().any(|line| {
        line.strip_prefix("lock:")
            .is_some_and(|lock| lock.split_ascii_whitespace().nth(1) == Some("FLOCK"))
    })
}

/// How many times [`flock_holders`] reads `/proc/locks` before it says nobody holds the lock.
const PROC_LOCKS_READS: usize = 3;

/// `file` as `/proc/locks` and `fdinfo` name a lock's inode: `MAJ:MIN:INODE`, major and minor
/// in hex.
fn proc_locks_device(file: FileId) -> String {
    format!(
        "{:02x}:{:02x}:{}",
        rustix::fs::major(file.dev),
        rustix::fs::minor(file.dev),
        file.ino
    )
}

/// The pids of the granted `FLOCK` entries of `/proc/locks` for `device` (`MAJ:MIN:INODE`, as
/// the kernel prints it: major and minor in hex). Lines with `->` are requests still waiting.
pub(crate) fn parse_proc_locks(table: &str, device: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for line in table.lines() {
        let mut fields = line.split_ascii_whitespace().skip(1);
        let (Some(class), Some(_advisory), Some(_mode), Some(pid), Some(dev)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            continue;
        };
        if class != "FLOCK" || !dev.eq_ignore_ascii_case(device) {
            continue;
        }
        if let Ok(pid) = pid.parse()
            && !pids.contains(&pid)
        {
            pids.push(pid);
        }
    }
    pids
}

/// The text of `/proc/<pid>/status` (`pid` may be `self`).
pub(crate) fn process_status(pid: &str) -> io::Result<String> {
    fs::read_to_string(format!("/proc/{pid}/status"))
}

/// The parent of `pid`, from `/proc/<pid>/stat`.
pub(crate) fn parent_of(pid: u32) -> Option<u32> {
    parse_proc_stat_ppid(&read_stat(pid)?)
}

/// `/proc/<pid>/stat`, in one `read` where it fits in the buffer (it always does: some fifty
/// numbers and a command name of at most 16 bytes). `read_to_string` sizes its buffer from the file's
/// size, which procfs gives as 0, and so takes about six reads, probing and growing: on the
/// ancestor walk that every blocked attempt made, most of its system calls. The file is one
/// line; a read that ends with its newline has all of it.
fn read_stat(pid: u32) -> Option<String> {
    const FITS: usize = 2048;
    let mut file = File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut text = vec![0u8; FITS];
    let mut len = 0;
    loop {
        if len == text.len() {
            text.resize(len * 2, 0);
        }
        match file.read(&mut text[len..]) {
            Ok(0) => break,
            Ok(read) => {
                len += read;
                if text[len - 1] == b'\n' {
                    break;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    text.truncate(len);
    String::from_utf8(text).ok()
}

/// `/proc/<pid>/stat` is `pid (comm) state ppid ...`, where `comm` may itself contain spaces
/// and parentheses, so the fields are counted from the *last* `)`.
pub(crate) fn parse_proc_stat_ppid(stat: &str) -> Option<u32> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_ascii_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

/// This process's identity, or `None` when `/proc` is not provably the proc filesystem of this
/// process's own pid namespace (see [`proc_is_ours`]): then nothing read from it can name our
/// processes. Read once per process (a forked child reads its own). Kept in atomics, not
/// behind a lock, so that a child forked while another thread reads it cannot deadlock.
pub(crate) fn own_identity() -> Option<ProcessIdentity> {
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    // The pid whose identity the other two hold (0: none yet); a namespace of 0 (no nsfs inode
    // has it) stands for "cannot be proven". Every thread of a process reads the same values,
    // so racing writers store the same numbers.
    static READ_BY: AtomicU32 = AtomicU32::new(0);
    static NAMESPACE: AtomicU64 = AtomicU64::new(0);
    static STARTED: AtomicU64 = AtomicU64::new(0);
    let pid = std::process::id();
    if READ_BY.load(Ordering::Acquire) != pid {
        let identity = read_own_identity(pid);
        NAMESPACE.store(identity.map_or(0, |id| id.pid_namespace), Ordering::Relaxed);
        STARTED.store(identity.map_or(0, |id| id.start_ticks), Ordering::Relaxed);
        READ_BY.store(pid, Ordering::Release);
        return identity;
    }
    match NAMESPACE.load(Ordering::Relaxed) {
        0 => None,
        pid_namespace => Some(ProcessIdentity {
            pid_namespace,
            start_ticks: STARTED.load(Ordering::Relaxed),
        }),
    }
}
fn read_own_identity(pid: u32) -> Option<ProcessIdentity> {
    if !proc_is_ours(pid) {
        return None;
    }
    let pid_namespace = fs::metadata("/proc/self/ns/pid").ok()?.ino();
    Some(ProcessIdentity {
        pid_namespace: (pid_namespace != 0).then_some(pid_namespace)?,
        start_ticks: start_ticks_of(pid)?,
    })
}

/// Whether `/proc` is the proc filesystem of our own pid namespace, `pid` being our pid: it is
/// a procfs, `/proc/self` names `pid`, and `NSpid` in `/proc/self/status` lists `pid` alone.
/// A `/proc` mounted by an ancestor namespace lists our pid in each namespace from its own
/// down (more than one), and in one of any other namespace we have no `/proc/self` at all.
fn proc_is_ours(pid: u32) -> bool {
    const PROC_SUPER_MAGIC: u32 = 0x9fa0;
    let Ok(status) = File::open("/proc/self/status") else {
        return false;
    };
    // The magic number fits in 32 bits, whatever the width of f_type on this target.
    #[allow(clippy::unnecessary_cast)]
    let is_proc = rustix::fs::fstatfs(&status).is_ok_and(|fs| fs.f_type as u32 == PROC_SUPER_MAGIC);
    let names_us =
        fs::read_link("/proc/self").is_ok_and(|link| link.as_os_str() == pid.to_string().as_str());
    let mut text = String::new();
    is_proc && names_us && (&status).read_to_string(&mut text).is_ok() && nspid_is_only(&text, pid)
}

/// Whether the `NSpid:` line of a `/proc/<pid>/status` lists `pid` and nothing else. A kernel
/// too old to have the line (before 4.1) proves nothing.
pub(crate) fn nspid_is_only(status: &str, pid: u32) -> bool {
    status
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))
        .is_some_and(|pids| {
            let mut pids = pids.split_ascii_whitespace();
            pids.next().and_then(|first| first.parse().ok()) == Some(pid) && pids.next().is_none()
        })
}

/// When process `pid` started, from `/proc/<pid>/stat`.
pub(crate) fn start_ticks_of(pid: u32) -> Option<u64> {
    parse_proc_stat_start_ticks(&read_stat(pid)?)
}

/// Field 22 of `/proc/<pid>/stat` (`starttime`), counted, like the parent's, from the *last*
/// `)`, since `comm` may contain spaces and parentheses.
pub(crate) fn parse_proc_stat_start_ticks(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // Fields 3 (state) to 21 come before it.
    after_comm.split_ascii_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::sys::unix::tests::{open_lock_file, open_sentinel};
    use crate::sys::{holds_flock_through_fd, try_lock_exclusive, unlock};

    #[test]
    fn a_stat_read_in_one_go_is_the_whole_line() -> io::Result<()> {
        let pid = std::process::id();
        let whole = read_stat(pid).ok_or_else(|| io::Error::other("cannot read our stat"))?;
        assert!(
            whole.ends_with('\n') && whole.matches('\n').count() == 1,
            "{whole:?}"
        );
        let slow = fs::read_to_string(format!("/proc/{pid}/stat"))?;
        assert_eq!(parse_proc_stat_ppid(&whole), parse_proc_stat_ppid(&slow));
        assert_eq!(
            parse_proc_stat_start_ticks(&whole),
            parse_proc_stat_start_ticks(&slow)
        );
        assert_eq!(read_stat(u32::MAX), None, "no such process");
        Ok(())
    }

    #[test]
    fn a_command_line_is_its_nul_separated_arguments_byte_for_byte() {
        assert_eq!(
            parse_cmdline(b"sh\0-c\0echo a b\0\xff\0"),
            Some(vec![
                OsString::from("sh"),
                OsString::from("-c"),
                OsString::from("echo a b"),
                OsString::from_vec(vec![0xff]),
            ])
        );
        // An empty argument is kept; no arguments at all is no command line.
        assert_eq!(
            parse_cmdline(b"x\0\0"),
            Some(vec![OsString::from("x"), OsString::new()])
        );
        assert_eq!(parse_cmdline(b""), None);
        let ours = command_line(std::process::id()).unwrap_or_default();
        let exe = std::env::args_os().next().unwrap_or_default();
        assert_eq!(ours.first(), Some(&exe), "{ours:?}");
    }

    #[test]
    fn proc_stat_start_ticks_is_field_22_whatever_the_command_name() {
        let tail = "R 24518 24518 9856 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 139908 3133440 387";
        for comm in ["cat", "a) b) (c", "x y z", ") 1 2 3 4"] {
            let stat = format!("24522 ({comm}) {tail}");
            assert_eq!(parse_proc_stat_start_ticks(&stat), Some(139_908), "{stat}");
        }
        assert_eq!(parse_proc_stat_start_ticks("garbage"), None);
        assert_eq!(parse_proc_stat_start_ticks("1 (init) S 0 1 1"), None);
        assert_eq!(
            parse_proc_stat_start_ticks(&format!("1 (x) {}", tail.replace("139908", "-5"))),
            None
        );
    }

    #[test]
    fn nspid_proves_our_namespace_only_when_it_lists_our_pid_alone() {
        let status = |nspid: &str| format!("Name:\tcat\nPid:\t7\n{nspid}\nVmPeak:\t1 kB\n");
        assert!(nspid_is_only(&status("NSpid:\t7"), 7));
        // A /proc of an ancestor namespace lists our pid there first, then ours.
        assert!(!nspid_is_only(&status("NSpid:\t4321\t7"), 7));
        assert!(!nspid_is_only(&status("NSpid:\t8"), 7));
        assert!(!nspid_is_only(&status("NSpid:"), 7));
        // A kernel without the line (before 4.1) proves nothing.
        assert!(!nspid_is_only(&status("NStgid:\t7"), 7));
    }

    /// On this system (the tests run in a namespace whose own /proc is mounted), our identity
    /// is what /proc says of us, and our parent's start time is before ours.
    #[test]
    fn our_identity_is_our_namespace_and_start_time() -> io::Result<()> {
        let identity = own_identity().ok_or_else(|| io::Error::other("no identity"))?;
        let link = fs::read_link("/proc/self/ns/pid")?;
        assert_eq!(
            link.to_string_lossy(),
            format!("pid:[{}]", identity.pid_namespace)
        );
        let pid = std::process::id();
        assert_eq!(start_ticks_of(pid), Some(identity.start_ticks));
        let parent = std::os::unix::process::parent_id();
        assert!(start_ticks_of(parent).is_some_and(|ticks| ticks <= identity.start_ticks));
        assert_eq!(start_ticks_of(99_999_999), None);
        Ok(())
    }

    #[test]
    fn proc_stat_ppid_survives_hostile_command_names() {
        assert_eq!(parse_proc_stat_ppid("42 (bash) S 7 42 42 0"), Some(7));
        assert_eq!(parse_proc_stat_ppid("42 (a) b) (c) R 9 1 1"), Some(9));
        assert_eq!(parse_proc_stat_ppid("42 (x y z) S 12345 0"), Some(12345));
        assert_eq!(parse_proc_stat_ppid("garbage"), None);
        assert_eq!(parse_proc_stat_ppid("1 (init) S"), None);
    }

    #[test]
    fn proc_locks_names_granted_flock_holders_only() {
        let table = "1: FLOCK  ADVISORY  WRITE 17380 fe:00:5480452 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 99 fe:00:5480452 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 55 fe:00:5480452 0 EOF\n\
                     3: FLOCK  ADVISORY  READ 23 fe:00:10133507 0 EOF\n\
                     4: OFDLCK ADVISORY  READ -1 fe:00:5480452 0 EOF\n";
        assert_eq!(parse_proc_locks(table, "fe:00:5480452"), vec![17380]);
        assert_eq!(parse_proc_locks(table, "fe:00:10133507"), vec![23]);
        assert_eq!(parse_proc_locks(table, "08:01:1"), Vec::<u32>::new());
        assert_eq!(
            parse_proc_locks("garbage\n\n", "fe:00:1"),
            Vec::<u32>::new()
        );
    }
    #[test]
    fn this_process_is_named_as_the_holder_of_its_own_flock() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("x.lock");
        let held = open_sentinel(&path)?;
        assert!(try_lock_exclusive(&held)?);
        let other = open_lock_file(&path)?;
        // /proc/locks is system-wide and read a page at a time; locks taken or dropped
        // elsewhere between two pages can shift our line past the read and drop it. Skipping
        // only ever hides lines, so one sighting in a few reads proves we are listed.
        let seen = (0..20).any(|_| flock_holders(&other) == vec![std::process::id()]);
        assert!(seen, "this process was never listed as the holder");
        // An explicit unlock, so the answer cannot depend on some thread forking meanwhile.
        unlock(&held)?;
        assert_eq!(flock_holders(&other), Vec::<u32>::new());
        drop(held);
        Ok(())
    }
    /// Our own descriptors say we hold the flock exactly while we do, through any of our
    /// descriptors of its open file description and through none of another's.
    #[test]
    fn fdinfo_proves_this_process_holds_its_flock_exactly_while_it_does() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("x.lock");
        let held = open_sentinel(&path)?;
        let id = file_id(&held)?;
        let other = dir.path().join("y.lock");
        let unrelated = open_sentinel(&other)?;
        assert!(try_lock_exclusive(&unrelated)?);
        let pid = std::process::id();
        assert!(
            !holds_flock_through_fd(pid, id)?,
            "nothing holds x.lock yet"
        );
        assert!(try_lock_exclusive(&held)?);
        assert!(holds_flock_through_fd(pid, id)?);
        // Our parent has no descriptor of it.
        let parent = std::os::unix::process::parent_id();
        assert!(!holds_flock_through_fd(parent, id)?);
        unlock(&held)?;
        assert!(!holds_flock_through_fd(pid, id)?, "the flock is gone");
        let gone = holds_flock_through_fd(99_999_999, id).map_err(|err| err.kind());
        assert_eq!(gone.err(), Some(io::ErrorKind::NotFound), "no such process");
        Ok(())
    }

    /// One walk answers for many files at once: exactly those of them whose flock this
    /// process holds, not one it merely has open, nor one it does not have open at all, nor
    /// one it holds but was not asked about.
    #[test]
    fn one_walk_names_exactly_the_files_whose_flock_this_process_holds() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let open = |name: &str| open_sentinel(&dir.path().join(name));
        let (first, second, only_open) = (open("1.lock")?, open("2.lock")?, open("3.lock")?);
        let not_asked = open("4.lock")?;
        assert!(try_lock_exclusive(&first)? && try_lock_exclusive(&second)?);
        assert!(try_lock_exclusive(&not_asked)?);
        let absent = FileId::new(u64::MAX, u64::MAX);
        let asked: HashSet<FileId> = [&first, &second, &only_open]
            .into_iter()
            .map(file_id)
            .chain([Ok(absent)])
            .collect::<io::Result<_>>()?;
        let held = flocks_through_fds(std::process::id(), &asked)?;
        assert_eq!(held, HashSet::from([file_id(&first)?, file_id(&second)?]));
        Ok(())
    }

    #[test]
    fn fdinfo_lists_an_flock_only_on_a_lock_line() {
        let held = "pos:\t0\nflags:\t0100000\nmnt_id:\t30\nino:\t42\n\
                    lock:\t1: FLOCK  ADVISORY  WRITE 1234 fe:00:42 0 EOF\n";
        assert!(fdinfo_lists_an_flock(held));
        let posix = "pos:\t0\nlock:\t1: POSIX  ADVISORY  WRITE 1234 fe:00:42 0 EOF\n";
        assert!(!fdinfo_lists_an_flock(posix));
        assert!(!fdinfo_lists_an_flock("pos:\t0\nflags:\t0100000\n"));
        assert!(!fdinfo_lists_an_flock("FLOCK\n"));
    }

    #[test]
    fn the_parent_read_from_proc_is_the_one_getppid_reports() {
        assert_eq!(
            parent_of(std::process::id()),
            Some(std::os::unix::process::parent_id())
        );
    }
}
