"""``ltx2 emulator``: run the emulator in the foreground until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import ssl
import sys
from collections.abc import Sequence
from typing import Any

from ._faults import Faults

__all__ = ["build_parser", "main", "parse_limits", "parse_processing_time"]

DEFAULT_PORT = 8765


def parse_processing_time(text: str) -> Any:
    """``"80"``, ``"30:120"`` (a range) or ``"fal=5,eachlabs=10:20"`` (per provider)."""

    def one(item: str) -> float | tuple[float, float]:
        lo, sep, hi = item.partition(":")
        return (float(lo), float(hi)) if sep else float(lo)

    text = text.strip()
    if "=" not in text:
        return one(text)
    table: dict[str, float | tuple[float, float]] = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        table[name.strip()] = one(value.strip())
    return table


def parse_limits(text: str) -> tuple[int | None, int | None]:
    """``"60:5"`` (creates per minute, concurrent predictions per key); either may be empty."""
    creates, sep, concurrent = text.strip().partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected CREATES:CONCURRENT, got {text!r}")
    try:
        return (int(creates) if creates else None, int(concurrent) if concurrent else None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers, got {text!r}") from None


def build_parser(prog: str = "ltx2 emulator") -> argparse.ArgumentParser:
    """The argument parser (exposed so ``ltx2``'s CLI can embed it)."""
    p = argparse.ArgumentParser(
        prog=prog, description="Run the local LTX-2 provider emulator (all five providers)."
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--time-scale", type=float, default=1.0, help="multiply every wait (default 1)")
    p.add_argument(
        "--seed", type=int, default=None, help="make ids, timing and faults reproducible"
    )
    p.add_argument(
        "--processing-time",
        type=parse_processing_time,
        default=None,
        help='seconds, "LO:HI", or "fal=5,eachlabs=10:20" (default: each provider\'s own)',
    )
    p.add_argument(
        "--faults",
        type=Faults.parse,
        default=Faults(),
        help='e.g. "server_error=0.1,webhook_drop=0.2"',
    )
    p.add_argument(
        "--render", choices=("full", "stub"), default="full", help="real clips or one stub"
    )
    p.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        default=None,
        help="accepted key (repeatable)",
    )
    p.add_argument("--no-limits", action="store_true", help="do not enforce Eachlabs' rate limits")
    p.add_argument(
        "--limits",
        type=parse_limits,
        default=None,
        metavar="CREATES:CONCURRENT",
        help="Eachlabs' per-key limits instead of the seed's 100:10 (creates/min, concurrent;"
        ' empty for none, e.g. "60:" or ":5")',
    )
    p.add_argument("--certfile", default=None, help="serve https with this certificate (PEM)")
    p.add_argument("--keyfile", default=None, help="private key for --certfile")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """Run the emulator until Ctrl-C / SIGTERM. ``argv`` defaults to ``sys.argv[1:]``."""
    args = build_parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


async def _serve(args: argparse.Namespace) -> None:
    from ._server import PROVIDERS, Emulator

    context = None
    if args.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.certfile, args.keyfile)
    emu = Emulator(
        args.time_scale,
        args.seed,
        host=args.host,
        port=args.port,
        processing_time=args.processing_time,
        faults=args.faults,
        render=args.render,
        api_keys=set(args.api_keys) if args.api_keys else None,
        ssl=context,
        limits=False if args.no_limits else (args.limits if args.limits else True),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with emu:
        out = sys.stdout
        out.write(
            f"ltx2 emulator on {emu.url} (time scale {emu.time_scale}, render {emu.render})\n"
        )
        for name in PROVIDERS:
            out.write(f"  {name:<9} base_url={emu.provider_url(name)}\n")
        out.write(f"  fal JWKS  {emu.fal_jwks_url}\n  stats     {emu.url}/_emulator/stats\n")
        out.write("Ctrl-C to stop.\n")
        out.flush()
        await stop.wait()
