"""``ltx2 receiver``: a standalone webhook receiver whose deliveries go to Redis.

It runs one :class:`ltx2.WebhookReceiver` on a :class:`ltx2.RedisStore` and nothing else: it
holds no provider key, sends no request to a provider and resolves no job. Each delivery is
authenticated (per-job token, Eachlabs' secret, fal's signature) and written to Redis; the
client that submitted the job hears it over Redis pub/sub, confirms it where that is the
setting (one status GET, from the client) and resolves the job. Clients point their webhook
URLs here with ``Client(..., store=RedisStore(url), webhooks=WebhookReceiver(public_url))``,
a receiver they never start (see docs/deployment.md).

Output, for scripts and supervisors: one line when it listens,
``ltx2 receiver listening on http://HOST:PORT`` (plus the public URL if given), and one when it
stops, ``ltx2 receiver stopped: accepted=N duplicate=N rejected=N unknown=N``. SIGINT and
SIGTERM stop it cleanly (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

import ltx2

from . import EXIT_FAILED, EXIT_OK, fail

__all__ = ["receiver"]


async def receiver(args: argparse.Namespace) -> int:
    """Serve until SIGINT / SIGTERM; returns the exit code (1: Redis cannot be reached)."""
    store = ltx2.RedisStore(args.redis, prefix=args.prefix)
    rx = ltx2.WebhookReceiver(args.public_url, store=store)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not in the main thread (tests calling main() in a worker) or not on Unix: then
        # Ctrl-C ends it as any command (exit 130).
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        try:
            await store.open()
        except Exception as exc:  # redis-py's errors: say what failed (the repr hides passwords)
            fail(f"cannot use Redis {store!r}: {type(exc).__name__}: {exc}")
            return EXIT_FAILED
        try:
            url = await rx.start(args.host, args.port)
            public = f" (public URL {rx.public_url})" if rx.public_url != url else ""
            print(f"ltx2 receiver listening on {url}{public}", flush=True)
            await stop.wait()
        finally:
            await rx.stop()
    finally:
        await store.close()
        for sig in handled:
            loop.remove_signal_handler(sig)
    counts = " ".join(f"{name}={n}" for name, n in rx.stats.items())
    print(f"ltx2 receiver stopped: {counts}", flush=True)
    return EXIT_OK
