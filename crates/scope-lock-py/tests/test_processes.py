"""Behaviour across processes and threads, including what the original cannot pass: its lock
was not held while the loop ran (BUG-423), so these tests fail against it.

Processes are synchronised through their pipes (a line said, a line read, stdin closed),
never by sleeping; every wait has a deadline; every child is reaped.
"""

from __future__ import annotations

import json
import os
import subprocess
import platform
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from scope_lock import LockDirectoryBusyError, LockManager, ScopeConflict, ScopeTimeout

from conftest import TIMEOUT_S, Child, record_evidence


# --- the lock is held while it is held ----------------------------------------------------


def test_the_lock_file_is_flocked_for_the_whole_hold_seen_from_another_process(manager: LockManager, actor) -> None:
    assert manager.acquire("demo", ["src"])
    path = manager.running_dir / "demo.lock"
    assert actor("probe", path).line() == "held"
    # Still held after other calls on the manager (the original let go inside acquire()).
    manager.list_locks()
    manager.find_conflict(["src"])
    assert manager.acquire("other", ["elsewhere"])
    assert actor("probe", path).line() == "held"
    manager.release("demo")
    assert actor("probe", path).line() == "missing"
    record_evidence("test_the_lock_file_is_flocked_for_the_whole_hold_seen_from_another_process",
                    probes_while_held=2, held=2, after_release="missing")


def test_another_process_is_refused_and_told_who_holds(manager: LockManager, loops_dir: Path, actor) -> None:
    # The holder is our child, so we are not its ancestor: it blocks us (and we it, below).
    holder = actor("hold", loops_dir, "theirs", "src/x")
    assert holder.line().startswith("held ")
    assert not manager.acquire("mine", ["src"])
    found = manager.find_conflict(["src"])
    assert (found.loop_name, found.pid) == ("theirs", holder.pid)
    holder.send("release")
    assert holder.line() == "released"
    assert manager.acquire("mine", ["src"])


def test_eight_processes_racing_for_one_scope_never_hold_it_together(loops_dir: Path, project: Path, actor) -> None:
    witness = project / "witness.log"
    workers = [actor("cycle", loops_dir, "race", "shared", 25, 120, witness, k) for k in range(8)]
    for worker in workers:
        assert worker.line() == "ready"
    for worker in workers:  # the start barrier
        worker.send("go")
    summaries = [json.loads(worker.line(timeout=180)) for worker in workers]
    for worker in workers:
        assert worker.finish() == 0

    assert all(s["holds"] == 25 for s in summaries), summaries
    assert sum(s["unheld"] for s in summaries) == 0, "a lock file was not flocked during its hold"
    assert witnessed_holds(witness) == 25 * 8
    record_evidence("test_eight_processes_racing_for_one_scope_never_hold_it_together",
                    workers=8, holds=200, attempts=sum(s["attempts"] for s in summaries),
                    overlaps=0, unheld_probes=0)


def witnessed_holds(witness: Path) -> int:
    """Checks the witness log (one line per enter and exit, each written while holding) for
    two holders at once, by order and by time; returns the number of holds."""
    events = [line.split() for line in witness.read_text().splitlines()]
    assert len(events) % 2 == 0
    # By order: each enter is followed by the exit of the same hold.
    for i in range(0, len(events), 2):
        enter, leave = events[i], events[i + 1]
        assert (enter[0], leave[0]) == ("enter", "exit"), f"two holders at once at line {i + 1}"
        assert enter[1:3] == leave[1:3], f"two holders at once at line {i + 1}"
    # By time: no recorded hold starts before the previous one ended.
    intervals = sorted((int(events[i][3]), int(events[i + 1][3])) for i in range(0, len(events), 2))
    overlaps = sum(1 for (_, end), (start, _) in zip(intervals, intervals[1:]) if start < end)
    assert overlaps == 0, f"{overlaps} holds overlapped in time"
    return len(intervals)


