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

from . import _native
from ._conflict import ScopeConflict, ScopeTimeout
from ._errors import LockDirectoryBusyError, NotALockFileError, UnsupportedFilesystemError
from ._manager import RUNNING_DIR, LockManager
from ._record import ScopeLock
# The scope's types are no part of __all__, but a user may annotate with them.
from ._scope import Scope as Scope, ScopeEntry as ScopeEntry, resolve_scope

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

#: The package's version, which is the Rust crate's (Cargo.toml), as in its metadata.
__version__: str = _native.__version__

# The public names are the package's wherever they are defined: reprs, tracebacks and pickles
# call them by the name users import, `scope_lock.ScopeLock`, not by a private module's.
for _public in (LockManager, ScopeConflict, ScopeLock, ScopeTimeout, resolve_scope):
    _public.__module__ = __name__
del _public
