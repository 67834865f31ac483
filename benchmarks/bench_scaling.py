"""Benchmark 6: the scaling curve — client CPU per job and memory per pending job at 100,
1,000, 10,000 and 50,000 pending jobs.

CPU: for each N, a fresh client process runs ``client.gather`` over N RunComfy jobs with N in
flight against the emulator (its own process), where every job takes P seconds, P long
enough that all N are created before the first finishes (so N jobs are pending at once: the
emulator's own create and finish stamps confirm it, ``peak_pending``). The poll schedule is
``PollPolicy(first=P + 1 s)``: each job gets exactly one status read, then its result, so
the work per job is the same at every N and only the bookkeeping around it (the poller's
schedule, the store, the limiter, the fan-out) can make it grow. The figure is the client
process's CPU during the ``gather`` ÷ N, after a warm-up through the same aiohttp session
that opens its connections (up to 256, as ltx2's pool): opening them is paid once per client,
and spread over N jobs it would make small N look dearer by a cost that does not grow.

Memory: the slope of traced memory (``tracemalloc``) over N, least squares over six sizes
from N/2 to N pending jobs, in a fresh process (see ``_common.pending_memory``).

Target (DESIGN.md): both flat within ±20 % from 100 to 50,000 (every point within 20 % of
the median of the four), and memory under 4 KiB per pending job at 10,000 and 50,000.

    python benchmarks/bench_scaling.py [--quick] [--plot docs/bench_scaling.png]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

import _common as common
import aiohttp

import ltx2

PROVIDER = "runcomfy"
IMAGE = "https://example.com/cat.jpg"
FLAT = 0.20
MEMORY_TARGET = 4096
SIZES = (100, 1_000, 10_000, 50_000)
#: ltx2's own connection pool (``TCPConnector(limit=256)`` in the transport).
CONNECTIONS = 256


def processing_seconds(n: int) -> float:
    """Long enough that N jobs are all created before the first one finishes."""
    return 2.0 + n * 0.004


async def cpu_run(base: str, n: int, processing: float) -> dict[str, Any]:
    """In the child: warm up, then ``gather`` N jobs with N in flight; CPU ÷ N.

    The warm-up runs GMI Cloud jobs (instant here) through the same aiohttp session, as many
    at once as the session will open connections (256, like ltx2's own), so that opening
    them — a cost paid once per client, not per job — is not spread over the N jobs."""
    gmi = base.rsplit("/", 1)[0] + "/gmicloud"
    timeout = aiohttp.ClientTimeout(total=300, connect=30, sock_read=120)
    connector = aiohttp.TCPConnector(limit=CONNECTIONS, enable_cleanup_closed=True)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        async with ltx2.Client(
            "gmicloud",
            api_key=common.API_KEY,
            base_url=gmi,
            poll=ltx2.PollPolicy(first=0.0),
            session=session,
        ) as warm:
            warm_up = [ltx2.VideoRequest(image=IMAGE, prompt="warm-up")] * min(n, CONNECTIONS)
            await warm.gather(warm_up, concurrency=CONNECTIONS)
        poll = ltx2.PollPolicy(first=processing + 1.0)
        requests = [ltx2.VideoRequest(image=IMAGE, prompt=f"job {i}") for i in range(n)]
        async with ltx2.Client(
            PROVIDER, api_key=common.API_KEY, base_url=base, poll=poll, session=session
        ) as client:
            cpu0, t0 = time.process_time(), time.perf_counter()
            videos = await client.gather(requests, concurrency=n)
            wall = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
    if sum(1 for v in videos if v.url) != n:
        raise RuntimeError(f"{n} jobs: not every job has a video")
    return {"cpu_ms_per_job": cpu / n * 1e3, "wall": wall}


def peak_pending(jobs: list[dict[str, Any]]) -> int:
    """The most jobs unfinished at once, from the emulator's create and finish stamps."""
    events = sorted([(j["created_at"], 1) for j in jobs] + [(j["finished_at"], -1) for j in jobs])
    peak = level = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


async def one_size(n: int) -> dict[str, Any]:
    processing = processing_seconds(n)
    emu_args = ["--no-limits", "--processing-time", f"{PROVIDER}={processing},gmicloud=0"]
    with common.start_emulator(emu_args) as emu:
        base = emu.provider_url(PROVIDER)
        cpu = await common.run_child(
            __file__, "--cpu-child", str(n), "--base", base, "--processing", str(processing),
            what=f"CPU run at {n}",
        )  # fmt: skip
        jobs = emu.jobs(PROVIDER)
        stats = emu.stats(PROVIDER)
    with common.start_emulator(["--no-limits", "--processing-time", "36000"]) as emu:
        memory = await common.pending_memory_in_child(
            PROVIDER, emu.provider_url(PROVIDER), common.memory_sizes(n), "traced"
        )
    requests = sum(stats[k] for k in ("create_attempts", "status_requests", "result_requests"))
    row = {
        "pending": n,
        "cpu_ms_per_job": round(cpu["cpu_ms_per_job"], 4),
        "wall": round(cpu["wall"], 2),
        "processing_seconds": processing,
        "peak_pending": peak_pending(jobs),
        "requests_per_job": round(requests / n, 3),
        "bytes_per_pending_job": round(memory["bytes_per_job"]),
        "memory_readings": memory["readings"],
    }
    print(
        f"{n:>6} pending: {row['cpu_ms_per_job']:.3f} ms CPU/job ({row['wall']:.1f} s wall, "
        f"peak {row['peak_pending']} pending at the emulator, {row['requests_per_job']} "
        f"requests/job); {row['bytes_per_pending_job']} B per pending job",
        file=sys.stderr,
    )
    return row


def flatness(values: list[float]) -> float:
    """The largest deviation from the median, as a fraction of it."""
    mid = statistics.median(values)
    return max(abs(v - mid) / mid for v in values)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    common.pin(common.CLIENT_CPU)
    rows = [await one_size(n) for n in args.sizes]
    cpu_dev = flatness([r["cpu_ms_per_job"] for r in rows])
    mem_dev = flatness([r["bytes_per_pending_job"] for r in rows])
    big = [r for r in rows if r["pending"] >= 10_000] or rows[-1:]
    memory_met = all(r["bytes_per_pending_job"] < MEMORY_TARGET for r in big)
    all_pending = all(r["peak_pending"] >= r["pending"] for r in rows)
    return {
        "benchmark": "scaling",
        "provider": PROVIDER,
        "sizes": list(args.sizes),
        "rows": rows,
        "cpu_deviation": round(cpu_dev, 3),
        "memory_deviation": round(mem_dev, 3),
        "target_deviation": FLAT,
        "cpu_flat": cpu_dev <= FLAT,
        "memory_flat": mem_dev <= FLAT,
        "memory_target_bytes": MEMORY_TARGET,
        "memory_met": memory_met,
        "all_pending_at_once": all_pending,
        "met": cpu_dev <= FLAT and mem_dev <= FLAT and memory_met,
        "machine": common.machine(),
    }


def plot(result: dict[str, Any], path: str) -> None:
    plt = common.pyplot()
    rows = result["rows"]
    xs = [r["pending"] for r in rows]
    cpu = [r["cpu_ms_per_job"] for r in rows]
    mem = [r["bytes_per_pending_job"] / 1024 for r in rows]
    fig, ax1 = plt.subplots(figsize=(8, 4.6))
    ax2 = ax1.twinx()
    ax1.plot(xs, cpu, "o-", color="C0", label="client CPU ms per job")
    ax2.plot(xs, mem, "s-", color="C1", label="KiB per pending job (tracemalloc slope)")
    for axis, values, color in ((ax1, cpu, "C0"), (ax2, mem, "C1")):
        mid = statistics.median(values)
        axis.axhspan(mid * (1 - FLAT), mid * (1 + FLAT), color=color, alpha=0.08)
        axis.set_ylim(0, max(values) * 1.5)
    ax2.axhline(MEMORY_TARGET / 1024, color="C1", ls="--", lw=1, label="memory target 4 KiB")
    ax1.set_xscale("log")
    ax1.set_xlabel("jobs pending at once (log)")
    ax1.set_ylabel("client CPU ms per job", color="C0")
    ax2.set_ylabel("KiB per pending job", color="C1")
    lines = ax1.get_legend_handles_labels()
    more = ax2.get_legend_handles_labels()
    ax1.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="lower left")
    fig.suptitle(
        f"Scaling: CPU within ±{result['cpu_deviation']:.0%}, memory within "
        f"±{result['memory_deviation']:.0%} of their medians (target ±{FLAT:.0%}; shaded)",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=None)
    p.add_argument("--cpu-child", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--base", help=argparse.SUPPRESS)
    p.add_argument("--processing", type=float, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.cpu_child is not None:
        common.pin(common.CLIENT_CPU)
        common.emit(asyncio.run(cpu_run(args.base, args.cpu_child, args.processing)))
        return
    args.sizes = args.sizes or ([100, 500, 2_000] if args.quick else list(SIZES))
    result = asyncio.run(bench(args))
    cpu = [r["cpu_ms_per_job"] for r in result["rows"]]
    mem = [r["bytes_per_pending_job"] for r in result["rows"]]
    summary = (
        f"scaling: CPU/job {cpu} ms (within ±{result['cpu_deviation']:.0%}), memory {mem}"
        f" B/job (within ±{result['memory_deviation']:.0%}); target ±{FLAT:.0%}, < 4 KiB: "
        f"{'met' if result['met'] else 'MISSED'}"
    )
    common.finish(result, summary, plot, args.plot)


if __name__ == "__main__":
    main()
