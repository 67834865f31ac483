"""What the four benchmarks share: the emulator in its own process, CPU pinning, process
CPU readings, machine facts, the JSON result line and matplotlib set up for files.

Not a test helper and not part of the package: benchmarks are scripts (see README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
API_KEY = "bench-key"

#: The client (and the receiver) run on core 0, the emulator (and the load generator) on
#: core 1, so that neither one's CPU time is taken from the other's core. With one core
#: nothing is pinned and the figures say so.
CLIENT_CPU = 0
SERVER_CPU = 1


def can_pin() -> bool:
    return hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2


def pin(cpu: int) -> bool:
    """Pin this process to one core (if there are two); returns whether it did."""
    if not can_pin():
        return False
    os.sched_setaffinity(0, {cpu})
    return True


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def source() -> dict[str, Any]:
    """Which code a run measured: the commit of the checkout (``None`` outside git) and
    whether its files differed from it. A figure read beside another run's must name this:
    a table once showed a poller schedule two commits older than the code it described."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no", "--", "src", "benchmarks")
    return {"commit": commit, "modified": None if status is None else bool(status)}


def machine() -> dict[str, Any]:
    """The facts docs/benchmarks.md states about the machine, and the code measured
    (:func:`source`)."""
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            m = re.search(r"model name\s*:\s*(.+)", fh.read())
            model = m.group(1).strip() if m else ""
    except OSError:
        pass
    import aiohttp

    return {
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "aiohttp": aiohttp.__version__,
        "platform": platform.platform(),
        "pinned": can_pin(),
        "source": source(),
    }


@dataclass
class EmulatorProcess:
    """``python -m ltx2.emulator`` in a child process, pinned to :data:`SERVER_CPU`."""

    proc: subprocess.Popen[str]
    url: str

    def provider_url(self, name: str) -> str:
        return f"{self.url}/{name}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=60) as resp:
            return json.loads(resp.read())

    def stats(self, provider: str) -> dict[str, Any]:
        stats: dict[str, Any] = self.get("/_emulator/stats")[provider]
        return stats

    def jobs(self, provider: str) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = self.get(f"/_emulator/jobs?provider={provider}")
        return jobs

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_emulator(args: Sequence[str]) -> EmulatorProcess:
    """Start the emulator on a free loopback port with ``args`` (``--time-scale``, ...)."""
    cmd = [sys.executable, "-m", "ltx2.emulator", "--host", "127.0.0.1", "--port", "0"]
    cmd += ["--render", "stub", *args]
    preexec = (lambda: os.sched_setaffinity(0, {SERVER_CPU})) if can_pin() else None
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, preexec_fn=preexec, env=env)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    m = re.search(r"on (http://\S+)", first)
    if m is None:
        proc.kill()
        raise RuntimeError(f"emulator did not start: {first!r}")
    emu = EmulatorProcess(proc, m.group(1))
    # The rest of its banner is small; nothing else is printed, so the pipe never fills.
    deadline = time.monotonic() + 30
    while True:
        try:
            emu.get("/_emulator/health")
            return emu
        except OSError:
            if time.monotonic() > deadline:
                emu.stop()
                raise
            time.sleep(0.05)


def emit(result: dict[str, Any]) -> None:
    """Print the machine-readable result: one JSON object on one line, last."""
    print(json.dumps(result, sort_keys=True), flush=True)


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's command line: its docstring's first paragraph, ``--quick`` and
    ``--plot``; the script adds its own options."""
    p = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a fast smoke run")
    p.add_argument("--plot", default=None, help="write the plot (PNG) here")
    return p


def finish(
    result: dict[str, Any], summary: str, plot: Callable[[dict[str, Any], str], None],
    path: str | None,
) -> None:  # fmt: skip
    """Say the figures on stderr, draw the plot if asked, and print the JSON line last."""
    print(summary, file=sys.stderr)
    if path:
        plot(result, path)
    emit(result)


def pyplot() -> Any:
    """matplotlib's pyplot, drawing to files (the ``bench`` extra installs it)."""
    try:
        import matplotlib
    except ImportError:
        sys.exit("plots need matplotlib: pip install 'ltx2[bench]'")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1), by linear interpolation; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# -- memory per pending job (shared by bench_fanout and bench_scaling) ----------------------


def rss_bytes() -> int:
    """This process's resident set size (Linux ``/proc``)."""
    import resource

    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


