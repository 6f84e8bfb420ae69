//! Whether the holder of a lock (or of a waiter's ticket) is this process or one of its
//! ancestors: the carve-out that lets a loop run a nested loop over its own scope
//! (docs/protocol.md, A3 "Ancestors" and "Who holds a lock"), proven rather than taken from a
//! pid number.
//!
//! A pid is a number in one pid namespace: two containers that share `.running/` through a bind
//! mount each have a pid 2, so "the record's pid is one of my ancestors' numbers" proves
//! nothing. For a record of ours (`"liveness": "flock"`) the holder is this process or an
//! ancestor only when all of these hold:
//!
//! - `/proc` is provably the proc filesystem of our own pid namespace (else nothing read from
//!   it names our processes);
//! - the record carries its writer's pid namespace and start time, and the namespace is ours;
//! - its pid is ours, or one of our ancestors' (pid 1 never counts, as in the original);
//! - that process holds the file's flock: one of its own descriptors (`/proc/<pid>/fdinfo`)
//!   holds it, or `/proc/locks` names that pid, and no other, as its holder. A holder in another
//!   namespace has no descriptors in our `/proc` and shows in `/proc/locks` as 0, another
//!   number, or not at all, so a record copied, forged or written elsewhere fails here. The
//!   descriptors are read first: `/proc/locks` is read a page at a time from one system-wide
//!   table and skips a line now and then while other locks come and go, so on its own it
//!   would sometimes fail to prove a true holder (seen under load: a racing thread was told
//!   the lock it lost to was "another process's"). It remains the proof for an ancestor whose
//!   descriptors we may not read (another user's);
//! - that process started when the record says, so a pid reused since is not taken for it.
//!
//! Whatever cannot be read or does not match leaves the lock blocking (fail closed). The
//! original's records hold no flock and carry no such keys: their rule stays the original's,
//! the pid number. So does every record on systems without pid namespaces (macOS, the BSDs),
//! where a pid number names one process system-wide.

mod world;

use std::collections::HashMap;
use std::sync::Mutex;

use crate::record::LockRecord;
use crate::sys::{FileId, ProcessIdentity};

pub(crate) use world::{System, World};

/// How a lock's holder is related to this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kin {
    /// This very process.
    This,
    /// One of its ancestors (not pid 1).
    Ancestor,
    /// Anyone else, or not proven to be one of the above.
    Stranger,
}

/// Who the holder of a lock or ticket is to us, as [`decide`](super::decide) asks it: the
/// local backend proves it ([`Ancestry`]); the etcd backend knows only its own lease.
pub(crate) trait Kinship {
    /// Whether the holder of the lock (or ticket) `file`, whose record is `record`, is one of
    /// our ancestors (a loop that runs us as a nested loop).
    fn is_ancestor(&mut self, record: &LockRecord, file: FileId) -> bool;
    /// Whether that holder is this process.
    fn is_this_process(&mut self, record: &LockRecord, file: FileId) -> bool;
    /// Whether that holder is this process or one of our ancestors.
    fn contains(&mut self, record: &LockRecord, file: FileId) -> bool;
}

impl<W: World> Kinship for Ancestry<W> {
    fn is_ancestor(&mut self, record: &LockRecord, file: FileId) -> bool {
        Ancestry::is_ancestor(self, record, file)
    }

    fn is_this_process(&mut self, record: &LockRecord, file: FileId) -> bool {
        Ancestry::is_this_process(self, record, file)
    }

    fn contains(&mut self, record: &LockRecord, file: FileId) -> bool {
        Ancestry::contains(self, record, file)
    }
}

/// This process and its ancestors, as one decision sees them: what is read from the system is
/// read at most once per decision, and only when a lock's holder might be one of us.
#[derive(Debug, Default)]
pub(crate) struct Ancestry<W: World = System> {
    world: W,
    /// The chain as this decision read it, and whether to its end.
    ancestors: Option<(Vec<u32>, bool)>,
    /// A chain read to its end by an earlier decision of this process, if any: a pid that is
    /// not in it is not an ancestor now (see [`Ancestry::ruled_out`]).
    earlier: Option<Vec<u32>>,
    identity: Option<Option<ProcessIdentity>>,
    verdicts: HashMap<FileId, Kin>,
}

