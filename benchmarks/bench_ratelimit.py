"""Benchmark 4: rate-limit utilisation against the emulator's Eachlabs limits.

300 jobs (``client.gather(..., concurrency=50)``: more than the key may run, so the client's
own limiter decides) against the emulator enforcing Eachlabs' per-key limits (seed 000: 100
creates per minute, 10 concurrent predictions), everything scaled by ``--time-scale`` (the
client gets the same ``time_scale``). Jobs take 1 s (provider time): with 10 at a time the
concurrency cap would allow ~600 creates a minute, so the *create rate* is the binding limit
— with Eachlabs' real ~80 s jobs it would be the concurrency cap (10 per 80 s, 7.5 a
minute), and this benchmark would measure nothing. Jobs resolve from Eachlabs webhooks to a
``WebhookReceiver`` in the client's process, each confirmed by one status read (the default).

Figures: the 429s the emulator sent (target 0), and the utilisation of the create limit:
for every create i, the limit allows create i+100 one window (60 s) later at the earliest,
so utilisation = mean over i of 60 s ÷ (time of create i+100 − time of create i), from the
emulator's own create timestamps (target ≥ 95 %). ``creates/min`` = 100 × that.

    python benchmarks/bench_ratelimit.py [--quick] [--plot docs/bench_ratelimit.png]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import _common as common

import ltx2

PROVIDER = "eachlabs"
IMAGE = "https://example.com/cat.jpg"
LIMIT = 100  # creates per window (seed 000)
WINDOW = 60.0  # seconds
CONCURRENT = 10


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    common.pin(common.CLIENT_CPU)
    scale, n = args.time_scale, args.jobs
    emu_args = ["--time-scale", str(scale), "--seed", "3",
                "--processing-time", f"eachlabs={args.processing_time}"]  # fmt: skip
    with common.start_emulator(emu_args) as emu:
        rx = ltx2.WebhookReceiver()
        await rx.start("127.0.0.1", 0)
        try:
            client = ltx2.Client(
                PROVIDER,
                api_key=common.API_KEY,
                base_url=emu.provider_url(PROVIDER),
                webhooks=rx,
                time_scale=scale,
            )
            requests = [ltx2.VideoRequest(image=IMAGE, prompt=f"job {i}") for i in range(n)]
            t0 = time.perf_counter()
            async with client:
                videos = await client.gather(requests, concurrency=args.concurrency)
            wall = time.perf_counter() - t0
        finally:
            await rx.stop()
        stats = emu.stats(PROVIDER)
        jobs = emu.jobs(PROVIDER)
    if len(videos) != n or len(jobs) != n:
        raise RuntimeError(f"{len(videos)} videos, {len(jobs)} jobs at the emulator, for {n}")
    created = sorted(j["created_at"] for j in jobs)
    window = WINDOW * scale
    gaps = [created[i + LIMIT] - created[i] for i in range(n - LIMIT)]
    utilisation = statistics.fmean(window / g for g in gaps)
    result = {
        "benchmark": "ratelimit",
        "provider": PROVIDER,
        "jobs": n,
        "time_scale": scale,
        "processing_time": args.processing_time,
        "concurrency_asked": args.concurrency,
        "rate_limited_429": stats["rate_limited"],
        "target_429": 0,
        "utilisation": round(utilisation, 4),
        "worst_window_utilisation": round(window / min(gaps), 4),
        "creates_per_min": round(LIMIT * utilisation, 2),
        "limit_per_min": LIMIT,
        "target_utilisation": 0.95,
        "met": stats["rate_limited"] == 0 and utilisation >= 0.95,
        "max_concurrent_seen": max(stats["max_concurrent_seen"].values()),
        "webhooks_acked": stats["webhooks_acked"],
        "status_requests": stats["status_requests"],
        "wall_seconds": round(wall, 2),
        "provider_seconds": round(wall / scale, 1),
        "create_times": [round((c - created[0]) / scale, 3) for c in created],
        "machine": common.machine(),
    }
    return result


def plot(result: dict[str, Any], path: str) -> None:
    plt = common.pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    times = result["create_times"]
    n = len(times)
    ax1.step(times, range(1, n + 1), where="post", label="creates accepted (emulator clock)")
    end = max(times) + 5
    xs = [i * 0.5 for i in range(int(end / 0.5) + 1)]
    ax1.plot(xs, [min(n, LIMIT * (int(x // WINDOW) + 1)) for x in xs], "k--", lw=1,
             label="most the limit allows (100 per 60 s)")  # fmt: skip
    ax1.set_xlabel("seconds since the first create (provider time)")
    ax1.set_ylabel("creates")
    ax1.set_title(f"{n} jobs, {result['rate_limited_429']} × 429")
    ax1.legend(fontsize=8, loc="lower right")
    gaps = [times[i + LIMIT] - times[i] for i in range(n - LIMIT)]
    ax2.plot(range(1, len(gaps) + 1), gaps, ".", ms=3)
    ax2.axhline(WINDOW, color="k", ls="--", lw=1, label="the limit: 60 s")
    ax2.set_xlabel("create i")
    ax2.set_ylabel("seconds from create i to create i+100")
    ax2.set_ylim(WINDOW * 0.9, max(gaps) * 1.05)
    ax2.set_title("Sliding-window gaps (ideal: exactly 60 s)")
    ax2.legend(fontsize=8)
    fig.suptitle(
        f"Rate limits: utilisation {result['utilisation']:.1%} of 100 creates/min "
        f"(target ≥ 95 %), 429s: {result['rate_limited_429']} (target 0)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--jobs", type=int, default=300)
    p.add_argument("--time-scale", type=float, default=None)
    p.add_argument("--processing-time", type=float, default=1.0, help="provider seconds")
    p.add_argument("--concurrency", type=int, default=50)
    args = p.parse_args()
    args.time_scale = args.time_scale or (0.02 if args.quick else 0.05)
    result = asyncio.run(bench(args))
    summary = (
        f"rate limits: {result['jobs']} jobs in {result['wall_seconds']} s "
        f"({result['provider_seconds']} provider s); 429s {result['rate_limited_429']} "
        f"(target 0); utilisation {result['utilisation']:.1%} = {result['creates_per_min']} "
        f"creates/min (target >= 95 %); at most {result['max_concurrent_seen']} running"
    )
    common.finish(result, summary, plot, args.plot)


if __name__ == "__main__":
    main()
