"""``ltx2 generate``: one real generation at a provider, with progress, saved to a file.

Stopped by Ctrl-C or SIGTERM, it does not leave a paid job behind unseen: where the provider
can cancel, the job is cancelled there (and the provider's status read back); where it cannot,
or the cancel fails, it prints the job's id and the exact ``ltx2 status`` command that follows
it. A signal while the create request is in flight waits for its reply first, so the job's id
is known; a second signal stops at once. Exit code 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import TYPE_CHECKING

import ltx2

from ._connect import Connection, open_client, parse_listen, status_command
from ._signals import Interrupts, exit_code
from ._ui import check_out_path, download, wait_for_video

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["CANCEL_GRACE", "generate", "parse_listen"]

#: How long cancelling the job at the provider may take after a signal, in seconds.
CANCEL_GRACE = 15.0


def _say(message: str) -> None:
    # Plain text, never wrapped: the status command must be copyable as printed.
    print(f"ltx2: {message}", file=sys.stderr, flush=True)


async def generate(args: argparse.Namespace) -> int:
    """Submit, wait with progress, download; returns the exit code."""
    from rich.console import Console

    err = Console(stderr=True)
    # Every field is checked here, before a key is looked up or a request sent (exit 2).
    request = ltx2.VideoRequest(
        args.image,
        args.prompt,
        duration=args.duration,
        resolution=args.resolution,
        fps=args.fps,
        generate_audio=not args.no_audio,
        camera_motion=args.camera_motion,
    )
    check_out_path(args.out)
    if args.timeout is not None and args.timeout <= 0:
        raise ltx2.InvalidRequestError(
            f"timeout: {args.timeout} must be positive",
            field="timeout",
            value=args.timeout,
            allowed="> 0",
        )
    if args.webhook_url:
        parse_listen(args.listen)
    async with contextlib.AsyncExitStack() as stack:
        # With --webhook-url the job resolves from webhooks sent to that public URL, which
        # must forward to --listen (with --emulator: a receiver on a free loopback port);
        # without it the SDK polls.
        conn = await open_client(args, stack, err, in_process=True, webhooks=True)
        with Interrupts() as stop:
            try:
                return await _generate(args, conn, request, stop, err)
            except asyncio.CancelledError:
                if stop.signum is None:
                    raise
                _say("interrupted again: stopped at once")
                return exit_code(stop.signum)


async def _generate(
    args: argparse.Namespace,
    conn: Connection,
    request: ltx2.VideoRequest,
    stop: Interrupts,
    err: Console,
) -> int:
    client = conn.client
    submitting = asyncio.create_task(client.submit(request))
    if await stop.first(submitting):
        # The create may have reached the provider: wait for its reply, so that the job can
        # be cancelled or at least named. A second signal stops waiting (and then submit
        # itself cancels the job where it can, once its reply comes).
        _say("interrupted: waiting for the reply to the submit (press Ctrl-C again to stop now)")
        job = await submitting
        return await _interrupted(args, conn, job, stop)
    job = submitting.result()
    err.print(f"submitted {args.provider} job [bold]{job.id}[/bold]", highlight=False)
    low, high = client.capabilities.expected_seconds
    webhook = conn.receiver is not None and client.capabilities.webhooks is not None
    waiting = asyncio.create_task(
        wait_for_video(
            job,
            console=err,
            expected=(low + high) / 2 * conn.time_scale,
            timeout=args.timeout,
            note="awaiting webhook" if webhook else None,
            webhook=webhook,
        )
    )
    if await stop.first(waiting):
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError, ltx2.LTX2Error):
            await waiting
        return await _interrupted(args, conn, job, stop)
    try:
        waited = waiting.result()
    except ltx2.JobTimeoutError:
        _say(
            "the job keeps running; follow it with: "
            + status_command(args, job.id, in_process=conn.in_process)
        )
        raise
    downloading = asyncio.create_task(download(waited.video, args.out, console=err))
    if await stop.first(downloading):
        downloading.cancel()
        with contextlib.suppress(asyncio.CancelledError, ltx2.LTX2Error, OSError):
            await downloading
        _say(
            f"interrupted during the download; {args.provider} job {job.id} succeeded, "
            f"nothing was written to {args.out}"
            + (
                ""
                if conn.in_process
                else "; its video URL is printed by: "
                + status_command(args, job.id, in_process=False)
            )
        )
        assert stop.signum is not None
        return exit_code(stop.signum)
    size, seconds = downloading.result()
    print(
        f"{args.out}: {size / 1e6:.2f} MB; {args.provider} job {job.id} took {waited.seconds:.1f} s"
        f", download {seconds:.1f} s"
    )
    return 0


async def _interrupted(
    args: argparse.Namespace, conn: Connection, job: ltx2.Job, stop: Interrupts
) -> int:
    """After a signal: cancel the job where the provider can, else say how to follow it."""
    assert stop.signum is not None
    code = exit_code(stop.signum)
    client = conn.client
    name = f"{args.provider} job {job.id}"
    follow = status_command(args, job.id, in_process=conn.in_process)
    gone = " (the emulator ran in this command and stopped with it)" if conn.in_process else ""
    if job.done:
        _say(f"interrupted; {name} had already ended: {job.status.value}")
        return code
    if not client.capabilities.cancel:
        _say(
            f"interrupted; {args.provider} cannot cancel a job, so {name} keeps running (and "
            f"is billed). Follow it with: {follow}{gone}"
        )
        return code
    try:
        async with asyncio.timeout(CANCEL_GRACE):
            await job.cancel()
            state = await job.refresh()
    except (ltx2.LTX2Error, TimeoutError) as exc:
        why = str(exc) or f"no answer within {CANCEL_GRACE:g} s"
        _say(
            f"interrupted; cancelling {name} failed ({why}): it may still be running. "
            f"Follow it with: {follow}{gone}"
        )
        return code
    if state is ltx2.JobStatus.CANCELLED:
        _say(f"interrupted; cancelled {name} at {args.provider}")
    else:
        _say(
            f"interrupted; asked {args.provider} to cancel {name}, which is still "
            f"{state.value}. Follow it with: {follow}{gone}"
        )
    return code