def test_a_holder_killed_by_sigkill_is_reclaimed_at_once(manager: LockManager, loops_dir: Path, actor) -> None:
    holder = actor("hold", loops_dir, "doomed", "src")
    line = holder.line()
    assert line.startswith("held ")
    lock_file = Path(line.split(" ", 1)[1])
    assert not manager.acquire("next", ["src"])
    holder.kill()  # SIGKILL, and reaped
    assert lock_file.exists(), "the dead holder's file is left behind..."
    assert manager.acquire("next", ["src"]), "...and reclaimed by the very next acquire"
    assert not lock_file.exists()
    record_evidence("test_a_holder_killed_by_sigkill_is_reclaimed_at_once", killed=1, reclaimed=1)


def test_locks_still_held_when_the_interpreter_exits_are_released_cleanly(loops_dir: Path, actor) -> None:
    holder = actor("hold", loops_dir, "leaver", "src")
    lock_file = Path(holder.line().split(" ", 1)[1])
    assert lock_file.exists()
    assert holder.finish() == 0  # it exits normally without calling release()
    assert not lock_file.exists(), "the lock file was left for the next scan to reclaim"


def test_files_vanishing_mid_scan_never_make_a_scan_fail(manager: LockManager, loops_dir: Path, actor) -> None:
    churners = [actor("churn", loops_dir, f"churn-{k}", f"area-{k}", 100_000) for k in range(3)]
    for churner in churners:
        assert churner.line() == "ready"
    scans = 0
    deadline = time.monotonic() + TIMEOUT_S
    while scans < 300 and time.monotonic() < deadline:
        for lock in manager.list_locks():
            assert lock.loop_name.startswith("churn-")
        assert manager.find_conflict(["elsewhere"]) is None
        assert manager.acquire("scanner", ["elsewhere"])
        manager.release("scanner")
        scans += 1
    assert scans == 300
    for churner in churners:
        churner.close_stdin()
        summary = json.loads(churner.line())
        assert summary["errors"] == 0 and summary["cycles"] > 0, summary
        assert churner.finish() == 0


# --- singletons and the ancestor carve-out ------------------------------------------------


def test_a_child_process_is_not_blocked_by_its_parents_lock(manager: LockManager, loops_dir: Path, actor) -> None:
    # This test process is the child's parent: a loop running a nested loop.
    assert manager.acquire("outer", ["src"], singleton=True)
    nested = actor("hold", loops_dir, "inner", "src/x")
    assert nested.line().startswith("held ")
    nested_singleton = actor("hold", loops_dir, "outer", "elsewhere", "--instance", "outer-2", "--singleton")
    assert nested_singleton.line().startswith("held ")


def test_an_unrelated_process_is_blocked_by_a_singleton(loops_dir: Path, actor) -> None:
    first = actor("hold", loops_dir, "solo", "a", "--instance", "solo-1", "--singleton")
    assert first.line().startswith("held ")
    sibling = actor("hold", loops_dir, "solo", "b", "--instance", "solo-2", "--singleton")
    assert sibling.line() == "conflict"
    plain = actor("hold", loops_dir, "solo", "c", "--instance", "solo-3")
    assert plain.line().startswith("held ")


