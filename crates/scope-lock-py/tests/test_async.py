"""``async with manager.hold_async(...)``: a wait that leaves the event loop running, and a
cancellation that stops it and leaves nothing behind.

Each test runs its own event loop (``asyncio.run``); the holder the waits are for is another
process (``actor.py hold``), since one process's overlapping acquires conflict at once.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from scope_lock import LockManager, ScopeConflict

from conftest import TIMEOUT_S
from test_timeouts import queue_of


async def until(condition, what: str) -> None:
    """Returns once ``condition()`` holds, letting the loop run meanwhile; fails the test
    after the bound."""
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {TIMEOUT_S} s")
        await asyncio.sleep(0.01)  # polling a condition, bounded above; nothing is ordered by it


def test_hold_async_waits_without_blocking_the_event_loop(manager: LockManager, loops_dir: Path, actor) -> None:
    holder = actor("hold", loops_dir, "holder", "src")
    assert holder.line().startswith("held ")
    ticks = 0

    async def count() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async def wait_for_the_scope() -> int:
        # A bounded wait, so that a hold_async that blocked the loop would fail, not hang.
        async with manager.hold_async("waiter", ["src"], timeout=TIMEOUT_S) as lock:
            assert manager.is_locked("waiter")
            return lock.pid

    async def main() -> None:
        counter = asyncio.create_task(count())
        waiter = asyncio.create_task(wait_for_the_scope())
        await until(lambda: queue_of(loops_dir), "the waiter queued")
        # The loop goes on running other tasks while the waiter waits: the counter advances
        # by a thousand, each tick one trip through the loop, with the waiter still waiting.
        queued_at = ticks
        await until(lambda: ticks > queued_at + 1000, "the counter advanced during the wait")
        assert not waiter.done(), "the waiter stopped waiting while the scope was held"
        assert queue_of(loops_dir), "the waiter left the queue while the scope was held"
        holder.send("release")
        assert await asyncio.to_thread(holder.line) == "released"
        assert await asyncio.wait_for(waiter, TIMEOUT_S) > 0
        counter.cancel()

    asyncio.run(main())
    assert manager.held() == [] and not manager.is_locked("waiter") and queue_of(loops_dir) == []


def test_cancelling_a_waiting_hold_async_leaves_no_lock_and_no_ticket(
        manager: LockManager, loops_dir: Path, actor) -> None:
    holder = actor("hold", loops_dir, "holder", "src")
    assert holder.line().startswith("held ")

    async def wait_for_the_scope() -> None:
        # Far longer than the bound below, so that only the cancellation can end it in time.
        async with manager.hold_async("waiter", ["src"], timeout=3 * TIMEOUT_S):
            pytest.fail("entered a held scope")

    async def main() -> None:
        waiter = asyncio.create_task(wait_for_the_scope())
        await until(lambda: queue_of(loops_dir), "the waiter queued")
        waiter.cancel()
        # Only a bound on a hang: a wait that ignored the cancellation would run to its timeout.
        done, _ = await asyncio.wait({waiter}, timeout=TIMEOUT_S)
        assert waiter in done, "the cancelled wait went on waiting"
        with pytest.raises(asyncio.CancelledError):
            waiter.result()
        # Once the cancelled task has ended, its wait is over: nothing of it is left.
        assert queue_of(loops_dir) == [], "the cancelled wait left its ticket in the queue"
        assert manager.held() == [] and not manager.is_locked("waiter")

    asyncio.run(main())
    # And nothing of it wakes up later to take the scope.
    holder.send("release")
    assert holder.line() == "released"
    assert actor("hold", loops_dir, "other", "src").line().startswith("held ")
    assert not manager.is_locked("waiter")


def test_a_cancellation_that_comes_after_the_lock_was_granted_releases_it(manager: LockManager) -> None:
    async def take() -> None:
        async with manager.hold_async("taker", ["src"], timeout=None):
            pytest.fail("entered after the task was cancelled")

    async def main() -> None:
        taker = asyncio.create_task(take())
        await asyncio.sleep(0)  # the task starts its acquire on a thread
        # Blocking the loop (no await) until the thread has the lock: the task cannot see the
        # grant before it sees the cancellation.
        deadline = time.monotonic() + TIMEOUT_S
        while not manager.held():
            assert time.monotonic() < deadline, "the free scope was not acquired"
            time.sleep(0.01)
        taker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await taker
        assert manager.held() == [] and not manager.is_locked("taker")

    asyncio.run(main())


def test_hold_async_releases_when_the_block_ends_however_it_ends(manager: LockManager) -> None:
    async def main() -> None:
        async with manager.hold_async("job", ["src"]) as lock:
            assert lock.loop_name == "job" and manager.is_locked("job")
        assert not manager.is_locked("job")
        with pytest.raises(KeyError):
            async with manager.hold_async("job", ["src"]):
                raise KeyError("the block failed")
        assert not manager.is_locked("job") and manager.held() == []

    asyncio.run(main())


def test_hold_async_tries_once_by_default_and_raises_the_conflict(
        manager: LockManager, loops_dir: Path, actor) -> None:
    holder = actor("hold", loops_dir, "holder", "src")
    assert holder.line().startswith("held ")

    async def main() -> None:
        with pytest.raises(ScopeConflict) as raised:
            async with manager.hold_async("job", ["src/x"]):
                pytest.fail("entered a held scope")
        assert raised.value.loop_name == "holder" and type(raised.value) is ScopeConflict

    asyncio.run(main())
    assert queue_of(loops_dir) == [] and manager.held() == []


def test_hold_async_takes_a_shared_lock_when_asked(manager: LockManager) -> None:
    async def main() -> None:
        async with manager.hold_async("reader", ["src"], shared=True) as lock:
            assert lock.mode == "shared"
        async with manager.hold_async("writer", ["src"]) as lock:
            assert lock.mode == "exclusive"

    asyncio.run(main())
