"""``LockManager``: the original's calls, and ``hold``/``hold_async``, over the Rust half's
manager of a lock directory or of an etcd project."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import logging
import os
from pathlib import Path
from typing import AsyncIterator, Iterator, Sequence

from . import _native
from ._conflict import conflict_error, stand_in
from ._record import ScopeLock
from ._scope import Scope, scope_path, scope_paths
from ._threads import in_thread, settled

# The logger the documentation names, `scope_lock`, rather than this module's own.
logger = logging.getLogger("scope_lock")

RUNNING_DIR = ".running"

_probe_numbers = itertools.count(1)

# The process's table of held locks (the Rust half's): a child made by fork gives up its
# copies at once, and what is still held at exit is released.
os.register_at_fork(after_in_child=_native.forget_inherited)
atexit.register(_native.release_all)


def _granted(outcome: tuple[int, _native.Record] | tuple[None, _native.Conflict]) -> tuple[int, ScopeLock]:
    """The hold's token and its ``ScopeLock``, from what the Rust half's ``acquire`` returned;
    the conflict's exception when it was refused."""
    if outcome[0] is None:
        raise conflict_error(outcome[1])
    token, record = outcome
    return token, ScopeLock.from_dict(record)


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
        self._native: _native.Manager
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
        self._native = _native.Manager.etcd(
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
        token, _ = self._native.acquire(loop_name, scope_paths(scope), instance_id, singleton, 0, shared=shared)
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
        token, _ = self._native.acquire(loop_name, scope_paths(scope), instance_id, singleton, timeout,
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
        token, _ = self._native.acquire(name, scope_paths(scope), probe, singleton and loop_name is not None,
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
        conflict = self._native.find_conflict(scope_paths(scope), caller_loop_name, caller_singleton,
                                              caller_shared)
        if conflict is None:
            return None
        if conflict["holder"] is None:
            logger.warning("%s", conflict["message"])
            return stand_in(conflict)
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
        token, lock = _granted(self._native.acquire(loop_name, scope_paths(scope), instance_id, singleton,
                                                    timeout, shared=shared))
        try:
            yield lock
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
        paths = scope_paths(scope)
        cancel = _native.Cancel()
        acquiring = in_thread(
            lambda: self._native.acquire(loop_name, paths, instance_id, singleton, timeout, shared=shared,
                                         cancel=cancel))
        try:
            outcome = await asyncio.shield(acquiring)
        except asyncio.CancelledError:
            cancel.cancel()
            await settled(acquiring)
            granted = None if acquiring.exception() is not None else acquiring.result()[0]
            if granted is not None:
                await settled(in_thread(lambda: self._native.release(loop_name, instance_id, granted)))
            raise
        token, lock = _granted(outcome)
        try:
            yield lock
        finally:
            releasing = in_thread(lambda: self._native.release(loop_name, instance_id, token))
            cancelled = await settled(releasing)
            releasing.result()
            if cancelled:
                raise asyncio.CancelledError

    def held(self) -> list[Path]:
        """The lock files this manager holds (not in the original)."""
        return [Path(p) for p in self._native.held()]

    # The original's private helpers, which its users call.

    def _paths_overlap(self, path1: str | os.PathLike[str], path2: str | os.PathLike[str]) -> bool:
        """Whether two normalised paths are equal or one contains the other, by components."""
        return _native.paths_overlap(scope_path(path1), scope_path(path2))

    def _scopes_overlap(self, scope1: Scope, scope2: Scope) -> bool:
        """Whether any path of one scope overlaps any path of the other."""
        return _native.scopes_overlap(scope_paths(scope1), scope_paths(scope2))

    def _normalize_path(self, path: str | os.PathLike[str]) -> str:
        """The path as ``Path(path).resolve()`` gives it (non-strict)."""
        return _native.normalize_path(scope_path(path))
