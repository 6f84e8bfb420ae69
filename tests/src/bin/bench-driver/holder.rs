//! Another process holding many live locks: `bench-driver hold`, and the handle that drives it.
//!
//! The holder writes each lock file exactly as the library leaves one (our record, with
//! `"liveness": "flock"`, flocked through a descriptor it keeps open), but directly, so that
//! 10,000 locks are set up in a second instead of by 10,000 ever slower acquires. It reads
//! commands from stdin, one per line, and answers each with one line:
//!
//! - `grow N` → holds locks `held-0` .. `held-(N-1)` (creating the missing ones) → `held N`
//!
//! It exits when stdin closes; its flocks end with it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use rustix::process::{Resource, getrlimit, setrlimit};
use scope_lock::LockRecord;

/// The scope of held lock `index` with `paths` entries: `<root>/held/<index>/p<j>`.
pub(crate) fn held_scope(root: &Path, index: usize, paths: usize) -> Vec<String> {
    (0..paths)
        .map(|j| format!("{}/held/{index}/p{j}", root.display()))
        .collect()
}

/// `bench-driver hold --running-dir D --root R --paths K`.
pub(crate) fn serve(running_dir: &Path, root: &Path, paths: usize) -> Result<(), String> {
    let mut held: Vec<File> = Vec::new();
    let stdin = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    for line in stdin.lines() {
        let line = line.map_err(|err| format!("reading a command: {err}"))?;
        let reply = match line.split_once(' ') {
            Some(("grow", n)) => {
                let n: usize = n.parse().map_err(|err| format!("grow {n:?}: {err}"))?;
                raise_file_limit(n + 64)?;
                while held.len() < n {
                    let index = held.len();
                    held.push(hold_one(running_dir, root, index, paths)?);
                }
                format!("held {}", held.len())
            }
            _ => return Err(format!("unknown holder command {line:?}")),
        };
        writeln!(out, "{reply}")
            .and_then(|()| out.flush())
            .map_err(|err| format!("answering {line:?}: {err}"))?;
    }
    Ok(())
}

#[allow(
    clippy::disallowed_methods,
    reason = "the holder lays out 10,000 locks directly, as the library would leave them"
)]
fn hold_one(running_dir: &Path, root: &Path, index: usize, paths: usize) -> Result<File, String> {
    let path = running_dir.join(format!("held-{index}.lock"));
    let record = LockRecord::new(
        format!("held-{index}"),
        held_scope(root, index, paths),
        std::process::id(),
        "2026-11-29T12:00:00.000000+00:00",
    )
    .with_flock_liveness();
    let failed = |err: std::io::Error| format!("{}: {err}", path.display());
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(failed)?;
    file.try_lock().map_err(|err| failed(err.into()))?;
    file.write_all(record.to_json().as_bytes())
        .map_err(failed)?;
    Ok(file)
}

/// Makes room for `wanted` descriptors, up to the hard limit.
fn raise_file_limit(wanted: usize) -> Result<(), String> {
    let wanted = wanted as u64;
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|current| current >= wanted) {
        return Ok(());
    }
    if limit.maximum.is_some_and(|maximum| maximum < wanted) {
        return Err(format!(
            "holding this many locks needs {wanted} open files; the hard limit is {:?} \
             (raise it with `ulimit -Hn`)",
            limit.maximum
        ));
    }
    limit.current = Some(wanted);
    setrlimit(Resource::Nofile, limit).map_err(|err| format!("raising RLIMIT_NOFILE: {err}"))
}

/// The driving side: a running holder, killed and reaped if still alive when dropped.
pub(crate) struct Holder {
    child: Child,
    stdin: Option<BufWriter<ChildStdin>>,
    stdout: BufReader<ChildStdout>,
    pub(crate) held: usize,
}

impl Holder {
    pub(crate) fn spawn(
        exe: &Path,
        running_dir: &Path,
        root: &Path,
        paths: usize,
    ) -> Result<Self, String> {
        let mut child = Command::new(exe)
            .arg("hold")
            .arg("--running-dir")
            .arg(running_dir)
            .arg("--root")
            .arg(root)
            .args(["--paths", &paths.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|err| format!("cannot spawn the holder {}: {err}", exe.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the holder has no stdin/stdout".into());
        };
        Ok(Self {
            child,
            stdin: Some(BufWriter::new(stdin)),
            stdout: BufReader::new(stdout),
            held: 0,
        })
    }

    fn ask(&mut self, command: &str) -> Result<String, String> {
        let stdin = self.stdin.as_mut().ok_or("the holder's stdin is closed")?;
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .map_err(|err| format!("telling the holder {command:?}: {err}"))?;
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|err| format!("reading the holder's answer to {command:?}: {err}"))?;
        if line.is_empty() {
            return Err(format!(
                "the holder exited instead of answering {command:?}"
            ));
        }
        Ok(line.trim().to_owned())
    }

    /// Makes the holder hold `n` locks in all.
    pub(crate) fn grow(&mut self, n: usize) -> Result<(), String> {
        let answer = self.ask(&format!("grow {n}"))?;
        if answer != format!("held {n}") {
            return Err(format!("the holder answered {answer:?} to grow {n}"));
        }
        self.held = n;
        Ok(())
    }

    /// Closes stdin and waits for the holder to exit.
    pub(crate) fn finish(mut self) -> Result<(), String> {
        drop(self.stdin.take());
        let status = self
            .child
            .wait()
            .map_err(|err| format!("waiting for the holder: {err}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("the holder exited with {status}"))
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A fresh directory for one scenario, `<work>/<name>-XXXXXX/`, with `.loops/.running/`
/// created; removed when dropped.
pub(crate) struct Arena {
    _dir: tempfile::TempDir,
    pub(crate) root: PathBuf,
    pub(crate) loops_dir: PathBuf,
    pub(crate) running_dir: PathBuf,
}

impl Arena {
    pub(crate) fn new(work: &Path, name: &str) -> Result<Self, String> {
        std::fs::create_dir_all(work)
            .map_err(|err| format!("creating {}: {err}", work.display()))?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir_in(work)
            .map_err(|err| format!("creating a directory in {}: {err}", work.display()))?;
        let root = std::fs::canonicalize(dir.path())
            .map_err(|err| format!("resolving {}: {err}", dir.path().display()))?;
        let loops_dir = root.join(".loops");
        let running_dir = loops_dir.join(".running");
        std::fs::create_dir_all(&running_dir)
            .map_err(|err| format!("creating {}: {err}", running_dir.display()))?;
        Ok(Self {
            _dir: dir,
            root,
            loops_dir,
            running_dir,
        })
    }
}
