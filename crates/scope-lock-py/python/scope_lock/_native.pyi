"""Types of ``scope_lock._native``, the Rust half of the package (``src/*.rs``). Private: the
public API is ``scope_lock``'s. ``mypy.stubtest`` checks this file against the built module."""

import os
from pathlib import Path
from typing import Any, Final, TypedDict, final, type_check_only

__all__ = [
    "__version__",
    "Cancel",
    "Manager",
    "forget_inherited",
    "normalize_path",
    "paths_overlap",
    "release_all",
    "resolve_scope",
    "scopes_overlap",
]

__version__: Final[str]

@type_check_only
class Record(TypedDict):
    """A lock record as the keys of its JSON; ``liveness`` is ``"flock"`` for ours (``"lease"``
    on etcd), ``mode`` ``"shared"`` or ``"exclusive"``, ``token`` its fencing token (``None`` in
    the original's)."""

    loop_name: str
    scope: list[str]
    pid: int
    started_at: str
    singleton: bool
    liveness: str | None
    mode: str
    token: int | None

@type_check_only
class Conflict(TypedDict):
    """Why an acquire was refused (or timed out), and by whom (``None``: unreadable)."""

    timed_out: bool
    #: The library's own line: "scope is locked: ...", "timed out waiting for scope: ...", or,
    #: from ``find_conflict``, the conflict alone.
    message: str
    lock_path: str
    #: The blocking lock file's name below ``.running/``, without ``.lock``.
    lock_name: str
    held_by_this_process: bool
    #: On etcd, the host the holder runs on; ``None`` for a lock directory.
    host: str | None
    holder: Record | None
    rule: str

@final
class Manager:
    """The locks of a lock directory, ``<loops_dir>/.running/``, or of an etcd project
    (``Manager.etcd``), and the locks this manager acquired there."""

    def __new__(cls, loops_dir: str | os.PathLike[str]) -> Manager: ...
    @staticmethod
    def etcd(
        endpoints: list[str],
        project: str,
        root: str | None = None,
        lease_ttl: float | None = None,
    ) -> Manager: ...
    def acquire(
        self,
        loop_name: str,
        scope: list[str],
        instance_id: str | None,
        singleton: bool,
        timeout: float | None,
        shared: bool = False,
        cancel: Cancel | None = None,
    ) -> tuple[int, Record] | tuple[None, Conflict]: ...
    def release(self, loop_name: str, instance_id: str | None, token: int | None = None) -> bool: ...
    def find_conflict(
        self,
        scope: list[str],
        caller_loop_name: str | None,
        caller_singleton: bool,
        caller_shared: bool = False,
    ) -> Conflict | None: ...
    def is_locked(self, loop_name: str, instance_id: str | None) -> bool: ...
    def list_locks(self) -> tuple[list[Record], list[str]]: ...
    #: Lock files, or keys on etcd.
    def held(self) -> list[Path]: ...

@final
class Cancel:
    """Asks a waiting ``Manager.acquire`` on another thread to stop (it raises
    ``asyncio.CancelledError``)."""

    def __new__(cls) -> Cancel: ...
    def cancel(self) -> None: ...
    def is_cancelled(self) -> bool: ...

def paths_overlap(path1: str, path2: str) -> bool: ...
def scopes_overlap(scope1: list[str], scope2: list[str]) -> bool: ...
def normalize_path(path: str) -> str: ...
def resolve_scope(scope: list[str], context: dict[Any, Any]) -> list[str]: ...
def forget_inherited() -> None: ...
def release_all() -> None: ...
