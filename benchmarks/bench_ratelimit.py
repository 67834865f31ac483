"""Benchmark 4: rate-limit utilisation against the emulator's Eachlabs limits — the limits
the client is told, and limits it is not told and can only learn from 429s.

300 jobs (``client.gather(..., concurrency=50)``: more than the key may run, so the limits
decide) against the emulator enforcing per-key Eachlabs limits, everything scaled by
``--time-scale`` (the client gets the same ``time_scale``). Jobs take 1 s (provider time):
with 10 at a time the concurrency cap would allow ~600 creates a minute, so the *create
rate* is the binding limit — with Eachlabs' real ~80 s jobs it would be the concurrency cap
(10 per 80 s, 7.5 a minute), and this benchmark would measure nothing. Jobs resolve from
Eachlabs webhooks to a ``WebhookReceiver`` in the client's process, each confirmed by one
status read (the default). The emulator's limits are set apart from the client's, so that a
wrong limit shows as well as a buggy limiter:

- ``told``: the emulator enforces the seed's 100 creates/min and 10 concurrent (seed 000),
  and the client uses its defaults, which are the seed's. Target: zero 429s and ≥ 95 % of
  the allowed create rate.
- ``untold create limit``: the emulator allows only 60 creates/min; the client still
  believes the seed's 100. It can only learn the limit from the 429s' ``Retry-After``.
- ``told nothing``: the seed's limits at the emulator, ``Limits()`` (none) in the client.

For the last two the figures are reported, not held to a target, except that every job
must finish with exactly one create each (a 429 loses nothing and duplicates nothing).

- ``three replicas``: the seed's limits at the emulator and three client *processes* on the
  one key, each with its own receiver and a ``RedisStore`` on one redis-server (so the key's
  limits live in Redis, shared), each running a third of the jobs. Target: as ``told``.
  Skipped (reported as such) when no ``redis-server`` is installed.

Utilisation of a create limit of L per window: for every create i, the limit allows create
i+L one window (60 s) later at the earliest, so utilisation = mean over i of 60 s ÷ (time of
create i+L − time of create i), from the emulator's own create timestamps.

    python benchmarks/bench_ratelimit.py [--quick] [--plot docs/bench_ratelimit.png]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

import _common as common

import ltx2

PROVIDER = "eachlabs"
IMAGE = "https://example.com/cat.jpg"
WINDOW = 60.0  # seconds
TARGET = 0.95

#: name -> (the emulator's (creates per minute, concurrent), the client's Limits or None
#: for its defaults: the seed's 100 creates/min, 10 concurrent)
SCENARIOS: dict[str, tuple[tuple[int, int], ltx2.Limits | None]] = {
    "told": ((100, 10), None),
    "untold create limit": ((60, 10), None),
    "told nothing": ((100, 10), ltx2.Limits()),
}


def emulator_args(args: argparse.Namespace, creates: int, concurrent: int) -> list[str]:
    """The emulator of every scenario: Eachlabs' jobs of ``--processing-time`` provider
    seconds, its per-key limits set to ``creates``:``concurrent``, seeded, scaled."""
    return ["--time-scale", str(args.time_scale), "--seed", "3",
            "--limits", f"{creates}:{concurrent}",
            "--processing-time", f"eachlabs={args.processing_time}"]  # fmt: skip


def figures(
    name: str,
    *,
    limits: tuple[int, int],
    client_limits: str,
    jobs: int,
    videos: int,
    errors: list[BaseException],
    emulator: tuple[dict[str, Any], list[dict[str, Any]]],
    wall: float,
    scale: float,
    target: bool,
) -> dict[str, Any]:
    """One scenario's figures, from what the client got (``videos`` and the ``errors``
    the jobs that made none raised) and what the emulator saw (its stats and its jobs'
    create stamps). ``target``: held to the told target (0 x 429, >= 95 %), not only to
    losing nothing."""
    creates, _ = limits
    stats, at_emulator = emulator
    ok = videos
    kinds: dict[str, int] = {}
    for error in errors:
        kinds[type(error).__name__] = kinds.get(type(error).__name__, 0) + 1
    first_error = str(errors[0]) if errors else None
    created = sorted(j["created_at"] for j in at_emulator)
    window = WINDOW * scale
    gaps = [created[i + creates] - created[i] for i in range(len(created) - creates)]
    utilisation = statistics.fmean(window / g for g in gaps) if gaps else float("nan")
    nothing_lost = ok == jobs and len(at_emulator) == jobs
    result = {
        "scenario": name,
        "emulator_limits": list(limits),
        "client_limits": client_limits,
        "jobs": jobs,
        "videos": ok,
        "creates_at_emulator": len(at_emulator),
        "rate_limited_429": stats["rate_limited"],
        "utilisation": round(utilisation, 4),
        "worst_window_utilisation": round(window / min(gaps), 4) if gaps else None,
        "creates_per_min": round(creates * utilisation, 2),
        "limit_per_min": creates,
        "max_concurrent_seen": max(stats["max_concurrent_seen"].values()),
        "webhooks_acked": stats["webhooks_acked"],
        "status_requests": stats["status_requests"],
        "wall_seconds": round(wall, 2),
        "provider_seconds": round(wall / scale, 1),
        "nothing_lost": nothing_lost,
        "errors": kinds,
        "first_error": first_error,
        "met": nothing_lost
        and (not target or (stats["rate_limited"] == 0 and utilisation >= TARGET)),
        "create_times": [round((c - created[0]) / scale, 3) for c in created],
    }
    print(
        f"{name:>20}: {ok}/{jobs} videos, {len(at_emulator)} creates, "
        f"{result['rate_limited_429']} x 429, {result['creates_per_min']} creates/min of "
        f"{creates} ({utilisation:.1%}); at most {result['max_concurrent_seen']} running; "
        f"{result['provider_seconds']} provider s"
        + (f"; errors {kinds}, e.g. {first_error!r:.200}" if errors else ""),
        file=sys.stderr,
    )
    return result


async def run_scenario(args: argparse.Namespace, name: str) -> dict[str, Any]:
    (creates, concurrent), limits = SCENARIOS[name]
    scale, n = args.time_scale, args.jobs
    with common.start_emulator(emulator_args(args, creates, concurrent)) as emu:
        rx = ltx2.WebhookReceiver()
        await rx.start("127.0.0.1", 0)
        try:
            client = ltx2.Client(
                PROVIDER,
                api_key=common.API_KEY,
                base_url=emu.provider_url(PROVIDER),
                webhooks=rx,
                time_scale=scale,
                limits=limits.scaled(scale) if limits is not None else None,
            )
            requests = [ltx2.VideoRequest(image=IMAGE, prompt=f"job {i}") for i in range(n)]
            t0 = time.perf_counter()
            async with client:
                videos = await client.gather(
                    requests, concurrency=args.concurrency, return_exceptions=True
                )
            wall = time.perf_counter() - t0
        finally:
            await rx.stop()
        seen = emu.stats(PROVIDER), emu.jobs(PROVIDER)
    return figures(
        name, limits=(creates, concurrent),
        client_limits="the seed's (100, 10)" if limits is None else "none",
        jobs=n, videos=sum(1 for v in videos if isinstance(v, ltx2.Video)),
        errors=[v for v in videos if isinstance(v, BaseException)], emulator=seen, wall=wall,
        scale=scale,
        target=name == "told",
    )  # fmt: skip


REPLICAS = 3


async def replica(args: argparse.Namespace) -> None:
    """One of the replicas (run as a child process: ``--replica``): a client on a
    RedisStore with its own receiver, its share of the jobs; prints one JSON line."""
    store = ltx2.RedisStore(args.redis, prefix=args.prefix)
    rx = ltx2.WebhookReceiver(store=store)
    await rx.start("127.0.0.1", 0)
    try:
        client = ltx2.Client(
            PROVIDER, api_key=common.API_KEY, base_url=args.base_url, store=store,
            webhooks=rx, time_scale=args.time_scale,
        )  # fmt: skip
        requests = [
            ltx2.VideoRequest(image=IMAGE, prompt=f"{args.prefix} {args.replica} job {i}")
            for i in range(args.jobs)
        ]
        async with client:
            print("ready", flush=True)
            videos = await client.gather(
                requests, concurrency=args.concurrency, return_exceptions=True
            )
    finally:
        await rx.stop()
    ok = sum(1 for v in videos if isinstance(v, ltx2.Video))
    print(json.dumps({"videos": ok}), flush=True)


def _start_redis(folder: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", folder,
            "--save", "", "--appendonly", "no"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


async def run_replicas(args: argparse.Namespace) -> dict[str, Any]:
    """Three client processes on one key, sharing its limits through Redis."""
    creates, concurrent = 100, 10
    scale, n = args.time_scale, args.jobs
    share = [n // REPLICAS + (1 if i < n % REPLICAS else 0) for i in range(REPLICAS)]
    with (
        tempfile.TemporaryDirectory() as folder,
        common.start_emulator(emulator_args(args, creates, concurrent)) as emu,
    ):
        redis, url = _start_redis(folder)
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        children = []
        try:
            for i, jobs in enumerate(share):
                argv = [__file__, "--replica", str(i), "--redis", url,
                        "--prefix", prefix, "--base-url", emu.provider_url(PROVIDER),
                        "--jobs", str(jobs), "--time-scale", str(scale),
                        "--concurrency", str(args.concurrency)]  # fmt: skip
                children.append(await common.start_child(*argv))
            for child in children:
                await child.stdout.readline()  # "ready"
            t0 = time.perf_counter()
            videos = 0
            for i, child in enumerate(children):
                try:
                    videos += (await common.child_result(child, f"replica {i}"))["videos"]
                except RuntimeError as exc:  # reported as videos missing (its log says why)
                    print(exc, file=sys.stderr)
            wall = time.perf_counter() - t0
        finally:
            for child in children:
                if child.returncode is None:
                    child.kill()
                    await child.wait()
            redis.terminate()
            redis.wait(10)
        seen = emu.stats(PROVIDER), emu.jobs(PROVIDER)
    return figures(
        "three replicas", limits=(creates, concurrent),
        client_limits="the seed's (100, 10), shared in Redis by 3 processes",
        jobs=n, videos=videos, errors=[], emulator=seen, wall=wall, scale=scale, target=True,
    )  # fmt: skip


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    common.pin(common.CLIENT_CPU)
    scenarios = {name: await run_scenario(args, name) for name in SCENARIOS}
    if shutil.which("redis-server") is not None:
        scenarios["three replicas"] = await run_replicas(args)
    else:
        print("three replicas: skipped (no redis-server installed)", file=sys.stderr)
    told = scenarios["told"]
    return {
        "benchmark": "ratelimit",
        "provider": PROVIDER,
        "jobs": args.jobs,
        "time_scale": args.time_scale,
        "processing_time": args.processing_time,
        "concurrency_asked": args.concurrency,
        "scenarios": scenarios,
        # The told scenario's figures at the top level (the target's).
        "rate_limited_429": told["rate_limited_429"],
        "utilisation": told["utilisation"],
        "creates_per_min": told["creates_per_min"],
        "limit_per_min": told["limit_per_min"],
        "target_429": 0,
        "target_utilisation": TARGET,
        "met": all(s["met"] for s in scenarios.values()),
        "machine": common.machine(),
    }


def plot(result: dict[str, Any], path: str) -> None:
    plt = common.pyplot()
    scenarios = result["scenarios"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    ax1, ax2 = axes
    for i, (name, s) in enumerate(scenarios.items()):
        times = s["create_times"]
        limit = s["limit_per_min"]
        color = f"C{i}"
        ax1.step(times, range(1, len(times) + 1), where="post", color=color,
                 label=f"{name}: {s['rate_limited_429']} × 429")  # fmt: skip
        end = max(times) + 5
        xs = [k * 0.5 for k in range(int(end / 0.5) + 1)]
        ax1.plot(xs, [min(len(times), limit * (int(x // WINDOW) + 1)) for x in xs], ls=":",
                 lw=1, color=color)  # fmt: skip
        gaps = [times[k + limit] - times[k] for k in range(len(times) - limit)]
        ax2.plot(range(1, len(gaps) + 1), gaps, ".", ms=3, color=color,
                 label=f"{name}: {s['utilisation']:.1%} of {limit}/min")  # fmt: skip
    ax1.set_xlabel("seconds since the first create (provider time)")
    ax1.set_ylabel("creates accepted (emulator clock)")
    ax1.set_title("Creates over time (dotted: the most each limit allows)")
    ax1.legend(fontsize=8, loc="lower right")
    ax2.axhline(WINDOW, color="k", ls="--", lw=1, label="the limit: one window, 60 s")
    ax2.set_xlabel("create i")
    ax2.set_ylabel("seconds from create i to create i + L")
    ax2.set_title("Sliding-window gaps (ideal: exactly 60 s)")
    ax2.legend(fontsize=8)
    t = scenarios["told"]
    fig.suptitle(
        f"Rate limits, {result['jobs']} jobs: told the limit, {t['utilisation']:.1%} of 100 "
        f"creates/min (target ≥ 95 %), {t['rate_limited_429']} × 429 (target 0)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--jobs", type=int, default=None)
    p.add_argument("--time-scale", type=float, default=None)
    p.add_argument("--processing-time", type=float, default=1.0, help="provider seconds")
    p.add_argument("--concurrency", type=int, default=50)
    # A child process of the three-replica scenario (see run_replicas).
    p.add_argument("--replica", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--redis", help=argparse.SUPPRESS)
    p.add_argument("--prefix", help=argparse.SUPPRESS)
    p.add_argument("--base-url", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.replica is not None:
        asyncio.run(replica(args))
        return
    args.jobs = args.jobs or (200 if args.quick else 300)
    args.time_scale = args.time_scale or (0.02 if args.quick else 0.05)
    result = asyncio.run(bench(args))
    t = result["scenarios"]["told"]
    summary = "; ".join(
        f"{name}: {s['rate_limited_429']} x 429, {s['utilisation']:.1%} of {s['limit_per_min']}"
        f"/min, {s['videos']}/{s['jobs']} videos"
        for name, s in result["scenarios"].items()
    )
    summary = (
        f"rate limits: {summary}; told: target 0 x 429 and >= 95 %: "
        f"{'met' if t['met'] else 'MISSED'}"
    )
    common.finish(result, summary, plot, args.plot)


if __name__ == "__main__":
    main()