/// The chain that this process last read to its end, with the pid that read it: a child
/// forked since has other ancestors, and reads its own. Never waited for (`try_lock`), so a
/// child forked while another thread held it cannot deadlock on it.
static LAST_WHOLE_CHAIN: Mutex<Option<(u32, Vec<u32>)>> = Mutex::new(None);

impl Ancestry {
    /// This process's ancestry, knowing the chain it last read to its end, if any (see
    /// [`Ancestry::ruled_out`]).
    pub(crate) fn of_this_process() -> Self {
        let pid = std::process::id();
        let earlier = LAST_WHOLE_CHAIN.try_lock().ok().and_then(|last| {
            last.as_ref()
                .filter(|(reader, _)| *reader == pid)
                .map(|(_, chain)| chain.clone())
        });
        Self {
            earlier,
            ..Self::default()
        }
    }

    /// Keeps the chain read to its end (by this decision, or else an earlier one) for this
    /// process's next decisions.
    pub(crate) fn remember(self) {
        if let Some(chain) = self.chain_to_hand_on()
            && let Ok(mut last) = LAST_WHOLE_CHAIN.try_lock()
        {
            *last = Some((std::process::id(), chain));
        }
    }
}

impl<W: World> Ancestry<W> {
    /// The chain for this process's next decisions: the one read now if it was read to its
    /// end, else the earlier one.
    pub(crate) fn chain_to_hand_on(self) -> Option<Vec<u32>> {
        match self.ancestors {
            Some((pids, true)) => Some(pids),
            _ => self.earlier,
        }
    }

    /// Whether `pid` cannot be one of our ancestors, known without reading the chain again:
    /// it is missing from a chain that this process read to its end earlier. A process never gains
    /// an ancestor: when its parent dies it is adopted by a living ancestor (a thread of the
    /// parent's, a subreaper above it) or by its namespace's init (pid 1, never counted), so
    /// a chain read later holds only pids of the earlier one. A pid that is in it may be
    /// gone and reused since, so that one is judged on the chain read afresh. Every blocked
    /// attempt used to walk `/proc` up the chain again.
    fn ruled_out(&self, pid: u32) -> bool {
        self.earlier
            .as_ref()
            .is_some_and(|chain| !chain.contains(&pid))
    }

    /// Whether the holder of the lock (or ticket) `file`, whose record is `record`, is one of
    /// our ancestors (a loop that runs us as a nested loop).
    pub(crate) fn is_ancestor(&mut self, record: &LockRecord, file: FileId) -> bool {
        self.kin(record, file) == Kin::Ancestor
    }

    /// Whether that holder is this process.
    pub(crate) fn is_this_process(&mut self, record: &LockRecord, file: FileId) -> bool {
        self.kin(record, file) == Kin::This
    }

    /// Whether that holder is this process or one of our ancestors.
    pub(crate) fn contains(&mut self, record: &LockRecord, file: FileId) -> bool {
        self.kin(record, file) != Kin::Stranger
    }

    fn kin(&mut self, record: &LockRecord, file: FileId) -> Kin {
        if let Some(kin) = self.verdicts.get(&file) {
            return *kin;
        }
        let kin = self.judge(record, file);
        self.verdicts.insert(file, kin);
        kin
    }

    fn judge(&mut self, record: &LockRecord, file: FileId) -> Kin {
        let pid = record.pid();
        let claimed = if pid == self.world.own_pid() {
            Kin::This
        } else if self.ruled_out(pid) {
            return Kin::Stranger;
        } else if self.ancestors().contains(&pid) {
            Kin::Ancestor
        } else {
            return Kin::Stranger;
        };
        if !record.is_flock_liveness() || self.world.pids_are_global() {
            // The original's rule (its records prove nothing more), or a system where the
            // number is the process.
            return claimed;
        }
        if self.proven(record, file, claimed) {
            claimed
        } else {
            Kin::Stranger
        }
    }

