"""Fixtures: a project directory to work in, and processes to talk to over pipes."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scope_lock import LockManager

ACTOR = Path(__file__).with_name("actor.py")
REPO = Path(__file__).resolve().parents[3]
# How long any one exchange with a child may take before the test fails. Generous: the
# machine may be busy; nothing waits this long when things work.
TIMEOUT_S = 60.0


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory, made the current directory."""
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    return root.resolve()


@pytest.fixture
def loops_dir(project: Path) -> Path:
    return project / ".loops"


@pytest.fixture
def manager(loops_dir: Path) -> LockManager:
    return LockManager(loops_dir)


class Child:
    """A child process that speaks lines: we write commands, it answers one line each."""

    def __init__(self, argv: list[str], *, cwd: Path | None = None, **popen) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            **popen,
        )
        self._buffer = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()

    def line(self, timeout: float = TIMEOUT_S) -> str:
        """The next line it says; fails the test if none comes in time or it ends first."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no line from {self.proc.args} within {timeout} s")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.proc.wait(timeout)
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    pytest.fail(f"{self.proc.args} ended (status {self.proc.returncode}) "
                                f"without a line: {err}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def finish(self, timeout: float = TIMEOUT_S) -> int:
        """Closes its stdin and reaps it."""
        self.close_stdin()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"{self.proc.args} did not end within {timeout} s of its input")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def spawn():
    """Starts children; every one is killed and reaped when the test ends."""
    children: list[Child] = []

    def start(argv: list[str], **kwargs) -> Child:
        child = Child(argv, **kwargs)
        children.append(child)
        return child

    yield start
    for child in children:
        child.close_stdin()
        child.kill()
        for stream in (child.proc.stdout, child.proc.stderr):
            if stream:
                stream.close()


@pytest.fixture
def actor(spawn, project: Path):
    """Starts `actor.py COMMAND ARGS...` in the project directory."""

    def start(*args: str, **kwargs) -> Child:
        return spawn([sys.executable, str(ACTOR), *map(str, args)], cwd=project, **kwargs)

    return start


def cargo_binary(package: str, binary: str) -> Path:
    """A binary of this workspace, built (or found up to date) by cargo."""
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.fail(f"cargo is needed to build {binary} (package {package})")
    out = subprocess.run(
        [cargo, "build", "--quiet", "-p", package, "--bin", binary, "--message-format=json"],
        cwd=REPO, check=True, stdout=subprocess.PIPE, timeout=900,
    ).stdout
    for line in out.decode().splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("executable"):
            return Path(message["executable"])
    pytest.fail(f"cargo built no {binary} executable")


@pytest.fixture(scope="session")
def rust_worker() -> Path:
    """The regression suite's worker binary (Rust, the crate's LockManager)."""
    return cargo_binary("regression", "regression-worker")


@pytest.fixture(scope="session")
def cli() -> Path:
    """The `scope-lock` command (crates/scope-lock-cli)."""
    return cargo_binary("scope-lock-cli", "scope-lock")


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_original_lock(path: Path, **record) -> None:
    """A lock file as the original writes it: json.dump's one line, no flock, no liveness."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def record_evidence(test: str, **counts) -> None:
    """Leaves a test's counts for `cargo xtask verify`'s report: a flat JSON object in
    `$SCOPE_LOCK_EVIDENCE_DIR/<test function name>.json` (issues/README.md, "Evidence")."""
    directory = os.environ.get("SCOPE_LOCK_EVIDENCE_DIR")
    if directory:
        Path(directory, f"{test}.json").write_text(json.dumps(counts))