def test_a_live_pid_of_another_user_counts_as_alive(tmp_path: Path) -> None:
    """kill(pid, 0) failing with EPERM means the process exists (the original's BUG-526)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to scan as another user")
    shared = Path("/tmp") / f"scope-lock-eperm-{os.getpid()}"
    running = shared / ".running"
    running.mkdir(parents=True)
    try:
        for path in (shared, running):
            path.chmod(0o777)
        (running / ".acquire.lock").touch()
        (running / ".acquire.lock").chmod(0o666)
        # The original's record of a live process of root's: this very process.
        (running / "root.lock").write_text(json.dumps(
            {"loop_name": "root", "scope": ["/srv"], "pid": os.getpid(), "started_at": "t"}))
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child scans as nobody, for whom kill(root's pid, 0) is EPERM
            try:
                os.close(read_end)
                os.setgid(65534)
                os.setuid(65534)
                names = [lock.loop_name for lock in LockManager(shared).list_locks()]
                os.write(write_end, json.dumps(names).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as answer:
            assert json.loads(answer.read() or b"null") == ["root"]
        assert os.waitpid(pid, 0)[1] == 0
        assert (running / "root.lock").exists()
    finally:
        import shutil

        shutil.rmtree(shared)


# --- threads and fork ---------------------------------------------------------------------


# The system calls a thread makes while it waits for the sentinel inside the crate (a
# non-blocking flock, then ppoll on a watch of the sentinel's closes, or a sleep before the
# next try where there is no watch). Python code never makes them in the waiting thread, and a
# thread waiting for the GIL waits in futex instead.
WAITING_SYSCALLS = {"x86_64": {73, 271, 35, 230}, "aarch64": {32, 73, 101, 115}}


@pytest.mark.skipif(sys.platform != "linux" or platform.machine() not in WAITING_SYSCALLS,
                    reason="reads a thread's current system call from /proc (Linux, x86_64/aarch64)")
def test_the_gil_is_released_while_waiting_for_the_lock_directory(manager: LockManager, spawn) -> None:
    manager.running_dir.mkdir(parents=True)
    sentinel = manager.running_dir / ".acquire.lock"
    sentinel.touch()
    # Another process holds the directory sentinel, as the original does while it scans.
    blocker = actor_flock(spawn, sentinel)
    result: list[object] = []
    native_id: list[int] = []

    def wait() -> None:
        native_id.append(threading.get_native_id())
        try:
            result.append(manager.acquire("waiting", ["src"]))
        except BaseException as err:  # reported below
            result.append(err)

    waiter = threading.Thread(target=wait)
    waiter.start()
    try:
        # This thread runs Python and sees the other one inside the crate's wait: had the
        # wait kept the GIL, we could not look until it had ended.
        seen = False
        while not seen:
            assert waiter.is_alive() and not result, f"acquire() ended while the sentinel was held: {result}"
            seen = bool(native_id) and current_syscall(native_id[0]) in WAITING_SYSCALLS[platform.machine()]
    finally:
        blocker.finish()
        waiter.join(TIMEOUT_S)
    assert result == [True]


def current_syscall(tid: int) -> int | None:
    """The number of the system call thread `tid` of this process is in, if any."""
    try:
        first = Path(f"/proc/self/task/{tid}/syscall").read_text().split()[0]
    except (OSError, IndexError):  # the thread has ended
        return None
    return int(first) if first.lstrip("-").isdigit() and first != "-1" else None


def test_a_lock_directory_held_too_long_is_a_busy_error_naming_the_holder(manager: LockManager, spawn) -> None:
    manager.running_dir.mkdir(parents=True)
    sentinel = manager.running_dir / ".acquire.lock"
    sentinel.touch()
    blocker = actor_flock(spawn, sentinel)
    try:
        with pytest.raises(LockDirectoryBusyError) as raised:
            manager.acquire("waiting", ["src"])
    finally:
        blocker.finish()
    err = raised.value
    assert isinstance(err, TimeoutError) and isinstance(err, OSError)
    assert err.filename == str(sentinel)
    if sys.platform == "linux":
        assert f"pid {blocker.pid}" in str(err), str(err)
    assert manager.acquire("waiting", ["src"])


def actor_flock(spawn, path: Path) -> Child:
    """A process that holds PATH's flock until its stdin ends."""
    # It lets go by itself after TIMEOUT_S: if acquire() held the GIL, this test could not
    # run its own deadline, and must still end (and fail).
    code = (
        "import fcntl, select, sys; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); "
        f"print('locked', flush=True); select.select([sys.stdin], [], [], {TIMEOUT_S})"
    )
    child = spawn([sys.executable, "-c", code, str(path)])
    assert child.line() == "locked"
    return child


