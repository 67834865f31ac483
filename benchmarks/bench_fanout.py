"""Benchmark 2: fan-out overhead — ``client.gather`` / ``client.as_completed`` over 10,000
jobs against a hand-written aiohttp loop making the same requests, in the same run.

Both sides talk to the emulator in its own process (pinned to the other core, so its CPU
is not the client's) with zero processing time, RunComfy's API (create → status polls until
done → result: the three-call shape of a poll-only provider), the same concurrency
(``--concurrency`` jobs in flight), the same connection limit (256) and the same poll
schedule: ``PollPolicy(first=0)`` — the job is known to be instant, so the first status
read comes right after the create — and, if a job were not done, ``ratio × age`` within
``[min_interval, max_interval]`` like the SDK (never needed at zero processing time). The
requests each side made per job are read back from the emulator's counters.

Figures, from at least 6 repetitions in which the three sides run one after another in a
rotating order: wall time (target: ltx2 ≤ 1.25 × the loop) and client-process CPU per job
(``time.process_time``; target ≤ 1.3 ×) — both sides are partly latency-bound, so CPU is
shown beside wall time — each verdict on the median of the per-repetition (paired) ratios.
And the memory one *pending* job costs the client (Job handle, store record, poller entry,
limiter slot): jobs are submitted to an emulator where they take an hour, and the figure is
the slope of the process's traced allocations (``tracemalloc``) and RSS over N (least
squares over six sizes from N/2 to N pending jobs), not total ÷ N (target < 4 KiB).

    python benchmarks/bench_fanout.py [--quick] [--plot docs/bench_fanout.png]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from typing import Any

import _common as common
import aiohttp

import ltx2

PROVIDER = "runcomfy"
IMAGE = "https://example.com/cat.jpg"
PROMPT = "a cat yawns"
POLL = ltx2.PollPolicy(first=0.0)
#: The same connection pool as ltx2's transport (``TCPConnector(limit=256)``).
CONNECTIONS = 256


def requests(n: int) -> list[ltx2.VideoRequest]:
    return [ltx2.VideoRequest(image=IMAGE, prompt=PROMPT) for _ in range(n)]


# -- the baseline ---------------------------------------------------------------------------


async def baseline(base: str, n: int, concurrency: int) -> int:
    """The hand-written loop: for each job create, poll its status on ``POLL``'s schedule
    until it is done, read the result. Returns how many videos it got."""
    headers = {"Authorization": f"Bearer {common.API_KEY}"}
    body = {
        "image_url": IMAGE, "prompt": PROMPT, "duration": 6, "resolution": "1080p",
        "aspect_ratio": "16:9", "fps": 25, "generate_audio": True,
    }  # fmt: skip
    timeout = aiohttp.ClientTimeout(total=120, connect=10, sock_read=60)
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    sem = asyncio.Semaphore(concurrency)
    videos = 0

    async def one(session: aiohttp.ClientSession) -> None:
        nonlocal videos
        async with sem:
            url = f"{base}/v1/models/ltx/ltx-2/fast/image-to-video"
            async with session.post(url, json=body, headers=headers) as r:
                created = await r.json()
            started = time.monotonic()
            await asyncio.sleep(POLL.first or 0.0)
            while True:
                async with session.get(created["status_url"], headers=headers) as r:
                    status = (await r.json())["status"]
                if status in ("completed", "succeeded", "failed", "cancelled"):
                    break
                age = time.monotonic() - started
                await asyncio.sleep(
                    min(POLL.max_interval, max(POLL.min_interval, POLL.ratio * age))
                )
            async with session.get(created["result_url"], headers=headers) as r:
                result = await r.json()
            if result["output"]["video"]:
                videos += 1

    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(*(one(session) for _ in range(n)))
    return videos


# -- the SDK --------------------------------------------------------------------------------


def make_client(base: str) -> ltx2.Client:
    return ltx2.Client(PROVIDER, api_key=common.API_KEY, base_url=base, poll=POLL)


async def sdk_gather(base: str, n: int, concurrency: int) -> int:
    async with make_client(base) as client:
        videos = await client.gather(requests(n), concurrency=concurrency)
    return sum(1 for v in videos if v.url)


async def sdk_as_completed(base: str, n: int, concurrency: int) -> int:
    count = 0
    async with make_client(base) as client:
        async for job in client.as_completed(requests(n), concurrency=concurrency):
            video = await job
            count += bool(video.url)
    return count


SIDES = {"baseline": baseline, "gather": sdk_gather, "as_completed": sdk_as_completed}


async def timed_run(
    emu: common.EmulatorProcess, side: str, n: int, concurrency: int
) -> dict[str, Any]:
    before = emu.stats(PROVIDER)
    emu_cpu0 = emu.cpu_seconds()
    gc.collect()
    cpu0, t0 = time.process_time(), time.perf_counter()
    videos = await SIDES[side](emu.provider_url(PROVIDER), n, concurrency)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    emu_cpu = emu.cpu_seconds() - emu_cpu0
    after = emu.stats(PROVIDER)
    if videos != n:
        raise RuntimeError(f"{side}: {videos} videos for {n} jobs")
    calls = {k: (after[k] - before[k]) / n for k in ("creates", "status_requests",
                                                     "result_requests")}  # fmt: skip
    return {
        "side": side,
        "jobs": n,
        "wall": wall,
        "cpu_ms_per_job": cpu / n * 1e3,
        "client_cpu_share": cpu / wall,
        "emulator_cpu_share": emu_cpu / wall,
        "requests_per_job": round(sum(calls.values()), 3),
        "calls_per_job": calls,
    }


# -- memory per pending job -----------------------------------------------------------------


async def memory_slope(base: str, sizes: tuple[int, int], kind: str) -> dict[str, float]:
    """Bytes per pending job in a fresh process (so that memory freed by the timed runs is
    not reused): the slope of memory over N between two sizes (see ``_common``)."""
    return await common.pending_memory_in_child(PROVIDER, base, sizes, kind)


WALL_TARGET = 1.25
CPU_TARGET = 1.3
MEMORY_TARGET = 4096


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    common.pin(common.CLIENT_CPU)
    n, c = args.jobs, args.concurrency
    rows: list[dict[str, Any]] = []
    names = list(SIDES)
    with common.start_emulator(["--no-limits", "--processing-time", "0"]) as emu:
        for side in SIDES:  # warm-up: connections, imports, caches
            await timed_run(emu, side, min(500, n), c)
        for rep in range(args.reps):
            # Rotate the order, so that drift on a shared machine favours no side.
            order = names[rep % 3 :] + names[: rep % 3]
            for side in order:
                row = await timed_run(emu, side, n, c)
                row["rep"] = rep
                rows.append(row)
                print(
                    f"rep {rep} {side:>12}: {row['wall']:6.2f} s wall, "
                    f"{row['cpu_ms_per_job']:.3f} ms CPU/job, {row['requests_per_job']:.2f} "
                    f"requests/job; client {row['client_cpu_share']:.0%}, emulator "
                    f"{row['emulator_cpu_share']:.0%} of a core",
                    file=sys.stderr,
                )
    sizes = common.memory_sizes(args.pending)
    with common.start_emulator(["--no-limits", "--processing-time", "3600"]) as emu:
        base = emu.provider_url(PROVIDER)
        traced = await memory_slope(base, sizes, "traced")
        rss = await memory_slope(base, sizes, "rss")
    print(
        f"pending job (slope {sizes[0]:,} -> {sizes[-1]:,}): {traced['bytes_per_job']:.0f} B "
        f"traced, {rss['bytes_per_job']:.0f} B RSS",
        file=sys.stderr,
    )

    def med(side: str, key: str) -> float:
        return statistics.median(r[key] for r in rows if r["side"] == side)

    def paired(side: str, key: str) -> list[float]:
        """Per repetition, ``side`` ÷ the loop of the same repetition."""
        base = {r["rep"]: r[key] for r in rows if r["side"] == "baseline"}
        return [r[key] / base[r["rep"]] for r in rows if r["side"] == side]

    out: dict[str, Any] = {
        "benchmark": "fanout",
        "provider": PROVIDER,
        "jobs": n,
        "concurrency": c,
        "reps": args.reps,
        "poll": "PollPolicy(first=0)",
        "baseline_wall": round(med("baseline", "wall"), 3),
        "baseline_cpu_ms_per_job": round(med("baseline", "cpu_ms_per_job"), 4),
        "baseline_requests_per_job": med("baseline", "requests_per_job"),
        "pending_jobs": args.pending,
        "pending_sizes": [sizes[0], sizes[-1]],
        "pending_bytes_per_job_traced": round(traced["bytes_per_job"]),
        "pending_bytes_per_job_rss": round(rss["bytes_per_job"]),
        "pending_total_over_n_traced": round(traced["total_over_n"]),
        "pending_target_bytes": MEMORY_TARGET,
        "pending_met": traced["bytes_per_job"] < MEMORY_TARGET,
        "rows": rows,
        "machine": common.machine(),
    }
    for side in ("gather", "as_completed"):
        walls, cpus = paired(side, "wall"), paired(side, "cpu_ms_per_job")
        ratio, cpu_ratio = statistics.median(walls), statistics.median(cpus)
        out[side] = {
            "wall": round(med(side, "wall"), 3),
            "ratio": round(ratio, 3),
            "ratio_range": [round(min(walls), 3), round(max(walls), 3)],
            "target_ratio": WALL_TARGET,
            "met": ratio <= WALL_TARGET,
            "cpu_ms_per_job": round(med(side, "cpu_ms_per_job"), 4),
            "cpu_ratio": round(cpu_ratio, 3),
            "cpu_ratio_range": [round(min(cpus), 3), round(max(cpus), 3)],
            "target_cpu_ratio": CPU_TARGET,
            "cpu_met": cpu_ratio <= CPU_TARGET,
            "requests_per_job": med(side, "requests_per_job"),
            "emulator_cpu_share": round(med(side, "emulator_cpu_share"), 3),
            "client_cpu_share": round(med(side, "client_cpu_share"), 3),
        }
    out["ratio"] = out["gather"]["ratio"]
    out["met"] = all(out[s]["met"] and out[s]["cpu_met"] for s in ("gather", "as_completed"))
    out["met"] = out["met"] and out["pending_met"]
    return out


def plot(result: dict[str, Any], path: str) -> None:
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    names = ["baseline", "gather", "as_completed"]
    colors = {"baseline": "C0", "gather": "C1", "as_completed": "C2"}
    rows = result["rows"]
    reps = sorted({r["rep"] for r in rows})
    width = 0.27
    for ax, key, label in ((axes[0], "wall", "wall seconds"),
                           (axes[1], "cpu_ms_per_job", "client CPU ms / job")):  # fmt: skip
        for i, side in enumerate(names):
            vals = [next(r[key] for r in rows if r["rep"] == k and r["side"] == side)
                    for k in reps]  # fmt: skip
            ax.bar([k + (i - 1) * width for k in reps], vals, width, label=side,
                   color=colors[side])  # fmt: skip
        ax.set_xlabel("repetition (sides interleaved, order rotating)")
        ax.set_ylabel(label)
        ax.set_xticks(reps)
        ax.legend(fontsize=8, loc="lower right")
    g, a = result["gather"], result["as_completed"]
    axes[0].set_title(
        f"Wall: gather {g['ratio']:.2f}×, as_completed {a['ratio']:.2f}× (≤ {WALL_TARGET})"
    )
    axes[1].set_title(
        f"CPU: gather {g['cpu_ratio']:.2f}×, as_completed {a['cpu_ratio']:.2f}× (≤ {CPU_TARGET})"
    )
    ax = axes[2]
    mem = [result["pending_bytes_per_job_traced"], result["pending_bytes_per_job_rss"]]
    ax.bar(["traced\n(tracemalloc)", "RSS"], mem, color=["C3", "C4"])
    ax.axhline(MEMORY_TARGET, color="k", ls="--", lw=1, label="target 4 KiB")
    for x, v in enumerate(mem):
        ax.text(x, v, f"{v:.0f} B", ha="center", va="bottom", fontsize=8)
    lo, hi = result["pending_sizes"]
    ax.set_ylabel("bytes per pending job (slope)")
    ax.set_title(f"Memory: slope from {lo:,} to {hi:,} pending")
    ax.legend(fontsize=8)
    fig.suptitle(
        f"Fan-out, {result['jobs']:,} jobs, {result['concurrency']} in flight: ltx2 ÷ "
        f"hand-written loop, median of {result['reps']} paired ratios"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


async def profile(args: argparse.Namespace) -> None:
    """``--profile PATH``: one ``gather`` over ``--jobs`` jobs under cProfile (after a
    warm-up), the stats written to PATH and the top entries printed on stderr."""
    import cProfile
    import pstats

    common.pin(common.CLIENT_CPU)
    with common.start_emulator(["--no-limits", "--processing-time", "0"]) as emu:
        base = emu.provider_url(PROVIDER)
        await sdk_gather(base, min(500, args.jobs), args.concurrency)
        prof = cProfile.Profile()
        prof.enable()
        await SIDES[args.profile_side](base, args.jobs, args.concurrency)
        prof.disable()
    prof.dump_stats(args.profile)
    stats = pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime")
    stats.print_stats(40)


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--jobs", type=int, default=None)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--reps", type=int, default=None, help="interleaved repetitions (>= 6)")
    p.add_argument("--pending", type=int, default=None, help="jobs for the memory figure")
    p.add_argument("--profile", default=None, help="profile one run to this pstats file")
    p.add_argument("--profile-side", choices=list(SIDES), default="gather")
    args = p.parse_args()
    if args.profile:
        args.jobs = args.jobs or 5000
        asyncio.run(profile(args))
        return
    args.jobs = args.jobs or (1000 if args.quick else 10_000)
    args.reps = args.reps or (2 if args.quick else 6)
    args.pending = args.pending or (1000 if args.quick else 10_000)
    result = asyncio.run(bench(args))
    g, a = result["gather"], result["as_completed"]
    summary = (
        f"fan-out: loop {result['baseline_wall']:.2f} s; wall gather {g['ratio']:.2f}x, "
        f"as_completed {a['ratio']:.2f}x (target <= {WALL_TARGET}); CPU/job gather "
        f"{g['cpu_ratio']:.2f}x, as_completed {a['cpu_ratio']:.2f}x (target <= {CPU_TARGET}); "
        f"pending job {result['pending_bytes_per_job_traced']} B (target < {MEMORY_TARGET})"
    )
    common.finish(result, summary, plot, args.plot)


if __name__ == "__main__":
    main()
