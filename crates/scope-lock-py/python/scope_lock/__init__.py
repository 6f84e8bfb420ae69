"""Scope locks for little-loops' users, held for the whole hold.

``scope_lock.LockManager`` has the API of little-loops' ``LockManager``
(``scripts/little_loops/fsm/concurrency.py``): same names, arguments, defaults
and return types, and it reads and writes the same ``.loops/.running/*.lock``
files, so both can share one directory. The difference is underneath: here
the lock is an open, exclusively flocked descriptor, held from ``acquire``
until ``release`` (or the end of the process), by the Rust crate
``scope-lock``. A holder that dies, however it dies, frees its scope at once.

Deliberate differences from the original:

- ``acquire`` keeps the lock (an open descriptor) inside the manager, keyed by
  lock file, until ``release`` or until the process ends, even if the manager
  itself is garbage-collected.
- ``release`` releases only what this manager acquired; it never deletes a
  file it does not hold. A lock name already held live is a conflict
  (``acquire`` returns False) instead of being overwritten.
- Lock records carry one more key, ``"liveness": "flock"``, which the
  original's reader ignores. ``ScopeLock.liveness`` holds it (``None`` for
  records the original wrote); it takes no part in equality.
- A lock file that cannot be read blocks every scope unless its holder is
  provably gone (then it is moved aside, never deleted): it is a conflict,
  reported by ``find_conflict`` as a ``ScopeLock`` with
  ``liveness="unreadable"``, ``pid`` 0 and the file's name as ``loop_name``.
  Files that are not live locks are logged at WARNING on the ``scope_lock``
  logger, never silently skipped.
- Scans see lock files with nested names (``generated/run-1``), which the
  original's flat glob misses.
- ``wait_for_scope`` waits on the waiting acquire (in arrival order, woken
  when the holder goes, no one-second polls) instead of polling, and briefly
  holds the scope when it finds it free. Its True is still only a snapshot:
  ``acquire_wait`` (not in the original) waits and returns holding the lock.
- A scope given as one ``str`` or ``os.PathLike`` is one path: ``hold("x",
  "docs")`` locks ``docs`` (the original's ``for p in scope`` locked ``d``,
  ``o``, ``c`` and ``s``). Scope entries and ``loops_dir`` may be any
  ``os.PathLike`` giving a ``str``; ``bytes`` paths are refused with a
  ``TypeError``, as the original's ``Path(p)`` refuses them.
- ``hold()`` is a context manager that raises ``ScopeConflict`` (with the
  holder) when the scope is taken, or ``ScopeTimeout`` when a ``timeout``
  passes.
- Every ``timeout`` is read as filelock reads it: ``None`` (or ``math.inf``) waits
  forever, ``0`` tries once, a positive number waits up to that many seconds, and a
  negative number or NaN is a ``ValueError``. ``hold()`` defaults to ``0`` (fail fast).
- ``is_locked(name)`` asks whether a live lock holds a name, changing nothing.
- ``hold_async()`` is ``hold()`` for ``async with``: the wait runs on a thread of its
  own, and cancelling the task stops it, leaving no lock and no ticket behind.
- A waiting call releases the GIL and can be interrupted by Ctrl-C.

Threads and processes:

- A ``LockManager`` may be shared by threads. Its calls release the GIL while
  they wait for the lock directory, and the table of held locks is guarded.
  Locks belong to the manager, not to a thread: any thread may release what
  another acquired. Two acquires of overlapping scopes in one process
  conflict (the second gets False), they never wait on each other.
- After ``os.fork`` (including multiprocessing's "fork" start method), the
  child closes its copies of the parent's lock descriptors at once: the locks
  stay the parent's, and the child can neither release nor prolong them.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar, Union

from . import _native
from ._errors import LockDirectoryBusyError, NotALockFileError, UnsupportedFilesystemError

__all__ = [
    "RUNNING_DIR",
    "LockDirectoryBusyError",
    "LockManager",
    "NotALockFileError",
    "ScopeConflict",
    "ScopeLock",
    "ScopeTimeout",
    "UnsupportedFilesystemError",
    "resolve_scope",
]

logger = logging.getLogger(__name__)

#: The package's version, which is the Rust crate's (Cargo.toml), as in its metadata.
__version__: str = _native.__version__

RUNNING_DIR = ".running"

_probe_numbers = itertools.count(1)

#: A scope: one path, or any iterable of paths; a path is a ``str``, ``bytes`` or an
#: ``os.PathLike`` giving one. Paths that are not UTF-8 are locked byte for byte: as ``bytes``,
#: or as the ``str`` that ``os.fsdecode`` makes of them (surrogate escapes).
ScopeEntry = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
Scope = Union[ScopeEntry, Iterable[ScopeEntry]]

os.register_at_fork(after_in_child=_native.forget_inherited)
atexit.register(_native.release_all)


def resolve_scope(scope: Scope, context: dict[str, Any]) -> list[str]:
    """Replace each ``${context.<var>}`` in the scope's entries by ``str(context[var])``.

    A variable the context lacks stays as written; other namespaces
    (``${env.X}``) are not touched; replacements are not scanned again.
    """
    return _native.resolve_scope(_scope_paths(scope), dict(context))


def _path(entry: object) -> str:
    """A scope entry as the ``str`` the lock records (``bytes`` as ``os.fsdecode`` gives them);
    ``TypeError`` naming anything else."""
    try:
        path = os.fspath(entry)  # type: ignore[call-overload]
    except TypeError:
        path = None
    if isinstance(path, bytes):
        return os.fsdecode(path)
    if not isinstance(path, str):
        raise TypeError(f"a scope entry must be a str, bytes or an os.PathLike giving one, not {entry!r}")
    return path


def _scope_paths(scope: Scope) -> list[str]:
    """The scope's paths. A lone ``str`` or ``os.PathLike`` is one path: iterating it, as
    ``list()`` would, makes a path of each character (of each byte, for ``bytes``)."""
    if isinstance(scope, (str, bytes, os.PathLike)):
        return [_path(scope)]
    return [_path(entry) for entry in scope]


@dataclass
class ScopeLock:
    """The record of a lock file: who holds which paths since when.

    The first five fields are the original's. ``liveness`` is ours: ``"flock"``
    for a record written by this package (alive exactly while its file is
    flocked), ``None`` for one written by the original (alive while its pid
    is). ``mode`` is ours too: ``"shared"`` for a read lock (``shared=True``),
    which other shared locks may overlap, else ``"exclusive"``, as every lock
    of the original is. So is ``token``, the lock's fencing token: larger than
    that of every lock acquired before it in the same directory, for a resource
    to refuse a holder whose lock has ended (``None`` in the original's records).
    """

    loop_name: str
    scope: list[str]
    pid: int
    started_at: str
    singleton: bool = False
    liveness: str | None = field(default=None, compare=False)
    mode: str = "exclusive"
    token: int | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The record as its JSON object: ``singleton`` only when true, ``liveness`` and
        ``token`` only when set."""
        data: dict[str, Any] = {
            "loop_name": self.loop_name,
            "scope": self.scope,
            "pid": self.pid,
            "started_at": self.started_at,
        }
        if self.singleton:
            data["singleton"] = self.singleton
        if self.liveness is not None:
            data["liveness"] = self.liveness
        if self.mode == "shared":
            data["mode"] = self.mode
        if self.token is not None:
            data["token"] = self.token
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScopeLock:
        """Read a record: a string ``scope`` (legacy files) becomes a one-path list, a missing
        ``singleton`` is false. Raises ``KeyError`` for a missing required key."""
        scope = data["scope"]
        liveness = data.get("liveness")
        token = data.get("token")
        return cls(
            loop_name=str(data["loop_name"]),
            scope=list(scope) if isinstance(scope, list) else [str(scope)],
            pid=int(data["pid"]),
            started_at=str(data["started_at"]),
            singleton=bool(data.get("singleton", False)),
            liveness=None if liveness is None else str(liveness),
            # A record without the key, or with one we do not know, is exclusive.
            mode="shared" if data.get("mode") == "shared" else "exclusive",
            token=None if token is None else int(token),
        )


class ScopeConflict(Exception):
    """The scope is held by someone else (or by this process, through another lock).

    ``holder`` is the holder's ``ScopeLock`` (``None`` when its lock file is
    held but unreadable); ``loop_name``, ``scope``, ``pid`` and ``since`` are
    the holder's, for convenience. ``rule`` says why it conflicts:
    ``"overlap"``, ``"singleton"``, ``"same_name"`` (the lock file name is
    taken) or ``"unreadable"``. ``lock_path`` is the holder's lock file (on etcd,
    its key), and ``host`` the host the holder runs on (on etcd; ``None`` for a
    lock directory).
    """

    def __init__(self, message: str, *, holder: ScopeLock | None, rule: str,
                 lock_path: str, held_by_this_process: bool = False,
                 host: str | None = None) -> None:
        super().__init__(message)
        self.holder = holder
        self.rule = rule
        self.lock_path = lock_path
        self.held_by_this_process = held_by_this_process
        self.host = host

    @property
    def loop_name(self) -> str | None:
        return self.holder.loop_name if self.holder else None

    @property
    def scope(self) -> list[str] | None:
        return self.holder.scope if self.holder else None

    @property
    def pid(self) -> int | None:
        return self.holder.pid if self.holder else None

    @property
    def since(self) -> str | None:
        return self.holder.started_at if self.holder else None

    @classmethod
    def _from_native(cls, conflict: _native.Conflict) -> ScopeConflict:
        holder = conflict["holder"]
        return cls(
            conflict["message"],
            holder=None if holder is None else ScopeLock.from_dict(holder),
            rule=conflict["rule"],
            lock_path=conflict["lock_path"],
            held_by_this_process=conflict["held_by_this_process"],
            host=conflict["host"],
        )


class ScopeTimeout(ScopeConflict, TimeoutError):
    """The timeout passed while the scope was still taken; carries the last conflict seen,
    as ``ScopeConflict`` does. Also a ``TimeoutError``."""


def _conflict_error(conflict: _native.Conflict) -> ScopeConflict:
    if conflict["timed_out"]:
        return ScopeTimeout._from_native(conflict)
    return ScopeConflict._from_native(conflict)


_T = TypeVar("_T")


def _in_thread(call: Callable[[], _T]) -> asyncio.Future[_T]:
    """Runs ``call`` on a thread of its own, for the running loop to await. Not the loop's
    default executor: a wait may last forever, and that executor has only a few threads."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def settle(result: _T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result = call()
        except BaseException as error:  # handed to the awaiting task, which raises it
            loop.call_soon_threadsafe(settle, None, error)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=run, name="scope_lock", daemon=True).start()
    return future


async def _settled(future: asyncio.Future[Any]) -> bool:
    """Waits until ``future`` is done, even through cancellations of this task; returns
    whether there was one (the caller raises it once what it started is over)."""
    cancelled = False
    while not future.done():
        try:
            await asyncio.wait({future})
        except asyncio.CancelledError:
            cancelled = True
    return cancelled


def _stand_in(conflict: _native.Conflict) -> ScopeLock:
    """A ``ScopeLock`` for a conflict whose holder's record cannot be read."""
    return ScopeLock(
        loop_name=conflict["lock_name"],
        scope=[],
        pid=0,
        started_at="",
        liveness="unreadable",
    )


class LockManager:
    """Scope locks in ``<loops_dir>/.running/``, held for as long as they are held.

    ``loops_dir`` defaults to ``.loops``; a relative one is resolved against
    the current directory at each call, as in the original.

    With ``etcd`` (an endpoint URL or a list of them) and ``project`` (the name
    every clone of the project gives), the locks are kept in etcd instead, for
    loops on several machines: the same calls, rules and conflicts, with scopes
    relative to ``root`` (default: the git toplevel of the current directory).
    A lock there lives on this manager's lease, which a thread of its own renews;
    a process stopped or cut off from etcd for longer than ``lease_ttl`` seconds
    (default 5) loses its locks, and the locks end with the manager.
    ``loops_dir`` and ``running_dir`` are then ``None``.
    """

    def __init__(
        self,
        loops_dir: str | os.PathLike[str] | None = None,
        *,
        etcd: str | Sequence[str] | None = None,
        project: str | None = None,
        root: str | os.PathLike[str] | None = None,
        lease_ttl: float | None = None,
    ) -> None:
        self._native: _native.Manager | _native.EtcdManager
        if etcd is None:
            if project is not None or root is not None or lease_ttl is not None:
                raise ValueError("project, root and lease_ttl are for etcd: give etcd= too")
            self.loops_dir: Path | None = Path(loops_dir) if loops_dir else Path(".loops")
            self.running_dir: Path | None = self.loops_dir / RUNNING_DIR
            self._native = _native.Manager(os.fspath(self.loops_dir))
            return
        if loops_dir is not None:
            raise ValueError("give loops_dir or etcd, not both")
        if not project:
            raise ValueError(
                "etcd needs project=: the name every clone of the project gives, so that clones "
                "at different paths share their locks")
        endpoints = [etcd] if isinstance(etcd, str) else list(etcd)
        self.loops_dir = None
        self.running_dir = None
        self._native = _native.EtcdManager(
            endpoints, project, None if root is None else os.fspath(root),
            None if lease_ttl is None else float(lease_ttl))

    def acquire(
        self,
        loop_name: str,
        scope: Scope,
        instance_id: str | None = None,
        *,
        singleton: bool = False,
        shared: bool = False,
    ) -> bool:
        """Acquire the scope if no live lock conflicts; never waits for a holder.

        Returns True when this manager now holds the lock (until ``release``),
        False when a live lock overlaps the scope, is a singleton of the same
        name (with ``singleton=True``), or already has this lock's file name.
        An empty scope is the whole project (``"."``); a lone ``str`` or
        ``os.PathLike`` is one path. ``instance_id`` names the lock file
        instead of ``loop_name``. With ``shared=True`` the lock is a read lock:
        other shared locks may hold overlapping scopes at the same time, an
        exclusive one (the default) may not, and an exclusive request that is
        already waiting goes first.

        Raises ``ValueError`` for a name or instance id that cannot name a
        lock file (empty, absolute, ``..``, leading dot, NUL), ``TypeError``
        for a scope entry that is not a ``str`` or ``os.PathLike``, and ``OSError``
        (with ``filename``) when the lock directory cannot be used, including
        ``LockDirectoryBusyError`` when another process keeps the directory's
        sentinel locked for longer than a few seconds.
        """
        token, _ = self._native.acquire(loop_name, _scope_paths(scope), instance_id, singleton, 0, shared=shared)
        return token is not None

    def release(self, loop_name: str, instance_id: str | None = None) -> None:
        """Release the lock this manager acquired under this name; nothing if it holds none.

        The lock file is removed only if it is still this lock's, then the
        descriptor is closed. Raises ``OSError`` if the lock directory
        cannot be used; the lock ends all the same.

        The lock is found by name among this manager's, so a relative
        ``loops_dir`` and a change of the current directory since ``acquire``
        do not matter. Only when this manager holds the name under several
        directories does the current directory choose; if it chooses none of
        them, ``ValueError`` lists them and nothing is released.
        """
        self._native.release(loop_name, instance_id)

    def acquire_wait(
        self,
        loop_name: str,
        scope: Scope,
        timeout: float | None = 300,
        instance_id: str | None = None,
        *,
        singleton: bool = False,
        shared: bool = False,
    ) -> bool:
        """Acquire the scope, waiting up to ``timeout`` seconds for it. Prefer this to
        ``wait_for_scope`` followed by ``acquire``: it returns True only holding the lock.

        ``timeout`` is read as filelock reads it: ``None`` (or ``math.inf``) waits forever,
        ``0`` tries once, a positive number waits up to that many seconds; a negative number
        or NaN raises ``ValueError``.

        Returns False if the timeout passed while the scope was taken. Waiters for
        overlapping scopes get it in the order they started waiting, and wake as soon as
        the holder releases or dies (no one-second polls). The GIL is released while
        waiting; a signal handler that raises (Ctrl-C) ends the wait within about a
        second, with its exception. ``shared`` is as for ``acquire``. Raises as ``acquire`` does, and
        ``LockDirectoryBusyError`` if the lock directory stayed busy until the timeout.
        """
        token, _ = self._native.acquire(loop_name, _scope_paths(scope), instance_id, singleton, timeout,
                                        shared=shared)
        return token is not None

    def wait_for_scope(
        self,
        scope: Scope,
        timeout: float | None = 300,
        *,
        loop_name: str | None = None,
        singleton: bool = False,
    ) -> bool:
        """Wait up to ``timeout`` seconds until ``scope`` is free; True if it was. ``timeout``
        is read as ``acquire_wait`` reads it (``None`` waits forever, ``0`` looks once).

        Racy by nature, as in the original: True means the scope was free at one
        moment, and another process may take it before the caller's ``acquire``.
        Use ``acquire_wait``, which ends holding the lock.

        Built on the waiting acquire: it waits its turn among the waiters, holds the
        scope for an instant under a lock named ``wait_for_scope-<pid>-<n>`` (for
        ``loop_name``, or ``"wait_for_scope"``), and releases it at once. With
        ``singleton=True`` and a ``loop_name``, live singletons of that name also count.
        """
        name = loop_name if loop_name is not None else "wait_for_scope"
        probe = f"wait_for_scope-{os.getpid()}-{next(_probe_numbers)}"
        token, _ = self._native.acquire(name, _scope_paths(scope), probe, singleton and loop_name is not None,
                                        timeout)
        if token is None:
            return False
        self._native.release(name, probe, token)
        return True

    def find_conflict(
        self,
        scope: Scope,
        *,
        caller_loop_name: str | None = None,
        caller_singleton: bool = False,
        caller_shared: bool = False,
    ) -> ScopeLock | None:
        """The live lock that overlaps ``scope`` (or, with ``caller_singleton``, is a
        singleton named ``caller_loop_name``), or None; an earlier waiter for an
        overlapping scope counts too (it goes first). Stale locks are removed on the
        way. With ``caller_shared``, shared locks do not count (a reader would join them).
        The answer may be out of date when it returns: to hold a scope, acquire it.
        """
        conflict = self._native.find_conflict(_scope_paths(scope), caller_loop_name, caller_singleton,
                                              caller_shared)
        if conflict is None:
            return None
        if conflict["holder"] is None:
            logger.warning("%s", conflict["message"])
            return _stand_in(conflict)
        return ScopeLock.from_dict(conflict["holder"])

    def is_locked(self, loop_name: str, instance_id: str | None = None) -> bool:
        """Whether a live lock holds this name's lock file now, whoever holds it (this
        manager included); not in the original. Waiters do not count. A lock file there
        whose record cannot be read counts when it blocks acquires. Nothing is changed:
        a stale lock file makes it False and stays where it is. The answer may be out of
        date when it returns: to hold the name, acquire it. To ask about a scope instead,
        use ``find_conflict``.

        Raises ``ValueError`` for a name that cannot name a lock file, as ``acquire`` does.
        """
        return self._native.is_locked(loop_name, instance_id)

    def list_locks(self) -> list[ScopeLock]:
        """Every live lock, nested names included. Stale locks are removed on the way;
        lock files that are not readable live locks are logged at WARNING."""
        records, problems = self._native.list_locks()
        for problem in problems:
            logger.warning("%s", problem)
        return [ScopeLock.from_dict(record) for record in records]

    @contextlib.contextmanager
    def hold(
        self,
        loop_name: str,
        scope: Scope,
        instance_id: str | None = None,
        *,
        singleton: bool = False,
        timeout: float | None = 0,
        shared: bool = False,
    ) -> Iterator[ScopeLock]:
        """Hold the scope for the ``with`` block and yield its ``ScopeLock``.

        By default (``timeout=0``) tries once and raises ``ScopeConflict`` (carrying the
        holder) when the scope is taken: it fails fast. With ``timeout=None`` it waits
        for as long as it takes; with a positive number, waits as ``acquire_wait`` does
        and raises ``ScopeTimeout`` (a ``ScopeConflict`` and a ``TimeoutError``, carrying
        the last holder) when it passes. ``timeout`` is read as ``acquire_wait`` reads it.
        ``shared`` is as for ``acquire``. The lock is released when the block ends, however
        it ends.
        """
        outcome = self._native.acquire(loop_name, _scope_paths(scope), instance_id, singleton, timeout,
                                       shared=shared)
        if outcome[0] is None:
            raise _conflict_error(outcome[1])
        token, record = outcome
        try:
            yield ScopeLock.from_dict(record)
        finally:
            self._native.release(loop_name, instance_id, token)

    @contextlib.asynccontextmanager
    async def hold_async(
        self,
        loop_name: str,
        scope: Scope,
        instance_id: str | None = None,
        *,
        singleton: bool = False,
        timeout: float | None = 0,
        shared: bool = False,
    ) -> AsyncIterator[ScopeLock]:
        """``hold()`` for ``async with``: the same arguments, timeouts and exceptions, but the
        wait does not block the event loop (it runs on a thread of its own, without the GIL).

        Cancelling the task that waits stops the wait at once (the cancellation wakes the
        waiting thread, which is otherwise asleep until the scope changes) and leaves
        nothing behind: no lock, no ticket in the waiting queue. The cancellation reaches the
        task once the wait has stopped (and the lock, if it was granted meanwhile, has been
        released). The lock is released when the block ends, however it ends.
        """
        paths = _scope_paths(scope)
        cancel = _native.Cancel()
        acquiring = _in_thread(
            lambda: self._native.acquire(loop_name, paths, instance_id, singleton, timeout, shared=shared,
                                         cancel=cancel))
        try:
            outcome = await asyncio.shield(acquiring)
        except asyncio.CancelledError:
            cancel.cancel()
            await _settled(acquiring)
            granted = None if acquiring.exception() is not None else acquiring.result()[0]
            if granted is not None:
                await _settled(_in_thread(lambda: self._native.release(loop_name, instance_id, granted)))
            raise
        if outcome[0] is None:
            raise _conflict_error(outcome[1])
        token, record = outcome
        try:
            yield ScopeLock.from_dict(record)
        finally:
            releasing = _in_thread(lambda: self._native.release(loop_name, instance_id, token))
            cancelled = await _settled(releasing)
            releasing.result()
            if cancelled:
                raise asyncio.CancelledError

    def held(self) -> list[Path]:
        """The lock files this manager holds (not in the original)."""
        return [Path(p) for p in self._native.held()]

    # The original's private helpers, which its users call.

    def _paths_overlap(self, path1: str | os.PathLike[str], path2: str | os.PathLike[str]) -> bool:
        """Whether two normalised paths are equal or one contains the other, by components."""
        return _native.paths_overlap(_path(path1), _path(path2))

    def _scopes_overlap(self, scope1: Scope, scope2: Scope) -> bool:
        """Whether any path of one scope overlaps any path of the other."""
        return _native.scopes_overlap(_scope_paths(scope1), _scope_paths(scope2))

    def _normalize_path(self, path: str | os.PathLike[str]) -> str:
        """The path as ``Path(path).resolve()`` gives it (non-strict)."""
        return _native.normalize_path(_path(path))