def test_threads_share_one_manager_without_losing_locks(manager: LockManager) -> None:
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(50):
                assert manager.acquire(f"t{k}-{i}", [f"area-{k}/{i}"])
                manager.release(f"t{k}-{i}")
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT_S)
    assert errors == []
    assert manager.held() == [] and manager.list_locks() == []


def test_a_forked_child_neither_releases_nor_keeps_its_parents_lock(manager: LockManager, loops_dir: Path, actor) -> None:
    holder = actor("fork-hold", loops_dir, "parent", "src")
    lock_file = Path(holder.line().split(" ", 1)[1])
    child_line = holder.line()
    assert child_line.startswith("child ") and child_line.endswith(" held=")
    # The child called release(); the parent's lock is untouched.
    assert lock_file.exists()
    assert not manager.acquire("next", ["src"])
    # The parent dies; the child lives on (it waits for our stdin to end), holding no copy.
    holder.proc.send_signal(signal.SIGKILL)
    holder.proc.wait(TIMEOUT_S)
    try:
        assert manager.acquire("next", ["src"]), "a forked child kept its parent's lock alive"
    finally:
        holder.close_stdin()  # the child's stdin: it exits


def test_a_manager_in_a_forked_child_can_lock_for_itself(manager: LockManager) -> None:
    assert manager.acquire("parent", ["a"])
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, never return into pytest
        try:
            os.close(read_end)
            ok = manager.held() == [] and manager.acquire("child", ["b"])
            manager.release("child")
            manager.release("parent")  # not the child's to release
            ok = ok and (manager.running_dir / "parent.lock").exists()
            os.write(write_end, b"ok" if ok else b"bad")
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as answer:
        assert answer.read() == b"ok"
    assert os.waitpid(pid, 0)[1] == 0
    assert [lock.loop_name for lock in manager.list_locks()] == ["parent"]


# --- Python and Rust share one directory --------------------------------------------------


def rust_attempt(spawn, worker: Path, loops_dir: Path, name: str, scope: str) -> Child:
    child = spawn([str(worker), "attempt", "--impl", "fixed", "--loops-dir", str(loops_dir),
                   "--name", name, "--scope", scope])
    assert child.line() == "ready"
    child.send("go")
    return child


def test_python_and_rust_holders_exclude_each_other(manager: LockManager, loops_dir: Path, project: Path,
                                                     actor, spawn, rust_worker: Path) -> None:
    # Neither holder may be an ancestor of the other (a nested loop is never blocked by its
    # parent), so the Python holder is a sibling of the Rust one: both are our children.
    src = str(project / "src")
    rust = rust_attempt(spawn, rust_worker, loops_dir, "rust-loop", src)
    assert rust.line().startswith("held ")
    python = actor("hold", loops_dir, "py-loop", "src/x")
    assert python.line() == "conflict"
    assert manager.find_conflict(["src"]).loop_name == "rust-loop"
    assert rust.finish() == 0  # stdin closed: it releases and exits

    python = actor("hold", loops_dir, "py-loop", "src/x")
    assert python.line().startswith("held ")
    refused = rust_attempt(spawn, rust_worker, loops_dir, "rust-loop", src)
    line = refused.line()
    assert line.startswith("conflict ") and "held by loop `py-loop`" in line, line
    assert refused.finish() == 0
    python.send("release")
    assert python.line() == "released"
    again = rust_attempt(spawn, rust_worker, loops_dir, "rust-loop", src)
    assert again.line().startswith("held ")
    assert again.finish() == 0
    record_evidence("test_python_and_rust_holders_exclude_each_other",
                    python_refused_by_rust=1, rust_refused_by_python=1)


