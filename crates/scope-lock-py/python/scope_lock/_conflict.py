"""The exceptions of a refused or timed-out hold, made from the conflicts the Rust half
reports."""

from __future__ import annotations

from . import _native
from ._record import ScopeLock


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


def conflict_error(conflict: _native.Conflict) -> ScopeConflict:
    """The exception for a refused acquire: ``ScopeTimeout`` when its timeout passed,
    else ``ScopeConflict``."""
    if conflict["timed_out"]:
        return ScopeTimeout._from_native(conflict)
    return ScopeConflict._from_native(conflict)


def stand_in(conflict: _native.Conflict) -> ScopeLock:
    """A ``ScopeLock`` for a conflict whose holder's record cannot be read."""
    return ScopeLock(
        loop_name=conflict["lock_name"],
        scope=[],
        pid=0,
        started_at="",
        liveness="unreadable",
    )

