"""Benchmark 1: webhook receiver throughput, against a minimal authenticating handler (the
target's baseline) and a bare aiohttp handler in the same run.

What is measured: Eachlabs-style deliveries (``{exec_id, status, output, error}`` with the
job's ``X-Webhook-Secret``) POSTed to ``ltx2.WebhookReceiver`` on 127.0.0.1, each for a
real, pending job of a real ``ltx2.Client``: the receiver checks the 128-bit URL token and
the per-job secret (both in constant time), parses the body, stores the delivery, and the
client resolves the job. Two ltx2 sides: ``confirm_webhooks=False`` (the receiver's own
work) and Eachlabs' default (each delivery confirmed by one status read from the emulator
before it resolves: a round trip per delivery). A round of an ltx2 side ends when every job
of its batch has resolved, and counts only if every delivery got 200 and every job resolved.

Baselines, sent exactly the same requests (paths, headers, bodies) by the same load
generator: the *minimal* authenticating handler (read the body, look the token up, compare
the secret in constant time, parse the JSON, answer 200: what any receiver that
authenticates must pay; target: ltx2 ≥ 0.9 × its deliveries/s) and
``async def handler(request): return web.Response()``, a bare handler (its ratio is reported
beside). Both run on the same kind of runner (no access log) in a process of their own —
not beside the client and its pending jobs, which would slow them and flatter ltx2. Within
each round the four sides go one after another in a rotating order; figures are medians
over rounds, ratios the median of per-round ratios.

The jobs are created beforehand through the client against the emulator in its own process
(zero processing time, so a confirming read finds them done; ``--faults webhook_drop=1`` so
the emulator itself sends nothing). The receiver process and the baselines' process are
pinned to core 0 (only one of them is busy at a time), the load generator and the emulator
to core 1. The generator writes pre-encoded HTTP/1.1 requests to ``--connections``
keep-alive sockets (an aiohttp client, ``--generator-kind aiohttp``, could not keep even the
bare handler busy on one core); every process's CPU use is reported, so it is visible which
side was the limit.

    python benchmarks/bench_receiver.py [--quick] [--plot docs/bench_receiver.png]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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


async def baselines_main(secrets_file: str) -> None:
    """The baseline servers' own process (``--baselines``): the bare and the minimal
    handler, not beside the client and its pending jobs (which would cost them CPU and
    cache and flatter ltx2). Prints their URLs on one line, serves until stdin closes."""
    common.pin(common.CLIENT_CPU)
    minimal = MinimalReceiver()
    minimal.secrets = json.loads(Path(secrets_file).read_text())
    bare_runner, bare_url = await serve(bare_handler)
    minimal_runner, minimal_url = await serve(minimal.handle)
    print(json.dumps({"bare": bare_url, "minimal": minimal_url}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await bare_runner.cleanup()
    await minimal_runner.cleanup()


class Baselines:
    """The baseline servers' process, started once the jobs (and their secrets) exist."""

    def __init__(self, secrets_file: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--baselines", secrets_file],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the baseline servers did not start")
        self.urls: dict[str, str] = json.loads(line)

    def cpu_seconds(self) -> float:
        return common.proc_cpu_seconds(self.proc.pid)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


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


#: The sides of a round: two baselines in their own process, ltx2 with Eachlabs' default
#: ``confirm_webhooks`` (one status read per delivery before it resolves) and without it.
SIDES = ("bare", "minimal", "ltx2", "ltx2 confirm")
LTX2_SIDES = {"ltx2": False, "ltx2 confirm": None}
TARGET = 0.9  # × the minimal handler


