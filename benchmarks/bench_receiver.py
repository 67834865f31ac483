"""Benchmark 1: webhook receiver throughput, against a bare aiohttp handler in the same run.

What is measured: Eachlabs-style deliveries (``{exec_id, status, output, error}`` with the
job's ``X-Webhook-Secret``) POSTed to ``ltx2.WebhookReceiver`` on 127.0.0.1, each for a
real, pending job of a real ``ltx2.Client``: the receiver checks the 128-bit URL token and
the per-job secret (both in constant time), parses the body, stores the delivery, and the
client resolves the job (``confirm_webhooks=False``: Eachlabs' default confirming GET is
the client's later work, not the receiver's, and is left out). A round counts only when
every delivery got 200 and every job of the round resolved with its video URL.

Baseline: ``async def handler(request): return web.Response()`` — a bare aiohttp handler
returning 200 on the same kind of runner (no access log), sent exactly the same requests
(paths, headers, bodies) by the same load generator in the same run. A third server, the
*minimal* authenticating handler (read the body, look the token up, compare the secret,
parse the JSON, answer), is not a baseline but a floor: what any receiver that
authenticates must pay. Within each round the three go one after another, in a rotating
order; figures are medians over rounds (the ratio: the median of per-round ratios).

The jobs are created beforehand through the client against the emulator in its own process
(``--faults webhook_drop=1`` so the emulator itself sends nothing; it is stopped before the
timed part). The receiver process is pinned to core 0, the load generator to core 1. The
generator writes pre-encoded HTTP/1.1 requests to ``--connections`` keep-alive sockets (an
aiohttp client, ``--generator-kind aiohttp``, could not keep even the bare handler busy on
one core); both processes' CPU use is reported, so it is visible which side was the limit.

    python benchmarks/bench_receiver.py [--quick] [--plot docs/bench_receiver.png]
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as common
import aiohttp
from aiohttp import web

import ltx2

PROVIDER = "eachlabs"
IMAGE = "https://example.com/cat.jpg"


# -- the load generator (a child process) ---------------------------------------------------


async def generate_aiohttp(base: str, items: list[list[str]], connections: int) -> dict[str, Any]:
    """POST every item ``[path, body, secret]`` to ``base`` with an aiohttp client over
    ``connections`` keep-alive connections; returns timings and status counts."""
    statuses: dict[int, int] = {}
    it = iter(items)
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for path, body, secret in it:
                headers = {"Content-Type": "application/json", "X-Webhook-Secret": secret}
                async with session.post(base + path, data=body.encode(), headers=headers) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1

        # Open the connections first so the timed part is steady-state keep-alive traffic.
        async def ping() -> None:
            async with session.post(base + "/warmup/0000000000", data=b"{}") as r:
                await r.read()

        await asyncio.gather(*(ping() for _ in range(connections)))
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    return {"elapsed": elapsed, "cpu": cpu, "statuses": statuses, "count": len(items)}


class _RawConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection sending pre-encoded requests one after another
    and reading just the status line and Content-Length of each reply."""

    def __init__(self, requests: Any, statuses: dict[int, int], done: asyncio.Future[None]):
        self.requests = requests
        self.statuses = statuses
        self.done = done
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send_next(self) -> None:
        request = next(self.requests, None)
        if request is None:
            if not self.done.done():
                self.done.set_result(None)
            return
        assert self.transport is not None
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            total = end + 4 + length
            if len(self.buf) < total:
                return
            status = int(head[9:12])
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.buf = self.buf[total:]
            self.send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost: {exc!r}"))