def test_python_and_the_command_line_exclude_each_other(manager: LockManager, loops_dir: Path, project: Path,
                                                       actor, spawn, cli: Path) -> None:
    src = str(project / "src")
    # The command line holds src while its command runs (the command ends with its stdin).
    holder = spawn([str(cli), "run", "--loops-dir", str(loops_dir), "--name", "cli-loop", "--scope", src,
                    "--", sys.executable, "-c", "import sys; print('running', flush=True); sys.stdin.read()"])
    assert holder.line() == "running"
    assert actor("hold", loops_dir, "py-loop", "src/x").line() == "conflict"
    assert holder.finish() == 0
    # A Python holder (a sibling, not an ancestor) blocks the command line: status 75, its
    # command not run, the holder named.
    python = actor("hold", loops_dir, "py-loop", "src/x")
    assert python.line().startswith("held ")
    refused = subprocess.run([str(cli), "run", "--loops-dir", str(loops_dir), "--name", "cli-loop",
                              "--scope", src, "--", "false"], capture_output=True, text=True, timeout=TIMEOUT_S)
    assert refused.returncode == 75, refused.stderr
    assert "held by loop `py-loop`" in refused.stderr, refused.stderr
    # The same conflict reads the same from both: the library's one line.
    with pytest.raises(ScopeConflict) as raised:
        with manager.hold("cli-loop", [src]):
            pytest.fail("entered a held scope")
    assert refused.stderr == f"scope-lock: busy: {str(raised.value).removeprefix('scope is locked: ')}\n"
    python.send("release")
    assert python.line() == "released"
    done = subprocess.run([str(cli), "run", "--loops-dir", str(loops_dir), "--name", "cli-loop",
                           "--scope", src, "--", "true"], capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr


# --- waiting --------------------------------------------------------------------------------


def test_waiters_for_one_scope_all_get_it_in_turn_and_none_gives_up(loops_dir: Path, project: Path, actor) -> None:
    """The original's BUG-1281: waiters woke in the same poll tick, one won, the rest gave up."""
    holder = actor("hold", loops_dir, "first", "shared")
    assert holder.line().startswith("held ")
    witness = project / "witness.log"
    waiters = [actor("cycle", loops_dir, "waiter", "shared", 5, 120, witness, k, 60) for k in range(6)]
    for waiter in waiters:
        assert waiter.line() == "ready"
    for waiter in waiters:
        waiter.send("go")  # they start waiting behind the holder
    holder.send("release")
    assert holder.line() == "released"
    summaries = [json.loads(waiter.line(timeout=180)) for waiter in waiters]
    for waiter in waiters:
        assert waiter.finish() == 0
    assert [s["gave_up"] for s in summaries] == [0] * 6, summaries
    assert [s["holds"] for s in summaries] == [5] * 6, summaries
    assert sum(s["unheld"] for s in summaries) == 0
    assert witnessed_holds(witness) == 30
    record_evidence("test_waiters_for_one_scope_all_get_it_in_turn_and_none_gives_up",
                    waiters=6, holds=30, gave_up=0, overlaps=0)


def test_wait_for_scope_returns_true_when_the_holder_releases_and_takes_nothing(
        manager: LockManager, loops_dir: Path, actor) -> None:
    holder = actor("hold", loops_dir, "holder", "src")
    assert holder.line().startswith("held ")
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(manager.wait_for_scope(["src/x"], timeout=60)))
    waiter.start()
    try:
        assert result == [], "wait_for_scope returned while the scope was held"
        holder.send("release")
        assert holder.line() == "released"
    finally:
        waiter.join(TIMEOUT_S)
    assert result == [True]
    assert manager.held() == [] and manager.list_locks() == []


