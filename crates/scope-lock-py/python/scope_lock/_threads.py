"""Blocking calls of the Rust half run for asyncio: each on a thread of its own, awaited
without letting a cancellation cut short what the thread started."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, TypeVar


_T = TypeVar("_T")


def in_thread(call: Callable[[], _T]) -> asyncio.Future[_T]:
    """Runs ``call`` on a thread of its own, for the running loop to await. Not the loop's
    default executor: a wait may last forever, and that executor has only a few threads."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def settle(result: _T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result = call()
        except BaseException as error:  # handed to the awaiting task, which raises it
            loop.call_soon_threadsafe(settle, None, error)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=run, name="scope_lock", daemon=True).start()
    return future


async def settled(future: asyncio.Future[Any]) -> bool:
    """Waits until ``future`` is done, even through cancellations of this task; returns
    whether there was one (the caller raises it once what it started is over)."""
    cancelled = False
    while not future.done():
        try:
            await asyncio.wait({future})
        except asyncio.CancelledError:
            cancelled = True
    return cancelled
