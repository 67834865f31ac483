"""Work that must outlive a cancel: the one way ltx2 does it (STYLE.md rule 17).

Some work must finish even when the task that started it is cancelled: reading the reply of a
create that was sent (the job may be running, and paid for), cancelling that job at the
provider, writing a record's final status. Such work runs in a task of its own, and its owner
waits for it through ``asyncio.shield`` semantics with a deadline:

- any number of cancellations of the owner — anyio's (re-delivered on every loop turn, so
  an anyio shield keeps them out) and asyncio's (``task.cancel()`` from ``asyncio.timeout``,
  a ``TaskGroup``, a server shutting down: one each, caught and counted) — only make the
  owner wait on, never the work stop;
- past the deadline the work is cancelled and given :data:`CLEANUP_GRACE` seconds to run its
  own ``finally`` clauses;
- the owner collects the work's result or exception on every path, so no task is left and
  no "exception was never retrieved" is logged; a cancellation that arrived meanwhile is
  raised once the work is over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import anyio

__all__ = ["CLEANUP_GRACE", "outlive_cancel", "wait_owned"]

log = logging.getLogger("ltx2")

T = TypeVar("T")

#: How long work cancelled at its deadline may take to clean up before its owner stops
#: waiting for it (its exception is still collected, by a callback, when it ends).
CLEANUP_GRACE = 1.0


async def outlive_cancel(work: Coroutine[Any, Any, T], *, grace: float, name: str) -> T:
    """Run ``work`` in a task of its own for at most ``grace`` seconds, whatever happens to
    the caller meanwhile; return its result or raise its exception.

    Raises ``TimeoutError`` if it is not done by then (it is cancelled), and
    ``asyncio.CancelledError`` (after the work is over) if the caller was cancelled by
    asyncio while it waited.
    """
    loop = asyncio.get_running_loop()
    task = loop.create_task(work, name=name)
    return await wait_owned(task, deadline=loop.time() + grace)


async def wait_owned(task: asyncio.Task[T], *, deadline: float) -> T:
    """Wait for a task this caller owns until ``deadline`` (``loop.time()``), through any
    number of cancellations; then as :func:`outlive_cancel`."""
    loop = asyncio.get_running_loop()
    with anyio.CancelScope(shield=True):
        interrupted = await _wait(task, deadline - loop.time())
        if not task.done():
            task.cancel()
            interrupted |= await _wait(task, CLEANUP_GRACE)
    if not task.done():
        task.add_done_callback(_collect)
        if interrupted:
            raise asyncio.CancelledError
        raise TimeoutError(f"{task.get_name()} did not end in time; it was cancelled")
    if interrupted:
        _collect(task)
        raise asyncio.CancelledError
    return task.result()


async def _wait(task: asyncio.Task[Any], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``task``; True if the caller was cancelled (by
    asyncio) meanwhile. ``asyncio.wait`` never cancels what it waits for."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    interrupted = False
    while not task.done():
        left = end - loop.time()
        if left <= 0:
            break
        try:
            await asyncio.wait([task], timeout=left)
        except asyncio.CancelledError:
            interrupted = True
    return interrupted


def _collect(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.warning("%s failed: %r", task.get_name(), error)
