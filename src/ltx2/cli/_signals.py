"""SIGINT and SIGTERM as events, for the commands that must tidy up a paid job when stopped.

The first signal sets :attr:`Interrupts.signum` and wakes whoever waits in
:meth:`Interrupts.first`; the command then decides (cancel the job, or say how to follow it).
A second signal cancels the command's task: the user insists, it stops at once.

Handlers are installed only in the main thread of a Unix event loop; elsewhere (``main()``
called from a worker thread in tests, Windows) Ctrl-C stays a ``KeyboardInterrupt``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

__all__ = ["Interrupts", "exit_code"]


def exit_code(signum: int) -> int:
    """The shell's exit code for a command stopped by ``signum``: 130 for SIGINT, 143 for
    SIGTERM."""
    return 128 + signum


class Interrupts:
    """Catch SIGINT and SIGTERM while the ``with`` block runs."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._event = asyncio.Event()
        self._task = asyncio.current_task()
        self._installed: list[signal.Signals] = []

    def __enter__(self) -> Interrupts:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._fire, sig)
                self._installed.append(sig)
        return self

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()

    def _fire(self, sig: signal.Signals) -> None:
        if self.signum is None:
            self.signum = int(sig)
            self._event.set()
        elif self._task is not None:
            self._task.cancel()

    @property
    def fired(self) -> bool:
        """True once a signal came."""
        return self.signum is not None

    async def first(self, task: asyncio.Task[Any]) -> bool:
        """Wait until ``task`` is done or a signal comes; True if the signal came first (the
        task still runs: the caller decides what to do with it). If this wait is cancelled
        (a second signal), ``task`` is cancelled and waited for first."""
        if self.fired:
            return not task.done()
        waiter = asyncio.ensure_future(self._event.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.wait({task})
            raise
        finally:
            waiter.cancel()
        return not task.done()
