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

Figures: wall time (the target: ltx2 ≤ 1.5 × the loop), client-process CPU per job
(``time.process_time``), and the memory one *pending* job costs the client (Job handle,
store record, poller entry, limiter slot): jobs are submitted to an emulator where they
take an hour, and the process's traced allocations (``tracemalloc``) and RSS grow per job
are measured (target < 4 KiB).

    python benchmarks/bench_fanout.py [--quick] [--plot docs/bench_fanout.png]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import statistics
import sys
import time
import tracemalloc
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


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


async def pending_memory(base: str, n: int, traced: bool) -> float:
    """Bytes per pending job: submit ``n`` jobs that stay pending (after a warm-up of 200),
    keep their handles, and divide what the process grew by ``n``."""
    async with ltx2.Client(PROVIDER, api_key=common.API_KEY, base_url=base) as client:
        request = ltx2.VideoRequest(image=IMAGE, prompt=PROMPT)
        sem = asyncio.Semaphore(64)
        held: list[ltx2.Job] = []

        async def submit() -> None:
            async with sem:
                held.append(await client.submit(request))

        await asyncio.gather(*(submit() for _ in range(200)))
        if traced:
            tracemalloc.start()
        gc.collect()
        start = tracemalloc.get_traced_memory()[0] if traced else rss_bytes()
        tasks = [asyncio.ensure_future(submit()) for _ in range(n)]
        await asyncio.gather(*tasks)
        del tasks
        gc.collect()
        end = tracemalloc.get_traced_memory()[0] if traced else rss_bytes()
        if traced:
            tracemalloc.stop()
        if sum(1 for job in held if not job.done) != n + 200:
            raise RuntimeError("jobs finished: the emulator's processing time is too short")
        return (end - start) / n


async def memory_in_child(base: str, n: int, kind: str) -> float:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--memory", kind, "--base", base, "--pending", str(n),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"memory measurement ({kind}) failed")
    return float(out.decode().split()[-1])


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    common.pin(common.CLIENT_CPU)
    n, c = args.jobs, args.concurrency
    rows: list[dict[str, Any]] = []
    with common.start_emulator(["--no-limits", "--processing-time", "0"]) as emu:
        for side in SIDES:  # warm-up: connections, imports, caches
            await timed_run(emu, side, min(500, n), c)
        for rep in range(args.reps):
            order = list(SIDES) if rep % 2 == 0 else list(reversed(SIDES))
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
    with common.start_emulator(["--no-limits", "--processing-time", "3600"]) as emu:
        # Each in a fresh process, so that memory freed by the runs above is not reused.
        base = emu.provider_url(PROVIDER)
        traced = await memory_in_child(base, args.pending, "traced")
        rss = await memory_in_child(base, args.pending, "rss")
    print(f"pending job: {traced:.0f} B traced, {rss:.0f} B RSS", file=sys.stderr)

    def med(side: str, key: str) -> float:
        return statistics.median(r[key] for r in rows if r["side"] == side)

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
        "pending_bytes_per_job_traced": round(traced),
        "pending_bytes_per_job_rss": round(rss),
        "pending_target_bytes": 4096,
        "pending_met": traced < 4096,
        "rows": rows,
        "machine": common.machine(),
    }
    for side in ("gather", "as_completed"):
        wall = med(side, "wall")
        out[side] = {
            "wall": round(wall, 3),
            "ratio": round(wall / out["baseline_wall"], 3),
            "target_ratio": 1.5,
            "met": wall / out["baseline_wall"] <= 1.5,
            "cpu_ms_per_job": round(med(side, "cpu_ms_per_job"), 4),
            "cpu_ratio": round(med(side, "cpu_ms_per_job") / out["baseline_cpu_ms_per_job"], 3),
            "requests_per_job": med(side, "requests_per_job"),
            "emulator_cpu_share": round(med(side, "emulator_cpu_share"), 3),
            "client_cpu_share": round(med(side, "client_cpu_share"), 3),
        }
    out["ratio"] = out["gather"]["ratio"]
    out["met"] = out["gather"]["met"] and out["as_completed"]["met"] and out["pending_met"]
    return out


def plot(result: dict[str, Any], path: str) -> None:
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    names = ["baseline", "gather", "as_completed"]
    walls = [result["baseline_wall"], result["gather"]["wall"], result["as_completed"]["wall"]]
    cpus = [result["baseline_cpu_ms_per_job"], result["gather"]["cpu_ms_per_job"],
            result["as_completed"]["cpu_ms_per_job"]]  # fmt: skip
    colors = ["C0", "C1", "C2"]
    ax = axes[0]
    ax.bar(names, walls, color=colors)
    ax.axhline(1.5 * result["baseline_wall"], color="k", ls="--", lw=1, label="target 1.5 × loop")
    ax.set_ylabel("wall seconds (median)")
    ax.set_title(f"{result['jobs']:,} jobs, {result['concurrency']} in flight")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.bar(names, cpus, color=colors)
    ax.set_ylabel("client CPU ms / job")
    ax.set_title("Client-process CPU per job")
    ax = axes[2]
    mem = [result["pending_bytes_per_job_traced"], result["pending_bytes_per_job_rss"]]
    ax.bar(["traced\n(tracemalloc)", "RSS"], mem, color=["C3", "C4"])
    ax.axhline(4096, color="k", ls="--", lw=1, label="target 4 KiB")
    ax.set_ylabel("bytes per pending job")
    ax.set_title(f"Memory, {result['pending_jobs']:,} pending jobs")
    ax.legend(fontsize=8)
    for axis, values, fmt in zip(axes, (walls, cpus, mem), ("{:.1f} s", "{:.2f}", "{:.0f} B"),
                                 strict=True):  # fmt: skip
        for x, v in enumerate(values):
            axis.text(x, v, fmt.format(v), ha="center", va="bottom", fontsize=8)
    fig.suptitle(
        f"Fan-out overhead: gather {result['gather']['ratio']:.2f}×, as_completed "
        f"{result['as_completed']['ratio']:.2f}× the hand-written loop"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--jobs", type=int, default=None)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--reps", type=int, default=None)
    p.add_argument("--pending", type=int, default=None, help="jobs for the memory figure")
    p.add_argument("--memory", choices=("traced", "rss"), help=argparse.SUPPRESS)
    p.add_argument("--base", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory:
        common.pin(common.CLIENT_CPU)
        print(asyncio.run(pending_memory(args.base, args.pending, args.memory == "traced")))
        return
    args.jobs = args.jobs or (1000 if args.quick else 10_000)
    args.reps = args.reps or (1 if args.quick else 2)
    args.pending = args.pending or (1000 if args.quick else 10_000)
    result = asyncio.run(bench(args))
    g, a = result["gather"], result["as_completed"]
    summary = (
        f"fan-out: loop {result['baseline_wall']:.2f} s, gather {g['wall']:.2f} s "
        f"({g['ratio']:.2f}x), as_completed {a['wall']:.2f} s ({a['ratio']:.2f}x), target "
        f"<= 1.5x; pending job {result['pending_bytes_per_job_traced']} B (target < 4096)"
    )
    common.finish(result, summary, plot, args.plot)


if __name__ == "__main__":
    main()
