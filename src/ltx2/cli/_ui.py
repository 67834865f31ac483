"""rich progress for the commands that wait for a job and download its video.

Waiting shows an estimated progress bar (elapsed time against the expected processing time:
providers report no percentage), the elapsed time, and a status line fed by
``job.updates()``: the normalized status, the provider's own word, queue position and the
latest log line. Downloading shows bytes, speed and time left from ``Video.save``'s
``progress(done, total)`` callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import ltx2

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "Waited",
    "check_out_path",
    "describe_update",
    "download",
    "estimate",
    "wait_for_video",
]

#: The bar reaches this fraction at the expected time, then creeps on towards 99 %.
_AT_EXPECTED = 0.9
#: While waiting, the job's status is read every ``expected / 20`` seconds within these
#: bounds, so the status line turns to "running" when the job does.
LOOK_MIN_INTERVAL = 0.25
LOOK_MAX_INTERVAL = 5.0


@dataclass(slots=True)
class Waited:
    """How waiting for a job went: its video, the seconds from submitted to finished, and
    the provider's status words in the order they were seen."""

    video: ltx2.Video
    seconds: float
    statuses: list[str] = field(default_factory=list)


def check_out_path(path: str | os.PathLike[str]) -> None:
    """Refuse an output path whose folder does not exist, before any job is submitted."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ltx2.InvalidRequestError(
            f"out: the folder {folder!r} does not exist",
            field="out",
            value=os.fspath(path),
            allowed="a path in an existing folder",
        )


def estimate(elapsed: float, expected: float) -> float:
    """An estimated completion fraction: linear to 90 % at ``expected`` seconds, then
    approaching 99 % without reaching it (the job may run long)."""
    if expected <= 0:
        return 0.99
    ratio = elapsed / expected
    if ratio <= 1.0:
        return _AT_EXPECTED * ratio
    return _AT_EXPECTED + (0.99 - _AT_EXPECTED) * (1.0 - math.exp(-(ratio - 1.0)))


def describe_update(update: ltx2.StatusUpdate) -> str:
    """One status line: ``running (processing) · queue #2 · <last log line>``."""
    parts = [update.status.value]
    if update.raw and update.raw.lower() != update.status.value:
        parts[0] += f" ({update.raw})"
    if update.queue_position is not None and not update.status.terminal:
        parts.append(f"queue #{update.queue_position}")
    if update.logs:
        parts.append(update.logs[-1].strip()[:60])
    if update.error:
        parts.append(update.error[:80])
    return " · ".join(parts)


async def wait_for_video(
    job: ltx2.Job,
    *,
    console: Console,
    expected: float,
    timeout: float | None,
    label: str = "generating",
    note: str | None = None,
    webhook: bool = False,
) -> Waited:
    """Wait for ``job`` with a live progress bar and status line; return its video.

    ``note`` is appended to the status line until the job ends (e.g. "awaiting webhook");
    ``webhook``: a webhook will announce the end.
    The job's status is read now and then while it runs (``job.refresh()``), so the line
    shows the provider's real status, not "queued" until the webhook comes.

    Raises what ``job.result(timeout)`` raises (:class:`ltx2.JobFailedError`,
    :class:`ltx2.JobCancelledError`, :class:`ltx2.JobTimeoutError`); the bar shows why.
    """
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    started = time.monotonic()
    statuses: list[str] = []
    bar = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
    )

    def show(update: ltx2.StatusUpdate) -> None:
        word = update.raw or update.status.value
        if not statuses or statuses[-1] != word:
            statuses.append(word)
        line = describe_update(update)
        if note and not update.status.terminal:
            line += f" · {note}"
        bar.update(task, status=line)

    async def watch() -> None:
        async for update in job.updates():
            show(update)

    async def tick() -> None:
        while True:
            bar.update(task, completed=100 * estimate(time.monotonic() - started, expected))
            await asyncio.sleep(0.1)

    async def look() -> None:
        # A webhook only says when the job has ended, and the poller's first read comes late
        # (near the shortest stated processing time; with a webhook expected, later still):
        # without reads of our own the line would say "queued" until the very end. One job
        # watched by a person: read its status about 20 times over its expected time, as
        # fal-client's and replicate's waiting loops do (they read more often still). With a
        # webhook on its way the end is the webhook's to tell: the reads stop once the job
        # runs and half its expected time has passed.
        interval = min(LOOK_MAX_INTERVAL, max(LOOK_MIN_INTERVAL, expected / 20))
        while not job.done:
            if (
                webhook
                and job.status is ltx2.JobStatus.RUNNING
                and time.monotonic() - started >= expected / 2
            ):
                return
            await asyncio.sleep(interval)
            with contextlib.suppress(ltx2.LTX2Error):
                await job.refresh()

    with bar:
        task = bar.add_task(label, total=100, status="submitted")
        helpers = [
            asyncio.create_task(watch()),
            asyncio.create_task(tick()),
            asyncio.create_task(look()),
        ]
        try:
            video = await job.result(timeout)
        except ltx2.LTX2Error:
            bar.update(task, status=f"[red]{describe_update(job.last_update)}")
            raise
        finally:
            for helper in helpers:
                helper.cancel()
            for helper in helpers:
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
        show(job.last_update)
        bar.update(task, completed=100, status=f"[green]{describe_update(job.last_update)}")
    return Waited(video, time.monotonic() - started, statuses)


async def download(
    video: ltx2.Video, path: str | os.PathLike[str], *, console: Console
) -> tuple[int, float]:
    """Save ``video`` to ``path`` with a download bar; return (bytes, seconds)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("[bold]downloading"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    started = time.monotonic()
    with bar:
        task = bar.add_task("download", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        size = await video.save(path, progress=progress)
        bar.update(task, completed=size, total=size)
    return size, time.monotonic() - started
