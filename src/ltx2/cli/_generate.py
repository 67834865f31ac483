"""``ltx2 generate``: one real generation at a provider, with progress, saved to a file."""

from __future__ import annotations

import argparse
import contextlib

import ltx2

from ._ui import check_out_path, download, wait_for_video

__all__ = ["generate", "parse_listen"]


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) → ``(host, port)``; InvalidRequestError if not."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ltx2.InvalidRequestError(
            f"listen: {value!r} is not HOST:PORT",
            field="listen",
            value=value,
            allowed="HOST:PORT, e.g. 127.0.0.1:8080",
        )
    return host, int(port)


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
    # With --webhook-url the job resolves from webhooks sent to that public URL, which must
    # forward to --listen; without it the SDK polls.
    receiver = ltx2.WebhookReceiver(public_url=args.webhook_url) if args.webhook_url else None
    listen = parse_listen(args.listen) if receiver is not None else None
    # The client is made first: no key (AuthenticationError, exit 1) binds no port.
    client = ltx2.Client(args.provider, base_url=args.base_url, webhooks=receiver)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(client)
        if receiver is not None and listen is not None:
            await receiver.start(*listen)
            stack.push_async_callback(receiver.stop)
            err.print(f"webhook receiver on {listen[0]}:{listen[1]} for {receiver.public_url}")
        job = await client.submit(request)
        err.print(f"submitted {args.provider} job [bold]{job.id}[/bold]")
        low, high = client.capabilities.expected_seconds
        try:
            waited = await wait_for_video(
                job,
                console=err,
                expected=(low + high) / 2,
                timeout=args.timeout,
                note="awaiting webhook" if receiver is not None else None,
            )
        except ltx2.JobTimeoutError:
            err.print(
                f"the job keeps running; check it with: ltx2 status {job.id} "
                f"--provider {args.provider}"
            )
            raise
        size, seconds = await download(waited.video, args.out, console=err)
    print(
        f"{args.out}: {size / 1e6:.2f} MB; {args.provider} job {job.id} took {waited.seconds:.1f} s"
        f", download {seconds:.1f} s"
    )
    return 0
