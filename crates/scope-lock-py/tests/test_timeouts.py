"""Timeouts as filelock and the standard library read them, the same in every call that waits
(``hold_async`` included).

``None`` waits forever (as does ``math.inf``, and any positive number too large to be a
deadline), ``0`` tries once, a positive number waits up to that many seconds; a negative
number or NaN is a ``ValueError`` naming ``timeout``.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import pytest

from scope_lock import LockManager, ScopeConflict, ScopeTimeout

from conftest import TIMEOUT_S

#: One call per entry point that takes a timeout: True when it got the scope, False when not;
#: what it acquired is released again, so that each call leaves the manager as it found it.
WAITING_CALLS: dict[str, Callable[[LockManager, Optional[float]], bool]] = {}


def waiting_call(name: str):
    def register(call: Callable[[LockManager, Optional[float]], bool]):
        WAITING_CALLS[name] = call
        return call

    return register


@waiting_call("acquire_wait")
def _acquire_wait(manager: LockManager, timeout: float | None) -> bool:
    if not manager.acquire_wait("waiter", ["src"], timeout=timeout):
        return False
    manager.release("waiter")
    return True


@waiting_call("hold")
def _hold(manager: LockManager, timeout: float | None) -> bool:
    try:
        with manager.hold("waiter", ["src"], timeout=timeout):
            return True
    except ScopeConflict:
        return False


@waiting_call("hold_async")
def _hold_async(manager: LockManager, timeout: float | None) -> bool:
    async def hold() -> bool:
        try:
            async with manager.hold_async("waiter", ["src"], timeout=timeout):
                return True
        except ScopeConflict:
            return False

    return asyncio.run(hold())


@waiting_call("wait_for_scope")
def _wait_for_scope(manager: LockManager, timeout: float | None) -> bool:
    return manager.wait_for_scope(["src"], timeout=timeout)  # type: ignore[arg-type]


def queue_of(loops_dir: Path) -> list[Path]:
    """The tickets of the waiters queued in the lock directory."""
    queue = loops_dir / ".running" / ".queue"
    return sorted(queue.iterdir()) if queue.is_dir() else []


def wait_until_queued(loops_dir: Path, waiter: threading.Thread) -> None:
    """Returns once a waiter's ticket is in the queue; fails if the waiter returned first (it
    did not wait) or nothing queued within the bound."""
    deadline = time.monotonic() + TIMEOUT_S
    while not queue_of(loops_dir):
        if not waiter.is_alive():
            pytest.fail("the call returned instead of waiting")
        if time.monotonic() > deadline:
            pytest.fail(f"no waiter queued within {TIMEOUT_S} s")
        time.sleep(0.01)  # polling a condition, bounded above; nothing is ordered by it


@pytest.mark.parametrize("timeout", [None, math.inf, 1e300], ids=["None", "inf", "1e300"])
@pytest.mark.parametrize("call", WAITING_CALLS)
def test_a_timeout_of_none_or_infinity_waits_until_the_holder_releases(
        manager: LockManager, loops_dir: Path, actor, call: str, timeout: float | None) -> None:
    holder = actor("hold", loops_dir, "holder", "src")
    assert holder.line().startswith("held ")
    result: list[bool | BaseException] = []

    def wait() -> None:
        try:
            result.append(WAITING_CALLS[call](manager, timeout))
        except BaseException as err:  # the test thread reports it; pytest would not see it
            result.append(err)

    waiter = threading.Thread(target=wait)
    waiter.start()
    try:
        wait_until_queued(loops_dir, waiter)
        holder.send("release")
        assert holder.line() == "released"
    finally:
        waiter.join(TIMEOUT_S)
    assert result == [True], f"{call}(timeout={timeout!r}) did not wait for the scope"
    assert queue_of(loops_dir) == [] and manager.list_locks() == []


@pytest.mark.parametrize("call", WAITING_CALLS)
def test_a_timeout_of_zero_tries_once_and_queues_nothing(
        manager: LockManager, loops_dir: Path, actor, call: str) -> None:
    holder = actor("hold", loops_dir, "holder", "src")
    assert holder.line().startswith("held ")
    assert WAITING_CALLS[call](manager, 0) is False
    assert queue_of(loops_dir) == [] and manager.held() == []
    holder.send("release")
    assert holder.line() == "released"
    assert WAITING_CALLS[call](manager, 0) is True


def test_hold_tries_once_by_default_and_a_refusal_is_a_conflict_not_a_timeout(
        manager: LockManager, loops_dir: Path, actor) -> None:
    holder = actor("hold", loops_dir, "holder", "src")
    assert holder.line().startswith("held ")
    for arguments in ({}, {"timeout": 0}):
        with pytest.raises(ScopeConflict) as raised:
            with manager.hold("waiter", ["src"], **arguments):
                pytest.fail("entered a held scope")
        assert type(raised.value) is ScopeConflict, arguments
    assert queue_of(loops_dir) == []


@pytest.mark.parametrize("timeout", [-1, -0.5, -math.inf, math.nan], ids=["-1", "-0.5", "-inf", "nan"])
@pytest.mark.parametrize("call", WAITING_CALLS)
def test_a_negative_or_nan_timeout_is_a_value_error_naming_it(
        manager: LockManager, call: str, timeout: float) -> None:
    # The scope is free: a call that took such a timeout for "try once" would succeed here.
    with pytest.raises(ValueError) as raised:
        WAITING_CALLS[call](manager, timeout)
    message = str(raised.value)
    assert message.startswith("timeout must be None (wait forever), 0 (try once) or a positive "
                              "number of seconds, not "), message
    assert message.endswith(repr(float(timeout))), message
    assert manager.held() == [] and manager.list_locks() == []


@pytest.mark.parametrize("call", WAITING_CALLS)
def test_a_timeout_that_is_not_a_number_is_a_type_error_naming_it(manager: LockManager, call: str) -> None:
    with pytest.raises(TypeError, match="timeout"):
        WAITING_CALLS[call](manager, "5")  # type: ignore[arg-type]
    assert manager.held() == []


def test_a_positive_timeout_waits_up_to_it_then_gives_up(
        manager: LockManager, loops_dir: Path, actor) -> None:
    holder = actor("hold", loops_dir, "holder", "src")
    assert holder.line().startswith("held ")
    assert manager.acquire_wait("waiter", ["src"], timeout=0.1) is False
    with pytest.raises(ScopeTimeout):
        with manager.hold("waiter", ["src"], timeout=0.1):
            pytest.fail("entered a held scope")
    assert manager.wait_for_scope(["src"], timeout=0.1) is False
    assert queue_of(loops_dir) == [] and manager.held() == []