async def resolved_by(jobs: list[ltx2.Job], timeout: float) -> int:
    """Wait (bounded) until every job is done; returns how many succeeded."""

    async def one(job: ltx2.Job) -> None:
        with contextlib.suppress(ltx2.LTX2Error):
            await job

    pending = [asyncio.ensure_future(one(job)) for job in jobs if not job.done]
    if pending:
        await asyncio.wait(pending, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return sum(1 for job in jobs if job.done and job.status is ltx2.JobStatus.SUCCEEDED)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    common.pin(common.CLIENT_CPU)
    per_round, rounds = args.deliveries, args.rounds
    total = per_round * (rounds + 1)  # round 0 warms up
    # Jobs finish at once at the emulator (so a confirming status read finds them done)
    # and the emulator itself delivers nothing; the client's safety-net poll is off.
    emu = common.start_emulator(
        ["--no-limits", "--processing-time", "0", "--faults", "webhook_drop=1"]
    )
    clients: dict[str, tuple[ltx2.Client, ltx2.MemoryStore, ltx2.WebhookReceiver]] = {}
    for side, confirm in LTX2_SIDES.items():
        store = ltx2.MemoryStore(keep_finished=total)
        rx = ltx2.WebhookReceiver(store=store)
        client = ltx2.Client(
            PROVIDER,
            api_key=common.API_KEY,
            base_url=emu.provider_url(PROVIDER),
            webhooks=rx,
            store=store,
            confirm_webhooks=confirm,
            limits=ltx2.Limits(),  # no client-side limits: creating the jobs is setup
            poll=ltx2.PollPolicy(webhook_grace=1000.0),  # no safety-net poll during the run
        )
        clients[side] = (client, store, rx)
    generator = Generator(args.connections, args.generator_kind)
    baselines: Baselines | None = None
    rows: list[dict[str, Any]] = []
    tmp = tempfile.mkdtemp(prefix="ltx2-bench-")
    jobs: dict[str, list[tuple[ltx2.Job, list[str]]]] = {}
    try:
        async with contextlib.AsyncExitStack() as stack:
            t0 = time.perf_counter()
            for side, (client, store, rx) in clients.items():
                await rx.start("127.0.0.1", 0)
                stack.push_async_callback(rx.stop)
                await stack.enter_async_context(client)
                jobs[side] = await make_jobs(client, store, rx, total)
            setup = time.perf_counter() - t0
            print(f"setup: {2 * total} pending jobs in {setup:.1f} s", file=sys.stderr)
            # The minimal handler knows the tokens and secrets of the plain ltx2 side's jobs
            # (it is sent exactly those requests).
            secrets = {path.rsplit("/", 1)[1]: secret for _, (path, _, secret) in jobs["ltx2"]}
            secrets_file = os.path.join(tmp, "secrets.json")
            Path(secrets_file).write_text(json.dumps(secrets))
            baselines = Baselines(secrets_file)
            for index in range(rounds + 1):
                # Rotate the order, so that drift on a shared machine favours no side.
                k = index % len(SIDES)
                for side in SIDES[k:] + SIDES[:k]:
                    rows.append(await one_round(side, index, per_round, jobs, clients,
                                                baselines, generator, tmp))  # fmt: skip
    finally:
        generator.close()
        if baselines is not None:
            baselines.close()
        emu.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return summarize(args, rows, setup)


async def one_round(
    side: str,
    index: int,
    per_round: int,
    jobs: dict[str, list[tuple[ltx2.Job, list[str]]]],
    clients: dict[str, tuple[ltx2.Client, ltx2.MemoryStore, ltx2.WebhookReceiver]],
    baselines: Baselines,
    generator: Generator,
    tmp: str,
) -> dict[str, Any]:
    """One side's batch of a round: the generator sends it, and for ltx2 the round ends
    when every job of the batch has resolved (with a confirmation, after the acks)."""
    source = "ltx2" if side in ("bare", "minimal") else side
    batch = jobs[source][index * per_round : (index + 1) * per_round]
    items_file = os.path.join(tmp, f"{source}-round{index}.json")
    if not os.path.exists(items_file):
        Path(items_file).write_text(json.dumps([item for _, item in batch]))
    base = (clients[side][2].public_url or "") if side in LTX2_SIDES else baselines.urls[side]
    own_cpu0 = time.process_time()
    other_cpu0 = baselines.cpu_seconds()
    window0 = time.perf_counter()
    gen, _ = await generator.run(base, items_file)
    elapsed = gen["elapsed"]
    resolved = None
    if side in LTX2_SIDES:
        t_acked = time.perf_counter()
        resolved = await resolved_by([job for job, _ in batch], timeout=60.0)
        elapsed += time.perf_counter() - t_acked
    window = time.perf_counter() - window0  # the generator's setup too, unlike ``elapsed``
    own_cpu = time.process_time() - own_cpu0
    server_cpu = own_cpu if side in LTX2_SIDES else baselines.cpu_seconds() - other_cpu0
    acks = gen["statuses"].get("200", 0)
    if acks != len(batch) or resolved not in (None, len(batch)):
        raise RuntimeError(
            f"round {index} {side}: {acks} acks, {resolved} resolved of {len(batch)}"
        )
    row = {
        "round": index,
        "side": side,
        "deliveries": len(batch),
        "per_second": len(batch) / elapsed,
        "server_cpu_us": server_cpu / len(batch) * 1e6,
        "server_cpu_share": server_cpu / window,
        "generator_cpu_share": gen["cpu"] / gen["elapsed"],
        "resolved": resolved,
    }
    print(
        f"round {index}{' (warm-up)' if index == 0 else ''} {side:>12}: "
        f"{row['per_second']:7.0f} deliveries/s, server "
        f"{row['server_cpu_us']:4.0f} µs CPU/delivery "
        f"({row['server_cpu_share']:.0%} of a core), generator "
        f"{row['generator_cpu_share']:.0%} of a core",
        file=sys.stderr,
    )
    return row


def summarize(args: argparse.Namespace, rows: list[dict[str, Any]], setup: float) -> dict[str, Any]:
    timed = [r for r in rows if r["round"] > 0]

    def of(side: str, key: str) -> list[float]:
        return [r[key] for r in timed if r["side"] == side]

    def per_round_ratio(side: str, over: str, key: str = "per_second") -> float:
        """The median over rounds of ``side`` ÷ ``over`` in the same round (for CPU, the
        inverse, so that above 1 is better for ``side`` in both)."""
        ratios = []
        for k in sorted({r["round"] for r in timed}):
            a = next(r[key] for r in timed if r["round"] == k and r["side"] == side)
            b = next(r[key] for r in timed if r["round"] == k and r["side"] == over)
            ratios.append(a / b if key == "per_second" else b / a)
        return statistics.median(ratios)

    med = statistics.median
    gen_share = med(of("bare", "generator_cpu_share"))
    srv_share = med(of("bare", "server_cpu_share"))
    out: dict[str, Any] = {
        "benchmark": "receiver",
        "provider": PROVIDER,
        "generator": args.generator_kind,
        "connections": args.connections,
        "deliveries_per_round": args.deliveries,
        "rounds": args.rounds,
        "bare_per_second": round(med(of("bare", "per_second")), 1),
        "minimal_per_second": round(med(of("minimal", "per_second")), 1),
        "minimal_over_bare": round(per_round_ratio("minimal", "bare"), 3),
        "bare_cpu_us": round(med(of("bare", "server_cpu_us")), 1),
        "minimal_cpu_us": round(med(of("minimal", "server_cpu_us")), 1),
        "target_ratio": TARGET,
        "bare_limited_by": "load generator" if gen_share > srv_share else "server",
        "bare_server_cpu_share": round(srv_share, 3),
        "bare_generator_cpu_share": round(gen_share, 3),
        "setup_seconds": round(setup, 1),
        "rows": rows,
        "machine": common.machine(),
    }
    for side, label in (("ltx2", "no_confirm"), ("ltx2 confirm", "confirm")):
        ratio = per_round_ratio(side, "minimal")
        out[label] = {
            "confirm_webhooks": LTX2_SIDES[side] is None,
            "per_second": round(med(of(side, "per_second")), 1),
            "cpu_us": round(med(of(side, "server_cpu_us")), 1),
            "ratio": round(ratio, 3),  # ÷ minimal: the target
            "ratio_bare": round(per_round_ratio(side, "bare"), 3),
            "cpu_ratio": round(per_round_ratio(side, "minimal", "server_cpu_us"), 3),
            "met": ratio >= TARGET,
        }
    out["ratio"] = out["no_confirm"]["ratio"]
    out["met"] = out["no_confirm"]["met"]
    return out


def plot(result: dict[str, Any], path: str) -> None:
    plt = common.pyplot()
    rows = [r for r in result["rows"] if r["round"] > 0]
    rounds = sorted({r["round"] for r in rows})
    labels = {"bare": "bare aiohttp handler", "minimal": "minimal authenticating handler "
              "(the target's baseline)", "ltx2": "ltx2, confirm_webhooks=False",
              "ltx2 confirm": "ltx2, default (one confirming GET)"}  # fmt: skip
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.4), width_ratios=[2, 1])
    width = 0.2
    for i, side in enumerate(SIDES):
        vals = [next(r["per_second"] for r in rows if r["round"] == k and r["side"] == side)
                for k in rounds]  # fmt: skip
        ax1.bar([k + (i - 1.5) * width for k in rounds], vals, width, label=labels[side])
    ax1.set_xlabel("round (sides alternate within a round, order rotating)")
    ax1.set_ylabel("deliveries / s")
    ax1.set_title(f"Throughput, {result['connections']} keep-alive connections")
    ax1.set_xticks(rounds)
    ax1.set_ylim(top=max(r["per_second"] for r in rows) * 1.35)
    ax1.legend(fontsize=7, loc="upper right", ncol=2)
    cpu = [result["bare_cpu_us"], result["minimal_cpu_us"], result["no_confirm"]["cpu_us"],
           result["confirm"]["cpu_us"]]  # fmt: skip
    ax2.bar(["bare", "minimal", "ltx2", "ltx2\nconfirm"], cpu, color=["C0", "C1", "C2", "C3"])
    for x, v in enumerate(cpu):
        ax2.text(x, v, f"{v:.0f}", ha="center", va="bottom", fontsize=9)
    ax2.set_ylabel("server-process CPU µs / delivery (median)")
    ax2.set_title("CPU per delivery")
    n, c = result["no_confirm"], result["confirm"]
    fig.suptitle(
        f"Webhook receiver ÷ minimal handler: {n['ratio']:.2f} (confirm off), {c['ratio']:.2f} "
        f"(default); ÷ bare: {n['ratio_bare']:.2f}, {c['ratio_bare']:.2f} (target ≥ {TARGET} × "
        "minimal; median of per-round ratios)",
        fontsize=10,
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
    p.add_argument("--baselines", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.generator:
        generator_main(args)
        return
    if args.baselines:
        asyncio.run(baselines_main(args.baselines))
        return
    if args.deliveries is None:
        args.deliveries = 1000 if args.quick else 2000
    if args.rounds is None:
        args.rounds = 2 if args.quick else 6
    result = asyncio.run(bench(args))
    n, c = result["no_confirm"], result["confirm"]
    summary = (
        f"receiver: minimal {result['minimal_per_second']:.0f}/s, bare "
        f"{result['bare_per_second']:.0f}/s; ltx2 {n['per_second']:.0f}/s = {n['ratio']:.2f} x "
        f"minimal ({n['ratio_bare']:.2f} x bare), with confirmation {c['per_second']:.0f}/s = "
        f"{c['ratio']:.2f} x minimal; target >= {TARGET} x minimal: "
        f"{'met' if result['met'] else 'MISSED'}"
    )
    common.finish(result, summary, plot, args.plot)


if __name__ == "__main__":
    main()