    /// Whether the holder of our record `record` is provably the process its pid names here,
    /// which is `claimed` to us.
    fn proven(&mut self, record: &LockRecord, file: FileId, claimed: Kin) -> bool {
        let Some(own) = self.identity() else {
            return false;
        };
        let Some(recorded) = record.identity() else {
            return false;
        };
        if recorded.pid_namespace != own.pid_namespace {
            return false;
        }
        let pid = record.pid();
        if !self.world.holds_flock_through_fd(pid, file) && self.world.flock_holders(file) != [pid]
        {
            return false;
        }
        let started = match claimed {
            Kin::This => Some(own.start_ticks),
            _ => self.world.start_ticks(pid),
        };
        started == Some(recorded.start_ticks)
    }

    fn ancestors(&mut self) -> &[u32] {
        let world = &self.world;
        &self.ancestors.get_or_insert_with(|| world.ancestors()).0
    }

    fn identity(&mut self) -> Option<ProcessIdentity> {
        let world = &self.world;
        *self.identity.get_or_insert_with(|| world.own_identity())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::sys;

    const OURS: u32 = 500;
    const PARENT: u32 = 2;
    const NAMESPACE: u64 = 4_026_531_836;
    const STARTED: u64 = 1_000;
    const PARENT_STARTED: u64 = 900;

    /// A world of made-up facts: we are pid 500, child of pid 2 (which started at 900), in
    /// namespace 4026531836; `/proc/locks` names `holders` as holding every flock, and the
    /// descriptors of `fd_holders` hold every flock.
    struct Facts {
        identity: Option<ProcessIdentity>,
        holders: Vec<u32>,
        fd_holders: Vec<u32>,
        global: bool,
        reads_of_locks: Cell<usize>,
        /// Whether the chain (our parent) reads to its end; how many times it was read.
        chain_to_its_end: bool,
        walks: Cell<usize>,
    }

    impl Default for Facts {
        fn default() -> Self {
            Self {
                identity: Some(ProcessIdentity {
                    pid_namespace: NAMESPACE,
                    start_ticks: STARTED,
                }),
                holders: vec![PARENT],
                fd_holders: vec![],
                global: false,
                reads_of_locks: Cell::new(0),
                chain_to_its_end: true,
                walks: Cell::new(0),
            }
        }
    }

    impl World for Facts {
        fn own_pid(&self) -> u32 {
            OURS
        }
        fn own_identity(&self) -> Option<ProcessIdentity> {
            self.identity
        }
        fn ancestors(&self) -> (Vec<u32>, bool) {
            self.walks.set(self.walks.get() + 1);
            (vec![PARENT], self.chain_to_its_end)
        }
        fn flock_holders(&self, _file: FileId) -> Vec<u32> {
            self.reads_of_locks.set(self.reads_of_locks.get() + 1);
            self.holders.clone()
        }
        fn holds_flock_through_fd(&self, pid: u32, _file: FileId) -> bool {
            self.fd_holders.contains(&pid)
        }
        fn start_ticks(&self, pid: u32) -> Option<u64> {
            match pid {
                OURS => Some(STARTED),
                PARENT => Some(PARENT_STARTED),
                _ => None,
            }
        }
        fn pids_are_global(&self) -> bool {
            self.global
        }
    }

    fn ancestry(facts: Facts) -> Ancestry<Facts> {
        Ancestry {
            world: facts,
            ancestors: None,
            earlier: None,
            identity: None,
            verdicts: HashMap::new(),
        }
    }

    const FILE: FileId = FileId::made_up(1, 2);

    /// Our record of a lock taken by `pid`, written in `namespace` by a process started at
    /// `started`.
    fn ours(pid: u32, namespace: u64, started: u64) -> LockRecord {
        LockRecord::new("x", vec!["/x".into()], pid, "t")
            .with_flock_liveness()
            .with_identity(namespace, started)
    }

    fn the_parents() -> LockRecord {
        ours(PARENT, NAMESPACE, PARENT_STARTED)
    }

    #[test]
    fn a_lock_proven_to_be_held_by_our_parent_is_our_ancestors() {
        let mut ancestry = ancestry(Facts::default());
        assert!(ancestry.is_ancestor(&the_parents(), FILE));
        assert!(ancestry.contains(&the_parents(), FILE));
        assert!(!ancestry.is_this_process(&the_parents(), FILE));
    }

    #[test]
    fn a_lock_proven_to_be_held_by_this_process_is_ours() {
        let mut ancestry = ancestry(Facts {
            holders: vec![OURS],
            ..Facts::default()
        });
        let mine = ours(OURS, NAMESPACE, STARTED);
        assert!(ancestry.is_this_process(&mine, FILE));
        assert!(ancestry.contains(&mine, FILE));
        assert!(!ancestry.is_ancestor(&mine, FILE));
    }

    /// `/proc/locks` skips a line now and then while other locks change; the holder's own
    /// descriptors prove it all the same, for our parent and for us.
    #[test]
    fn a_holder_whose_line_proc_locks_skipped_is_proven_by_its_descriptors() {
        let mut ancestry = ancestry(Facts {
            holders: vec![],
            fd_holders: vec![PARENT, OURS],
            ..Facts::default()
        });
        assert!(ancestry.is_ancestor(&the_parents(), FILE));
        let mine = ours(OURS, NAMESPACE, STARTED);
        assert!(ancestry.is_this_process(&mine, FileId::made_up(1, 3)));
    }

    /// Each fact the proof needs, missing or wrong, leaves a stranger (fail closed).
    #[test]
    fn any_fact_that_does_not_match_leaves_the_holder_a_stranger() {
        let stranger = |facts: Facts, record: &LockRecord, why: &str| {
            let mut ancestry = ancestry(facts);
            assert!(!ancestry.is_ancestor(record, FILE), "{why}");
            assert!(!ancestry.contains(record, FILE), "{why}");
        };
        let parents = the_parents();
        stranger(
            Facts::default(),
            &ours(PARENT, NAMESPACE + 1, PARENT_STARTED),
            "written in another pid namespace",
        );
        stranger(
            Facts::default(),
            &ours(PARENT, NAMESPACE, PARENT_STARTED + 1),
            "written by an earlier process with that pid",
        );
        let unsigned = LockRecord::new("x", vec!["/x".into()], PARENT, "t").with_flock_liveness();
        stranger(Facts::default(), &unsigned, "no identity recorded");
        for holders in [vec![], vec![0], vec![77], vec![PARENT, 77]] {
            let why = format!("/proc/locks says {holders:?}");
            stranger(
                Facts {
                    holders,
                    ..Facts::default()
                },
                &parents,
                &why,
            );
        }
        stranger(
            Facts {
                holders: vec![],
                fd_holders: vec![77],
                ..Facts::default()
            },
            &parents,
            "only someone else's descriptors hold the flock",
        );
        stranger(
            Facts {
                fd_holders: vec![PARENT],
                ..Facts::default()
            },
            &ours(PARENT, NAMESPACE + 1, PARENT_STARTED),
            "held through our parent's descriptors, but written in another pid namespace",
        );
        stranger(
            Facts {
                identity: None,
                ..Facts::default()
            },
            &parents,
            "/proc is not our namespace's",
        );
        stranger(
            Facts::default(),
            &ours(3, NAMESPACE, PARENT_STARTED),
            "not one of our pids",
        );
        // Our own number, from another namespace, is not us either.
        let mut ancestry = ancestry(Facts {
            holders: vec![0],
            ..Facts::default()
        });
        assert!(!ancestry.is_this_process(&ours(OURS, NAMESPACE + 1, STARTED), FILE));
    }

    /// The original's records hold no flock and carry no identity: its own rule, by number.
    #[test]
    fn the_originals_records_follow_its_rule_by_pid_number() {
        let original = |pid| LockRecord::new("x", vec!["/x".into()], pid, "t");
        let mut ancestry = ancestry(Facts {
            identity: None,
            holders: vec![],
            ..Facts::default()
        });
        assert!(ancestry.is_ancestor(&original(PARENT), FILE));
        assert!(ancestry.is_this_process(&original(OURS), FileId::made_up(1, 3)));
        assert!(!ancestry.contains(&original(3), FileId::made_up(1, 4)));
    }

    /// Where a pid number names one process system-wide, the number is the proof.
    #[test]
    fn without_pid_namespaces_the_number_decides() {
        let mut ancestry = ancestry(Facts {
            identity: None,
            holders: vec![],
            global: true,
            ..Facts::default()
        });
        let unsigned = LockRecord::new("x", vec!["/x".into()], PARENT, "t").with_flock_liveness();
        assert!(ancestry.is_ancestor(&unsigned, FILE));
    }

    /// One decision asks about the same file many times (each waiter against each lock): the
    /// system is read once per file.
    #[test]
    fn each_file_is_judged_once_per_decision() {
        let mut ancestry = ancestry(Facts::default());
        for _ in 0..5 {
            assert!(ancestry.contains(&the_parents(), FILE));
        }
        assert_eq!(ancestry.world.reads_of_locks.get(), 1);
    }

    #[test]
    fn a_chain_read_to_its_end_rules_out_strangers_from_then_on_and_nobody_else() {
        let stranger = ours(777, NAMESPACE, 5);
        // Verdicts are kept per file: the parent's lock is another file.
        const PARENTS: FileId = FileId::made_up(1, 3);
        let mut first = ancestry(Facts::default());
        assert!(!first.contains(&stranger, FILE));
        assert_eq!(first.world.walks.get(), 1);
        let chain = first.chain_to_hand_on();
        assert_eq!(chain, Some(vec![PARENT]));

        // A later decision walks no chain for a pid missing from it...
        let mut next = Ancestry {
            earlier: chain.clone(),
            ..ancestry(Facts::default())
        };
        assert!(!next.contains(&stranger, FILE));
        assert_eq!(next.world.walks.get(), 0, "walked the chain for a stranger");
        // ...but judges a pid that is in it on the chain read afresh, which is handed on.
        assert!(next.is_ancestor(&the_parents(), PARENTS));
        assert_eq!(next.world.walks.get(), 1);
        assert_eq!(next.chain_to_hand_on(), chain);

        // A chain cut short rules out nothing: the earlier one is handed on instead.
        let mut cut = ancestry(Facts {
            chain_to_its_end: false,
            ..Facts::default()
        });
        assert!(!cut.contains(&stranger, FILE));
        assert_eq!(cut.chain_to_hand_on(), None);
        let mut cut_after = Ancestry {
            earlier: Some(vec![PARENT, 3]),
            ..ancestry(Facts {
                chain_to_its_end: false,
                ..Facts::default()
            })
        };
        assert!(cut_after.is_ancestor(&the_parents(), PARENTS));
        assert_eq!(cut_after.chain_to_hand_on(), Some(vec![PARENT, 3]));
    }

    /// On the running system, a lock this process holds through its own descriptor is proven
    /// ours even when `/proc/locks` cannot name us alone: here another process shares the
    /// flock (two `LOCK_SH` holders), so only our descriptors prove it.
    #[cfg(target_os = "linux")]
    #[test]
    fn our_own_descriptor_proves_a_shared_flock_ours_when_proc_locks_names_two_holders()
    -> Result<(), Box<dyn std::error::Error>> {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};

        struct Reaped(std::process::Child);
        impl Drop for Reaped {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("x.lock");
        let file = std::fs::File::create(&path)?;
        #[allow(clippy::disallowed_methods)] // a shared flock, as a second holder takes one
        file.lock_shared()?;
        // flock(1) takes its own LOCK_SH, says so, and keeps it until its stdin closes.
        let mut other = Reaped(
            Command::new("flock")
                .args(["--shared", "--nonblock"])
                .arg(&path)
                .args(["sh", "-c", "echo locked; exec cat"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?,
        );
        let stdout = other.0.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        assert_eq!(line, "locked\n", "flock(1) did not take the shared lock");
        let id = sys::file_id(&file)?;

        let record =
            LockRecord::for_new_lock("x", Vec::new(), false, crate::mode::LockMode::Exclusive);
        let mut ancestry = Ancestry::<System>::default();
        assert!(ancestry.is_this_process(&record, id));
        drop(other.0.stdin.take());
        assert!(other.0.wait()?.success());
        Ok(())
    }
}