def test_wait_for_scope_returns_false_when_the_timeout_passes(manager: LockManager, loops_dir: Path, actor) -> None:
    holder = actor("hold", loops_dir, "holder", "src", "--singleton")
    assert holder.line().startswith("held ")
    assert manager.wait_for_scope(["src/x"], timeout=0.2) is False
    assert manager.wait_for_scope(["elsewhere"], timeout=0.2) is True
    assert manager.wait_for_scope(["elsewhere"], timeout=0.2, loop_name="holder", singleton=True) is False
    assert [lock.loop_name for lock in manager.list_locks()] == ["holder"]


def test_acquire_wait_returns_holding_the_lock(manager: LockManager, loops_dir: Path, actor) -> None:
    holder = actor("hold", loops_dir, "holder", "src")
    assert holder.line().startswith("held ")
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(manager.acquire_wait("next", ["src"], 60)))
    waiter.start()
    try:
        assert result == [], "acquire_wait returned while the scope was held"
        holder.send("release")
        assert holder.line() == "released"
    finally:
        waiter.join(TIMEOUT_S)
    assert result == [True]
    assert manager.held() == [manager.running_dir / "next.lock"]
    assert actor("probe", manager.running_dir / "next.lock").line() == "held"


def test_a_timed_out_wait_returns_false_or_raises_scope_timeout_and_leaves_nothing(
        manager: LockManager, loops_dir: Path, project: Path, actor) -> None:
    holder = actor("hold", loops_dir, "holder", "src")
    assert holder.line().startswith("held ")
    assert manager.acquire_wait("next", ["src/x"], 0.2) is False
    with pytest.raises(ScopeTimeout) as raised:
        with manager.hold("next", ["src/x"], timeout=0.2):
            pytest.fail("entered a held scope")
    err = raised.value
    assert isinstance(err, ScopeConflict) and isinstance(err, TimeoutError)
    assert (err.loop_name, err.scope, err.pid) == ("holder", [str(project / "src")], holder.pid)
    assert str(err).startswith("timed out waiting for scope: ")
    # Nothing of ours is left: another waiter is not queued behind a ghost.
    holder.send("release")
    assert holder.line() == "released"
    assert actor("hold", loops_dir, "other", "src").line().startswith("held ")


def test_a_signal_handler_that_raises_ends_a_wait(manager: LockManager, loops_dir: Path, actor) -> None:
    holder = actor("hold", loops_dir, "holder", "src")
    assert holder.line().startswith("held ")

    class Interrupted(Exception):
        pass

    def interrupt(signum, frame):
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    started = time.monotonic()
    try:
        with pytest.raises(Interrupted):
            manager.acquire_wait("next", ["src"], timeout=TIMEOUT_S)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < TIMEOUT_S / 2, "the wait ran on after the handler raised"
    assert manager.held() == []
    holder.send("release")
    assert holder.line() == "released"
    assert actor("hold", loops_dir, "other", "src").line().startswith("held ")


def test_readers_in_other_processes_hold_together_and_a_writer_is_refused(
        manager: LockManager, loops_dir: Path, actor) -> None:
    first = actor("hold", loops_dir, "review", "src", "--shared")
    assert first.line().startswith("held ")
    second = actor("hold", loops_dir, "report", "src/lib", "--shared")
    assert second.line().startswith("held "), "a reader was refused beside a reader"
    modes = sorted((lock.loop_name, lock.mode) for lock in manager.list_locks())
    assert modes == [("report", "shared"), ("review", "shared")]
    assert not manager.acquire("fixer", ["src/lib/x"])
    found = manager.find_conflict(["src/lib/x"])
    assert found is not None and found.mode == "shared"
    assert manager.find_conflict(["src/lib/x"], caller_shared=True) is None
    with manager.hold("index", ["."], shared=True) as held:
        assert held.mode == "shared"
        assert held.to_dict()["mode"] == "shared"
    for reader in (first, second):
        reader.send("release")
        assert reader.line() == "released"
    assert manager.acquire("fixer", ["src/lib/x"])
    assert [lock.mode for lock in manager.list_locks()] == ["exclusive"]
