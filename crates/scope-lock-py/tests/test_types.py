"""What type checkers see: the stub of the native module (``_native.pyi``) and ``py.typed``.

A user's script that uses the API passes ``mypy --strict``; one that misuses it fails with the
errors a correct stub gives (so the types are really seen, not ``Any``); the stub matches the
built module signature by signature (``mypy.stubtest``); the package itself passes
``mypy --strict`` against its own stub.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import REPO, TIMEOUT_S

PACKAGE_SOURCE = REPO / "crates" / "scope-lock-py" / "python" / "scope_lock"

USER_SCRIPT = '''
    import math
    import os
    from pathlib import Path
    from typing import Optional

    import scope_lock
    from scope_lock import LockManager, ScopeConflict, ScopeLock, ScopeTimeout, resolve_scope


    def build(loops_dir: "os.PathLike[str]") -> Optional[ScopeLock]:
        manager = LockManager(loops_dir)
        assert LockManager(str(loops_dir)).running_dir == manager.running_dir
        held: bool = manager.acquire("fixer", [Path("docs"), "src"], singleton=True)
        if held:
            manager.release("fixer")
        waited: bool = manager.acquire_wait("fixer", "docs", timeout=None)
        manager.release("fixer")
        manager.wait_for_scope(["docs"], timeout=math.inf, loop_name="fixer")
        locked: bool = manager.is_locked("fixer", instance_id=None)
        try:
            with manager.hold("fixer", ["docs"], timeout=2.5) as lock:
                pids: int = lock.pid
        except ScopeTimeout as timeout:
            holder: Optional[ScopeLock] = timeout.holder
        except ScopeConflict as conflict:
            rule: str = conflict.rule
        files: list[Path] = manager.held()
        scope: list[str] = resolve_scope(["${context.x}"], {"x": 1})
        version: str = scope_lock.__version__
        return manager.find_conflict(["docs"])


    async def build_async(manager: LockManager) -> int:
        async with manager.hold_async("fixer", ["docs"], timeout=None) as lock:
            return lock.pid
'''

MISUSES = '''
    from scope_lock import LockManager

    manager = LockManager(".loops")
    manager.acquire_wait("fixer", ["docs"], timeout="5")
    manager.is_locked(3)
    count: int = manager.held()
    manager.hold("fixer", ["docs"], wait=1)
'''


def mypy(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m mypy --strict ARGS`` from an empty directory, with a cache of its own."""
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S * 5,
    )


def test_mypy_strict_passes_on_a_users_script(tmp_path: Path) -> None:
    script = tmp_path / "user.py"
    script.write_text(textwrap.dedent(USER_SCRIPT))
    result = mypy(tmp_path, str(script))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Success: no issues found in 1 source file"), result.stdout


def test_mypy_strict_sees_every_misuse_of_the_api(tmp_path: Path) -> None:
    script = tmp_path / "misuse.py"
    script.write_text(textwrap.dedent(MISUSES))
    result = mypy(tmp_path, str(script))
    errors = [line for line in result.stdout.splitlines() if ": error: " in line]
    # One error per misuse line (5 to 8 of the dedented script), each on its own line.
    assert sorted({int(line.split(":")[1]) for line in errors}) == [5, 6, 7, 8], result.stdout
    assert 'incompatible type "str"; expected "float | None"' in result.stdout, result.stdout


def test_the_native_stub_matches_the_built_module(tmp_path: Path) -> None:
    import scope_lock._native as native

    # Without a stub, stubtest has nothing to compare and passes: it must be installed.
    stub = Path(native.__file__).with_name("_native.pyi")
    assert stub.is_file(), f"no stub installed beside {native.__file__}"
    assert stub.with_name("py.typed").is_file(), "the package is not marked typed (py.typed)"
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "scope_lock._native",
         "--mypy-config-file", str(tmp_path / "none.ini")],
        cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S * 5,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_package_passes_mypy_strict_against_its_own_stub(tmp_path: Path) -> None:
    result = mypy(tmp_path, str(PACKAGE_SOURCE))
    assert result.returncode == 0, result.stdout + result.stderr
