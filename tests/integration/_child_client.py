"""A client process for the restart and replica tests (run with ``sys.executable``).

``hang``: submit N jobs on a :class:`ltx2.SQLiteStore`, print ``submitted N`` once every
submit returned, then wait for ever (the test SIGKILLs it).

``replica``: one replica of a service: a client on a :class:`ltx2.RedisStore` whose webhooks
go to a receiver in another process (``WebhookReceiver(public_url=...)``, never started here).
It submits N jobs, awaits them all and writes a JSON report: each job's id, status and video,
and every HTTP request this process made (so the test can tell which process confirmed what).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp

import ltx2

#: Stub-rendering emulators take any https URL as a reachable image without fetching it.
IMAGE = "https://images.example.com/cat.jpg"


async def hang(args: argparse.Namespace) -> None:
    store = ltx2.SQLiteStore(args.sqlite)
    client = ltx2.Client(
        args.provider, api_key="child-key", base_url=args.base_url, store=store,
        time_scale=args.time_scale,
    )  # fmt: skip
    async with client:
        for i in range(args.jobs):
            await client.submit(image=IMAGE, prompt=f"job {i}")
        print(f"submitted {args.jobs}", flush=True)
        await asyncio.Event().wait()  # until SIGKILL


async def replica(args: argparse.Namespace) -> None:
    requests: list[list[str]] = []

    async def on_request_start(
        session: aiohttp.ClientSession,
        ctx: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        requests.append([params.method, params.url.path])

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    # Deliveries reach a receiver in another process; this one only builds URLs from it.
    webhooks = ltx2.WebhookReceiver(args.webhook_url)
    store = ltx2.RedisStore(args.redis, prefix=args.prefix)
    # The webhook is the only way to resolve: the safety-net poll is far in the future.
    poll = ltx2.PollPolicy(webhook_grace=1000.0)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        client = ltx2.Client(
            args.provider, api_key=args.api_key, base_url=args.base_url, store=store,
            webhooks=webhooks, poll=poll, time_scale=args.time_scale, session=session,
        )  # fmt: skip
        async with client:
            jobs = [
                await client.submit(image=IMAGE, prompt=f"{args.name} job {i}")
                for i in range(args.jobs)
            ]
            print(f"submitted {len(jobs)}", flush=True)
            videos = await asyncio.wait_for(asyncio.gather(*jobs), args.timeout)
    report: dict[str, Any] = {
        "name": args.name,
        "jobs": [
            {"id": job.id, "status": job.status.value, "video": video.url}
            for job, video in zip(jobs, videos, strict=True)
        ],
        "requests": requests,
    }
    Path(args.out).write_text(json.dumps(report))
    print("done", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("hang", "replica"))
    parser.add_argument("--provider", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--sqlite")
    parser.add_argument("--redis")
    parser.add_argument("--prefix", default="ltx2")
    parser.add_argument("--webhook-url")
    parser.add_argument("--api-key", default="child-key")
    parser.add_argument("--name", default="replica")
    parser.add_argument("--out")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    asyncio.run(hang(args) if args.mode == "hang" else replica(args))


if __name__ == "__main__":
    main()
