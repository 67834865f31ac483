"""``ltx2 demo``: one real generation against the in-process emulator, end to end.

What it shows, in public API only: a :class:`ltx2.WebhookReceiver` started on a free port, a
:class:`ltx2.Client` pointed at the emulator (``base_url``) that resolves jobs from webhooks,
a local image submitted by path (so the SDK uploads it where the provider wants uploads),
``job.updates()`` driving a progress display, and ``video.save(progress=...)``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.resources
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ltx2

from ._ui import check_out_path, download, wait_for_video

if TYPE_CHECKING:
    from ltx2.emulator import Emulator

__all__ = ["DEMO_PROMPT", "DEMO_PROVIDER_SECONDS", "demo"]

#: A camera move the emulator reads from the prompt ("dollies in" → dolly_in), as in the
#: seeds' example prompts ("The camera slowly dollies in toward her face", 001, 003).
DEMO_PROMPT = (
    "The camera slowly dollies in as soft morning light drifts across the scene "
    "and a light breeze stirs the air"
)
#: The emulated processing time in provider seconds (seed 000: "Estimated Processing Time:
#: 80 seconds"); times --time-scale it is the wall time the demo expects to wait.
DEMO_PROVIDER_SECONDS = 80.0
#: Rendering a clip is real work that the time scale does not shrink; allow plenty.
DEMO_TIMEOUT = 600.0


async def demo(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit code."""
    from rich.console import Console
    from rich.table import Table

    from ltx2.emulator import Emulator

    from ._media import contact_sheet, probe

    began = time.monotonic()
    out = Path(args.out)
    sheet = out.with_name(f"{out.stem}-frames.png")
    provider = ltx2.providers.normalize(args.provider)
    scale: float = args.time_scale
    err = Console(stderr=True)
    console = Console()

    with importlib.resources.as_file(
        importlib.resources.files("ltx2") / "assets" / "demo.jpg"
    ) as image:
        # Validated before anything starts: a bad --duration/--fps exits with code 2 here.
        request = ltx2.VideoRequest(
            image,
            DEMO_PROMPT,
            duration=args.duration,
            resolution=args.resolution,
            fps=args.fps,
        )
        check_out_path(out)
        if scale <= 0:
            raise ltx2.InvalidRequestError(
                f"time_scale: {scale} must be positive",
                field="time_scale",
                value=scale,
                allowed="> 0",
            )
        async with Emulator(
            time_scale=scale,
            host="127.0.0.1",
            port=0,
            processing_time=DEMO_PROVIDER_SECONDS,
            render="full",
        ) as emu:
            base_url = emu.provider_url(provider)
            receiver, options = emulator_receiver(emu, provider)
            await receiver.start("127.0.0.1", 0)
            try:
                err.print(
                    f"[dim]emulator at {emu.url}, webhook receiver at {receiver.public_url}, "
                    f"time scale {scale:g}[/dim]"
                )
                async with ltx2.Client(
                    provider,
                    api_key="demo-key",
                    base_url=base_url,
                    webhooks=receiver,
                    time_scale=scale,
                    **options,
                ) as client:
                    accepted = receiver.stats["accepted"]
                    job = await client.submit(request)
                    err.print(f"submitted {provider} job [bold]{job.id}[/bold]")
                    waited = await wait_for_video(
                        job,
                        console=err,
                        expected=DEMO_PROVIDER_SECONDS * scale,
                        timeout=DEMO_TIMEOUT,
                        note="awaiting webhook" if client.capabilities.webhooks else "polling",
                        webhook=client.capabilities.webhooks is not None,
                    )
                    by_webhook = receiver.stats["accepted"] > accepted
                    size, download_seconds = await download(waited.video, out, console=err)
            finally:
                await receiver.stop()

    info = await asyncio.to_thread(probe, out)
    await asyncio.to_thread(contact_sheet, out, sheet)

    table = Table(title="ltx2 demo", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("provider", f"{provider} (emulated at {base_url})")
    table.add_row("job id", job.id)
    table.add_row(
        "resolved by",
        "webhook"
        if by_webhook
        else "poll" + ("" if client.capabilities.webhooks else f" ({provider} has no webhooks)"),
    )
    table.add_row("statuses", " → ".join(waited.statuses))
    table.add_row(
        "queued → finished",
        f"{waited.seconds:.2f} s (emulated {DEMO_PROVIDER_SECONDS:g} s × {scale:g}; rendering "
        "runs alongside)",
    )
    table.add_row("download", f"{download_seconds:.2f} s")
    table.add_row("file", f"{out} ({size / 1e6:.2f} MB)")
    table.add_row("video", info.describe())
    table.add_row("audio", info.audio or "none")
    table.add_row("contact sheet", str(sheet))
    table.add_row("wall time", f"{time.monotonic() - began:.1f} s")
    console.print(table)
    return 0


def emulator_receiver(emu: Emulator, provider: str) -> tuple[ltx2.WebhookReceiver, dict[str, Any]]:
    """A webhook receiver for ``provider`` on the emulator, and the client's options: the
    emulator signs fal's webhooks with its own Ed25519 key and stands in for fal's storage."""
    if provider == "fal":
        receiver = ltx2.WebhookReceiver(fal_jwks_urls=[emu.fal_jwks_url])
        return receiver, {"storage_url": emu.fal_storage_url}
    return ltx2.WebhookReceiver(), {}
