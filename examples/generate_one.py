"""Generate one video: against a real provider (key in its environment variable), or, with
--emulator, against the local emulator.

    python examples/generate_one.py cat.jpg "The cat yawns" --provider fal
    python examples/generate_one.py cat.jpg "The camera pans left" --emulator
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator

import ltx2


@contextlib.asynccontextmanager
async def make_client(provider: str, emulator: bool) -> AsyncIterator[ltx2.Client]:
    if not emulator:
        async with ltx2.Client(provider) as client:
            yield client
        return
    from ltx2.emulator import Emulator

    async with (
        Emulator(time_scale=0.05) as emu,
        ltx2.Client(
            provider,
            api_key="emulator",
            base_url=emu.provider_url(provider),
            time_scale=0.05,
        ) as client,
    ):
        yield client


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("image")
    parser.add_argument("prompt")
    parser.add_argument("--provider", default="eachlabs", choices=ltx2.PROVIDERS)
    parser.add_argument("--out", default="video.mp4")
    parser.add_argument("--emulator", action="store_true")
    args = parser.parse_args()
    async with make_client(args.provider, args.emulator) as client:
        job = await client.submit(image=args.image, prompt=args.prompt)
        print(f"submitted {job.provider} job {job.id}")
        async for update in job.updates():
            print(f"  {update.status.value} ({update.raw})")
        video = await job
        size = await video.save(args.out)
        print(f"saved {args.out} ({size} bytes) from {video.url}")


if __name__ == "__main__":
    asyncio.run(main())