async def generate_raw(base: str, items: list[list[str]], connections: int) -> dict[str, Any]:
    """The same requests as :func:`generate_aiohttp`, pre-encoded and written to raw
    keep-alive sockets: a lighter generator, so that the server side is the limit."""
    host, _, port = base.removeprefix("http://").partition(":")
    encoded = []
    for path, body, secret in items:
        data = body.encode()
        encoded.append(
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nX-Webhook-Secret: {secret}\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
    loop = asyncio.get_running_loop()
    statuses: dict[int, int] = {}
    requests = iter(encoded)
    conns = []
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        _, proto = await loop.create_connection(
            lambda d=done: _RawConnection(requests, statuses, d), host, int(port)
        )
        conns.append(proto)
    cpu0, t0 = time.process_time(), time.perf_counter()
    for proto in conns:
        proto.send_next()
    await asyncio.gather(*(p.done for p in conns))
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    for proto in conns:
        assert proto.transport is not None
        proto.transport.close()
    return {"elapsed": elapsed, "cpu": cpu, "statuses": statuses, "count": len(items)}


def generator_main(args: argparse.Namespace) -> None:
    """The persistent generator: one command per stdin line ``{"base", "items"}`` (items:
    a JSON file), one JSON result per stdout line."""
    common.pin(common.SERVER_CPU)
    gen = generate_raw if args.generator_kind == "raw" else generate_aiohttp
    loaded: dict[str, list[list[str]]] = {}
    for line in sys.stdin:
        command = json.loads(line)
        path = command["items"]
        if path not in loaded:
            loaded.clear()
            loaded[path] = json.loads(Path(path).read_text())
        result = asyncio.run(gen(command["base"], loaded[path], args.connections))
        print(json.dumps(result), flush=True)


class Generator:
    """The load generator process, pinned to the other core, fed batches over stdin."""

    def __init__(self, connections: int, kind: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--generator", "--connections", str(connections),
             "--generator-kind", kind],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    async def run(self, base: str, items_file: str) -> tuple[dict[str, Any], float]:
        """One batch against ``base``; returns the generator's figures and the CPU seconds
        this (the server) process used meanwhile."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        cpu0 = time.process_time()
        self.proc.stdin.write(json.dumps({"base": base, "items": items_file}) + "\n")
        self.proc.stdin.flush()
        stdout = self.proc.stdout
        line = await asyncio.get_running_loop().run_in_executor(None, stdout.readline)
        server_cpu = time.process_time() - cpu0
        if not line:
            raise RuntimeError("the load generator died")
        result: dict[str, Any] = json.loads(line)
        return result, server_cpu

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(10)


# -- the server side (this process) ---------------------------------------------------------

#: The body of the minimal handler's 200.
_OK = b'{"ok": true, "message": "ok"}'


async def bare_handler(request: web.Request) -> web.Response:
    """The baseline: a bare aiohttp handler that returns 200."""
    return web.Response()


class MinimalReceiver:
    """Not a baseline, a floor: the least an authenticating receiver must do per delivery
    (read the body, look the token up, compare the secret in constant time, parse the JSON,
    note the outcome, answer). The gap between it and ltx2 is what ltx2's design costs."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.outcomes: dict[str, str] = {}

    async def handle(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        body = await request.read()
        secret = self.secrets.get(token)
        if secret is None:
            return web.Response(status=404)
        given = request.headers.get("X-Webhook-Secret", "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return web.Response(status=401)
        self.outcomes[token] = json.loads(body)["status"]
        return web.Response(body=_OK, content_type="application/json", charset="utf-8")


async def serve(handler: Any) -> tuple[web.AppRunner, str]:
    """``handler`` on ``POST /{provider}/{token}``, run like WebhookReceiver.start runs."""
    app = web.Application()
    app.router.add_post("/{provider}/{token}", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def make_jobs(
    client: ltx2.Client, store: ltx2.MemoryStore, rx: ltx2.WebhookReceiver, n: int
) -> list[tuple[ltx2.Job, list[str]]]:
    """``n`` pending jobs, each with its delivery ``[path, body, secret]``."""
    request = ltx2.VideoRequest(image=IMAGE, prompt="a cat yawns")
    sem = asyncio.Semaphore(64)

    async def one() -> tuple[ltx2.Job, list[str]]:
        async with sem:
            job = await client.submit(request)
        record = await store.get(job.key)
        assert record is not None
        assert record.webhook_secret is not None
        path = rx.url_for(PROVIDER, record.token).removeprefix(rx.public_url or "")
        body = json.dumps(
            {"exec_id": job.id, "status": "succeeded",
             "output": f"https://cdn.example.com/{job.id}.mp4", "error": ""}
        )  # fmt: skip
        return job, [path, body, record.webhook_secret]

    return list(await asyncio.gather(*(one() for _ in range(n))))


SIDES = ("bare", "minimal", "ltx2")


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    common.pin(common.CLIENT_CPU)
    per_round, rounds = args.deliveries, args.rounds
    total = per_round * (rounds + 1)  # round 0 warms up
    emu = common.start_emulator(
        ["--no-limits", "--processing-time", "3600", "--faults", "webhook_drop=1"]
    )
    store = ltx2.MemoryStore(keep_finished=total)
    rx = ltx2.WebhookReceiver(store=store)
    await rx.start("127.0.0.1", 0)
    minimal = MinimalReceiver()
    bare_runner, bare_url = await serve(bare_handler)
    minimal_runner, minimal_url = await serve(minimal.handle)
    bases = {"bare": bare_url, "minimal": minimal_url}
    client = ltx2.Client(
        PROVIDER,
        api_key=common.API_KEY,
        base_url=emu.provider_url(PROVIDER),
        webhooks=rx,
        store=store,
        confirm_webhooks=False,
        limits=ltx2.Limits(),  # no client-side limits: creating the jobs is setup
        poll=ltx2.PollPolicy(webhook_grace=1000.0),  # no safety-net poll during the run
    )
    generator = Generator(args.connections, args.generator_kind)
    rows: list[dict[str, Any]] = []
    tmp = tempfile.mkdtemp(prefix="ltx2-bench-")
    try:
        async with client:
            t0 = time.perf_counter()
            jobs = await make_jobs(client, store, rx, total)
            setup = time.perf_counter() - t0
            emu.stop()  # idle from here on; stopped so that it cannot add noise
            print(f"setup: {total} pending jobs in {setup:.1f} s", file=sys.stderr)
            for _, (path, _, secret) in jobs:
                minimal.secrets[path.rsplit("/", 1)[1]] = secret
            base_ltx2 = rx.public_url or ""
            for index in range(rounds + 1):
                batch = jobs[index * per_round : (index + 1) * per_round]
                items_file = os.path.join(tmp, f"round{index}.json")
                Path(items_file).write_text(json.dumps([item for _, item in batch]))
                # Rotate the order, so that drift on a shared machine favours no side.
                order = SIDES[index % 3 :] + SIDES[: index % 3]
                for side in order:
                    base = base_ltx2 if side == "ltx2" else bases[side]
                    gen, server_cpu = await generator.run(base, items_file)
                    acks = gen["statuses"].get("200", 0)
                    resolved = None
                    if side == "ltx2":
                        resolved = sum(
                            1 for job, _ in batch
                            if job.done and job.status is ltx2.JobStatus.SUCCEEDED
                        )  # fmt: skip
                    if acks != len(batch) or resolved not in (None, len(batch)):
                        raise RuntimeError(
                            f"round {index} {side}: {acks} acks, {resolved} resolved "
                            f"of {len(batch)}"
                        )
                    row = {
                        "round": index,
                        "side": side,
                        "deliveries": len(batch),
                        "per_second": len(batch) / gen["elapsed"],
                        "server_cpu_us": server_cpu / len(batch) * 1e6,
                        "server_cpu_share": server_cpu / gen["elapsed"],
                        "generator_cpu_share": gen["cpu"] / gen["elapsed"],
                        "resolved": resolved,
                    }
                    rows.append(row)
                    print(
                        f"round {index}{' (warm-up)' if index == 0 else ''} {side:>7}: "
                        f"{row['per_second']:7.0f} deliveries/s, server "
                        f"{row['server_cpu_us']:4.0f} µs CPU/delivery "
                        f"({row['server_cpu_share']:.0%} of a core), generator "
                        f"{row['generator_cpu_share']:.0%} of a core",
                        file=sys.stderr,
                    )
    finally:
        generator.close()
        await rx.stop()
        await bare_runner.cleanup()
        await minimal_runner.cleanup()
        emu.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return summarize(args, rows, setup)


def summarize(args: argparse.Namespace, rows: list[dict[str, Any]], setup: float) -> dict[str, Any]:
    timed = [r for r in rows if r["round"] > 0]

    def of(side: str, key: str) -> list[float]:
        return [r[key] for r in timed if r["side"] == side]

    def per_round_ratio(side: str, key: str, invert: bool = False) -> float:
        ratios = []
        for k in sorted({r["round"] for r in timed}):
            a = next(r[key] for r in timed if r["round"] == k and r["side"] == side)
            b = next(r[key] for r in timed if r["round"] == k and r["side"] == "bare")
            ratios.append(b / a if invert else a / b)
        return statistics.median(ratios)

    med = statistics.median
    ratio = per_round_ratio("ltx2", "per_second")
    gen_share = med(of("bare", "generator_cpu_share"))
    srv_share = med(of("bare", "server_cpu_share"))
    return {
        "benchmark": "receiver",
        "provider": PROVIDER,
        "generator": args.generator_kind,
        "connections": args.connections,
        "deliveries_per_round": args.deliveries,
        "rounds": args.rounds,
        "ltx2_per_second": round(med(of("ltx2", "per_second")), 1),
        "bare_per_second": round(med(of("bare", "per_second")), 1),
        "minimal_per_second": round(med(of("minimal", "per_second")), 1),
        "ratio": round(ratio, 3),
        "target_ratio": 0.8,
        "met": ratio >= 0.8,
        "minimal_ratio": round(per_round_ratio("minimal", "per_second"), 3),
        "ltx2_cpu_us": round(med(of("ltx2", "server_cpu_us")), 1),
        "bare_cpu_us": round(med(of("bare", "server_cpu_us")), 1),
        "minimal_cpu_us": round(med(of("minimal", "server_cpu_us")), 1),
        "cpu_ratio": round(per_round_ratio("ltx2", "server_cpu_us", invert=True), 3),
        "bare_limited_by": "load generator" if gen_share > srv_share else "server",
        "bare_server_cpu_share": round(srv_share, 3),
        "bare_generator_cpu_share": round(gen_share, 3),
        "setup_seconds": round(setup, 1),
        "rows": rows,
        "machine": common.machine(),
    }


def plot(result: dict[str, Any], path: str) -> None:
    plt = common.pyplot()
    rows = [r for r in result["rows"] if r["round"] > 0]
    rounds = sorted({r["round"] for r in rows})
    labels = {"bare": "bare aiohttp handler (baseline)", "minimal": "minimal authenticating "
              "handler (floor)", "ltx2": "ltx2.WebhookReceiver"}  # fmt: skip
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), width_ratios=[2, 1])
    width = 0.27
    for i, side in enumerate(SIDES):
        vals = [next(r["per_second"] for r in rows if r["round"] == k and r["side"] == side)
                for k in rounds]  # fmt: skip
        ax1.bar([k + (i - 1) * width for k in rounds], vals, width, label=labels[side])
    ax1.set_xlabel("round (sides alternate within a round)")
    ax1.set_ylabel("deliveries / s")
    ax1.set_title(f"Throughput, {result['connections']} keep-alive connections")
    ax1.set_xticks(rounds)
    ax1.legend(fontsize=8, loc="lower right")
    cpu = [result["bare_cpu_us"], result["minimal_cpu_us"], result["ltx2_cpu_us"]]
    ax2.bar(["bare", "minimal", "ltx2"], cpu, color=["C0", "C1", "C2"])
    for x, v in enumerate(cpu):
        ax2.text(x, v, f"{v:.0f}", ha="center", va="bottom", fontsize=9)
    ax2.set_ylabel("receiver-process CPU µs / delivery (median)")
    ax2.set_title("CPU per delivery")
    fig.suptitle(
        f"Webhook receiver: ltx2 ÷ bare = {result['ratio']:.2f} deliveries/s "
        f"(target ≥ 0.8; median of per-round ratios)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--deliveries", type=int, default=None, help="deliveries per round")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (after a warm-up)")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument(
        "--generator-kind",
        choices=("raw", "aiohttp"),
        default="raw",
        help="load generator: pre-encoded requests on raw sockets (default), or aiohttp",
    )
    p.add_argument("--generator", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.generator:
        generator_main(args)
        return
    if args.deliveries is None:
        args.deliveries = 2000 if args.quick else 3000
    if args.rounds is None:
        args.rounds = 3 if args.quick else 8
    result = asyncio.run(bench(args))
    summary = (
        f"receiver: ltx2 {result['ltx2_per_second']:.0f}/s, bare {result['bare_per_second']:.0f}"
        f"/s, ratio {result['ratio']:.2f} (target >= 0.8: {'met' if result['met'] else 'MISSED'})"
        f"; CPU/delivery ltx2 {result['ltx2_cpu_us']:.0f} µs, bare {result['bare_cpu_us']:.0f}"
        f" µs, minimal {result['minimal_cpu_us']:.0f} µs"
    )
    common.finish(result, summary, plot, args.plot)


if __name__ == "__main__":
    main()
