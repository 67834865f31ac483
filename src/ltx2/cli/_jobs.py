"""``ltx2 status`` and ``ltx2 cancel``: one request about an existing job, by its id.

Plain output (no rich), so they work with the base install and are easy to parse:
``status: succeeded`` and, once done, ``video: https://...``.
"""

from __future__ import annotations

import argparse
import contextlib

import ltx2

from ._connect import open_client
from ._ui import describe_update

__all__ = ["cancel", "status"]


async def status(args: argparse.Namespace) -> int:
    """Print the job's status (one status request; plus the result read where the provider
    keeps the video there). Exit 0 whatever the job's state: the status was read."""
    async with contextlib.AsyncExitStack() as stack:
        client = (await open_client(args, stack, in_process=False)).client
        job = client.job(args.job_id)
        state = await job.refresh()
        update = job.last_update
    print(f"job: {args.provider}:{job.id}")
    print(f"status: {state.value}")
    print(f"detail: {describe_update(update)}")
    if state is ltx2.JobStatus.SUCCEEDED and update.video_url:
        print(f"video: {update.video_url}")
    return 0


async def cancel(args: argparse.Namespace) -> int:
    """Ask the provider to cancel the job. :class:`ltx2.UnsupportedError` (no cancel at this
    provider) and API errors (e.g. RunComfy refusing a job that already started) exit 1."""
    async with contextlib.AsyncExitStack() as stack:
        client = (await open_client(args, stack, in_process=False)).client
        job = client.job(args.job_id)
        await job.cancel()
    print(f"cancel requested: {args.provider}:{job.id}")
    return 0
