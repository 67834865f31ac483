"""A client process for the restart and replica tests (run with ``sys.executable``).

``hang``: submit N jobs on a :class:`ltx2.SQLiteStore`, print ``submitted N`` once every
submit returned, then wait for ever (the test SIGKILLs it).

``replica``: one replica of a service: a client on a :class:`ltx2.RedisStore` whose webhooks
go to a receiver in another process (``WebhookReceiver(public_url=...)``, never started here).
It submits N jobs, awaits them all and writes a JSON report: each job's id, status and video,
and every HTTP request this process made (so the test can tell which process confirmed what).

``fanout``: one replica of a service whose key's limits are shared through Redis: a client
on a :class:`ltx2.RedisStore` with its own receiver, running ``gather`` over N jobs with more
concurrency than the key allows; prints ``done K`` as jobs finish and writes a JSON report
(each job's id and status, and the 429s this process saw).
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


async def fanout(args: argparse.Namespace) -> None:
    statuses: list[int] = []

    async def on_request_end(
        session: aiohttp.ClientSession,
        ctx: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        statuses.append(params.response.status)

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_request_end)
    store = ltx2.RedisStore(args.redis, prefix=args.prefix)
    receiver = ltx2.WebhookReceiver(store=store)
    await receiver.start("127.0.0.1", 0)

    def progress(done: int, total: int | None, job: ltx2.Job) -> None:
        print(f"done {done} {job.id}", flush=True)

    requests = [
        ltx2.VideoRequest(image=IMAGE, prompt=f"{args.name} job {i}") for i in range(args.jobs)
    ]
    try:
        async with aiohttp.ClientSession(trace_configs=[trace]) as session:
            client = ltx2.Client(
                args.provider, api_key=args.api_key, base_url=args.base_url, store=store,
                webhooks=receiver, time_scale=args.time_scale, session=session,
            )  # fmt: skip
            async with client:
                print("ready", flush=True)
                videos = await asyncio.wait_for(
                    client.gather(requests, concurrency=args.concurrency, on_progress=progress),
                    args.timeout,
                )
    finally:
        await receiver.stop()
    report = {
        "name": args.name,
        "jobs": [video.job_id for video in videos],
        "rate_limited": statuses.count(429),
    }
    Path(args.out).write_text(json.dumps(report))
    print("finished", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("hang", "replica", "fanout"))
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
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    modes = {"hang": hang, "replica": replica, "fanout": fanout}
    asyncio.run(modes[args.mode](args))


if __name__ == "__main__":
    main()
