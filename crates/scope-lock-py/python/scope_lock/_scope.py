"""Scopes as the caller gives them (one path or many, ``str``, ``bytes`` or ``os.PathLike``)
turned into the list of ``str`` paths the Rust half takes."""

from __future__ import annotations

import os
from typing import Any, Iterable, Union

from . import _native

#: A scope: one path, or any iterable of paths; a path is a ``str``, ``bytes`` or an
#: ``os.PathLike`` giving one. Paths that are not UTF-8 are locked byte for byte: as ``bytes``,
#: or as the ``str`` that ``os.fsdecode`` makes of them (surrogate escapes).
ScopeEntry = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
Scope = Union[ScopeEntry, Iterable[ScopeEntry]]


def resolve_scope(scope: Scope, context: dict[str, Any]) -> list[str]:
    """Replace each ``${context.<var>}`` in the scope's entries by ``str(context[var])``.

    A variable the context lacks stays as written; other namespaces
    (``${env.X}``) are not touched; replacements are not scanned again.
    """
    return _native.resolve_scope(scope_paths(scope), dict(context))


def scope_path(entry: object) -> str:
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


def scope_paths(scope: Scope) -> list[str]:
    """The scope's paths. A lone ``str`` or ``os.PathLike`` is one path: iterating it, as
    ``list()`` would, makes a path of each character (of each byte, for ``bytes``)."""
    if isinstance(scope, (str, bytes, os.PathLike)):
        return [scope_path(scope)]
    return [scope_path(entry) for entry in scope]
