"""The exceptions of ``scope_lock`` that are ``OSError``s about one path.

They are raised by the Rust half; they are defined here, in Python, so that
their message is the one the library wrote even though ``filename`` is set.
"""

from __future__ import annotations


class _PathError(OSError):
    """An ``OSError`` with no errno: ``args[0]`` is the message, ``filename`` the path."""

    def __str__(self) -> str:
        if len(self.args) == 1:
            return str(self.args[0])
        return super().__str__()


class NotALockFileError(_PathError):
    """Something other than a regular file (a symlink, a directory, a FIFO) is where a
    lock file or the directory sentinel must be. ``filename`` is that path."""


class UnsupportedFilesystemError(_PathError):
    """The lock directory is on a filesystem whose flock is emulated or not shared
    between machines (NFS, SMB/CIFS, 9p), where locks would not exclude each other.
    ``filename`` is the sentinel's path."""


class LockDirectoryBusyError(_PathError, TimeoutError):
    """Another process kept the lock directory's sentinel (``.running/.acquire.lock``)
    locked for longer than the bound (a holder that is stopped, stuck or very slow). The
    message names it and, on Linux, the pid holding it. Trying again later may succeed."""
