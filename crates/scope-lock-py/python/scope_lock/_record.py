"""``ScopeLock``: a lock's record, as its lock file (or etcd key) holds it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


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