async def pending_memory(
    provider: str, base: str, sizes: Sequence[int], kind: str
) -> dict[str, Any]:
    """Memory one *pending* job costs the client (Job handle, store record, poller entry,
    limiter slot), as the slope of memory over N: after a warm-up of 200 jobs, submit jobs
    that stay pending (the emulator must make them take long) up to each size in ``sizes``,
    reading traced allocations (``kind="traced"``, tracemalloc) or RSS at each; the
    least-squares slope over those sizes leaves out whatever is paid once (imports, caches,
    the session, the first pages of each container). Returns the readings and the slope."""
    import asyncio
    import gc
    import tracemalloc

    import ltx2

    traced = kind == "traced"
    held: list[ltx2.Job] = []
    # No poll during the measurement (the first after a day): polls are not what a pending
    # job holds, and with the default schedule (the first after 27 s for RunComfy) a
    # 50,000-job submission, minutes long, would poll its early jobs ever more often while
    # it runs — the loop saturated with status reads, the submission several times slower.
    no_polls = ltx2.PollPolicy(first=86_400.0)
    async with ltx2.Client(provider, api_key=API_KEY, base_url=base, poll=no_polls) as client:
        request = ltx2.VideoRequest(image="https://example.com/cat.jpg", prompt="a cat yawns")
        sem = asyncio.Semaphore(64)

        async def submit() -> None:
            async with sem:
                held.append(await client.submit(request))

        async def submit_many(k: int) -> None:
            tasks = [asyncio.ensure_future(submit()) for _ in range(k)]
            await asyncio.gather(*tasks)
            del tasks

        async def reading() -> int:
            # Let the last creates' replies, tasks and callbacks finish before counting.
            for _ in range(3):
                await asyncio.sleep(0.02)
            gc.collect()
            return tracemalloc.get_traced_memory()[0] if traced else rss_bytes()

        # Traced from before the warm-up: the session's connections (parser, buffers: a
        # fixed ~1 KB each, up to the pool's 64 here) are then traced from their first
        # request on. Started after it, each connection's state would become traced only when
        # a later request first reused that connection, a fixed ~64 KB counted as growth of
        # the first few dozen jobs: 40 % too much at 100 pending, nothing at 10,000.
        if traced:
            tracemalloc.start()
        await submit_many(200)
        readings: list[tuple[int, int]] = [(0, await reading())]
        done = 0
        for size in sizes:
            await submit_many(size - done)
            done = size
            readings.append((size, await reading()))
        if traced:
            tracemalloc.stop()
        if sum(1 for job in held if not job.done) != done + 200:
            raise RuntimeError("jobs finished: the emulator's processing time is too short")
    return {
        "kind": kind,
        "readings": readings,
        "bytes_per_job": slope(readings[1:]),
        "total_over_n": (readings[-1][1] - readings[0][1]) / done,
    }


def slope(points: Sequence[tuple[int, int]]) -> float:
    """The least-squares slope of memory over N: with several sizes, one hash table's resize
    (a step of a few KiB at a power of two) moves it less than it moves a two-point slope."""
    xs = [float(x) for x, _ in points]
    ys = [float(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def memory_sizes(n: int, points: int = 6) -> list[int]:
    """The sizes at which memory is read for N pending jobs: evenly from N/2 to N."""
    return [n // 2 + (n - n // 2) * k // (points - 1) for k in range(points)]


async def start_child(*argv: str) -> Any:
    """``python *argv`` (a benchmark script's child mode) with its stdout piped: it prints
    one JSON object as its last line (:func:`emit`). Returns the asyncio process."""
    import asyncio

    return await asyncio.create_subprocess_exec(
        sys.executable, *argv, stdout=asyncio.subprocess.PIPE
    )


async def child_result(proc: Any, what: str) -> dict[str, Any]:
    """Wait for a child of :func:`start_child` and return its JSON result line."""
    out, _ = await proc.communicate()
    lines = out.decode().strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{what} failed (exit status {proc.returncode})")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


async def run_child(*argv: str, what: str) -> dict[str, Any]:
    """:func:`start_child`, then :func:`child_result`."""
    return await child_result(await start_child(*argv), what)


async def pending_memory_in_child(
    provider: str, base: str, sizes: Sequence[int], kind: str
) -> dict[str, Any]:
    """:func:`pending_memory` in a fresh process pinned to :data:`CLIENT_CPU`."""
    return await run_child(
        __file__, "memory", provider, base, kind, *map(str, sizes),
        what=f"memory measurement ({kind}, {list(sizes)})",
    )  # fmt: skip


if __name__ == "__main__" and sys.argv[1:2] == ["memory"]:
    import asyncio

    _provider, _base, _kind, *_sizes = sys.argv[2:]
    pin(CLIENT_CPU)
    emit(asyncio.run(pending_memory(_provider, _base, [int(x) for x in _sizes], _kind)))
