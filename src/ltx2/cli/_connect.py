"""The options every command that talks to a provider shares, and the client they make.

``generate``, ``batch``, ``status`` and ``cancel`` take the same ``--provider``,
``--emulator``, ``--base-url``, ``--time-scale`` and ``--api-key-file``, defined here once
(:func:`add_provider_options`), and get their :class:`ltx2.Client` from :func:`open_client`:

- ``--emulator``: no account, no key. ``generate`` and ``batch`` run the emulator in this
  process (its clock scaled by ``--time-scale``, default 0.05); ``status`` and ``cancel``, which
  are about a job that already exists, talk to the one ``ltx2 emulator`` runs on
  ``127.0.0.1:8765``.
- ``--base-url URL``: the provider's API at another address (a proxy, or an emulator's
  ``URL/<provider>``).
- ``--time-scale X``: the provider's time × X. The client's poll schedule and limit windows are
  scaled by it, so a job on an emulator at time scale X is polled as often as it should be.
- The API key comes from the provider's environment variable, or from ``--api-key-file``; a
  key is never taken as a command-line value (it would be in the shell history and in
  ``ps``): ``--api-key`` is refused without echoing what followed it.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ltx2
from ltx2._config import emulator_from_env
from ltx2.providers import all_providers

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "EMULATOR_KEY",
    "EMULATOR_PORT",
    "EMULATOR_TIME_SCALE",
    "Connection",
    "add_provider_options",
    "add_webhook_options",
    "check_provider_options",
    "key_variables",
    "open_client",
    "parse_listen",
    "read_key_file",
    "status_command",
]

#: The key given to an emulator (it accepts any non-empty key in the provider's form).
EMULATOR_KEY = "emulator-key"
#: The port ``ltx2 emulator`` listens on by default (its ``--port``).
EMULATOR_PORT = 8765
#: ``--time-scale``'s default with an in-process ``--emulator``: an 80 s job takes 4 s.
EMULATOR_TIME_SCALE = 0.05


class _RefuseKeyValue(argparse.Action):
    """``--api-key VALUE``: refused, naming where a key goes instead, never echoing VALUE."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        parser.error(
            f"{option_string} is not accepted: a key on the command line is kept in the shell "
            f"history and shown by ps. Set the provider's variable ({key_variables()}) or use "
            "--api-key-file PATH"
        )


def key_variables() -> str:
    """``eachlabs: EACHLABS_API_KEY; fal: FAL_KEY; ...``: where each provider's key is read
    from (every variable, where a provider has several)."""
    return "; ".join(
        f"{name}: {' or '.join(cls.key_variables())}" for name, cls in all_providers().items()
    )


def add_provider_options(p: argparse.ArgumentParser, *, in_process: bool) -> None:
    """``--provider``, ``--emulator``, ``--base-url``, ``--time-scale``, ``--api-key-file``.

    ``in_process``: ``--emulator`` starts an emulator in this process (``generate``,
    ``batch``); otherwise it means the one ``ltx2 emulator`` runs (``status``, ``cancel``).
    """
    g = p.add_argument_group("provider")
    in_process_scale = (
        f"; with --emulator {EMULATOR_TIME_SCALE:g}, which also scales its clock"
        if in_process
        else ""
    )
    g.add_argument(
        "--provider",
        default="eachlabs",
        type=str.lower,
        choices=ltx2.PROVIDERS,
        help="default: %(default)s",
    )
    g.add_argument(
        "--emulator",
        action="store_true",
        help="run against the built-in emulator in this process (no network, no key)"
        if in_process
        else f"talk to the emulator `ltx2 emulator` runs on 127.0.0.1:{EMULATOR_PORT} (no key)",
    )
    g.add_argument(
        "--base-url",
        default=None,
        metavar="URL",
        help="the provider's API at another address (a proxy, or an emulator's URL/PROVIDER)",
    )
    g.add_argument(
        "--time-scale",
        type=float,
        default=None,
        metavar="X",
        help="the provider's time × X: scales the poll schedule and limit windows, for an "
        "emulator with a time scale (default 1" + in_process_scale + ")",
    )
    g.add_argument(
        "--api-key-file",
        default=None,
        metavar="PATH",
        help="read the API key from this file (default: the provider's environment variable; "
        "a key is never taken on the command line)",
    )
    g.add_argument(
        "--api-key", nargs="?", action=_RefuseKeyValue, default=None, help=argparse.SUPPRESS
    )


def add_webhook_options(p: argparse.ArgumentParser, *, what: str) -> None:
    """``--webhook-url`` and ``--listen`` (a receiver this command runs)."""
    p.add_argument(
        "--webhook-url",
        default=None,
        metavar="URL",
        help="public URL of a webhook receiver this command runs (see --listen); "
        f"without it {what} polled",
    )
    p.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="where the receiver listens with --webhook-url (default: %(default)s)",
    )


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) → ``(host, port)``; InvalidRequestError if not."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ltx2.InvalidRequestError(
            f"listen: {value!r} is not HOST:PORT",
            field="listen",
            value=value,
            allowed="HOST:PORT, e.g. 127.0.0.1:8080",
        )
    return host, int(port)


def _bad(field: str, value: Any, message: str, allowed: str) -> ltx2.InvalidRequestError:
    return ltx2.InvalidRequestError(
        f"{field}: {message}", field=field, value=value, allowed=allowed
    )


@dataclass(frozen=True, slots=True)
class Connection:
    """Where a command's client talks to: ``client``, the ``base_url`` it uses (None: the
    provider's own), whether the emulator runs in this process, the receiver it runs, and
    the time scale (provider seconds × it = wall seconds)."""

    client: ltx2.Client
    base_url: str | None
    in_process: bool
    receiver: ltx2.WebhookReceiver | None
    time_scale: float = 1.0


def check_provider_options(args: argparse.Namespace, *, in_process: bool) -> float:
    """Validate the shared options (exit 2 on bad ones, before anything starts); returns the
    time scale to use."""
    scale = args.time_scale
    if scale is None:
        scale = EMULATOR_TIME_SCALE if args.emulator and in_process else 1.0
        if not args.emulator and not args.base_url:
            # LTX2_EMULATOR_URL / LTX2_TIME_SCALE: what the client itself would use.
            found = emulator_from_env(args.provider)
            if found is not None and found[1] is not None:
                scale = found[1]
    if not (math.isfinite(scale) and scale > 0):
        raise _bad("time_scale", scale, f"{scale} is not a positive number", "> 0")
    if args.emulator:
        given = [
            option
            for option, value in (
                ("--base-url", args.base_url),
                ("--api-key-file", args.api_key_file),
                ("--webhook-url", getattr(args, "webhook_url", None)),
            )
            if value
        ]
        if given:
            what = "runs its own provider and receiver" if in_process else "needs no key"
            raise _bad(
                "emulator",
                True,
                f"--emulator {what}; it cannot be combined with {', '.join(given)}",
                "--emulator without --base-url, --api-key-file and --webhook-url",
            )
    return float(scale)


def read_key_file(path: str) -> str:
    """The key in ``path``, surrounding whitespace removed (a blank one is refused by the
    client, as a blank environment variable is). Never shown in any message."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise _bad(
            "api_key_file", path, f"cannot read {path!r} ({reason})", "a readable file"
        ) from None


async def open_client(
    args: argparse.Namespace,
    stack: contextlib.AsyncExitStack,
    console: Console | None = None,
    *,
    in_process: bool,
    webhooks: bool = False,
    render: str = "full",
    store: ltx2.Store | None = None,
) -> Connection:
    """The client the shared options describe, entered on ``stack`` (closed with it).

    ``webhooks``: run a webhook receiver (``--webhook-url``/``--listen``; with an in-process
    emulator, one on a free loopback port). ``store``: the client's store (not used with an
    in-process emulator, whose jobs end with it); the caller closes it. A missing or blank
    key raises :class:`ltx2.AuthenticationError` before any port is bound or request sent.
    """
    provider = ltx2.providers.normalize(args.provider)
    scale = check_provider_options(args, in_process=in_process)
    if args.emulator and in_process:
        return await _in_process(
            args, stack, console, scale=scale, webhooks=webhooks, render=render
        )

    base_url: str | None = args.base_url
    api_key: str | None = None
    if args.emulator:
        base_url = f"http://127.0.0.1:{EMULATOR_PORT}/{provider}"
        api_key = EMULATOR_KEY
    elif args.api_key_file:
        api_key = read_key_file(args.api_key_file)
    webhook_url = getattr(args, "webhook_url", None) if webhooks else None
    receiver = ltx2.WebhookReceiver(public_url=webhook_url) if webhook_url else None
    listen = parse_listen(args.listen) if receiver is not None else None
    # Made before the receiver binds: a missing key binds no port and sends nothing.
    client = ltx2.Client(
        provider,
        api_key=api_key,
        base_url=base_url,
        webhooks=receiver,
        store=store,
        time_scale=scale,
    )
    if receiver is not None and listen is not None:
        await receiver.start(*listen)
        stack.push_async_callback(receiver.stop)
        if console is not None:
            console.print(
                f"webhook receiver on {listen[0]}:{listen[1]} for {receiver.public_url}",
                markup=False,
                highlight=False,
            )
    await stack.enter_async_context(client)
    return Connection(client, base_url, False, receiver, scale)


async def _in_process(
    args: argparse.Namespace,
    stack: contextlib.AsyncExitStack,
    console: Console | None,
    *,
    scale: float,
    webhooks: bool,
    render: str,
) -> Connection:
    from ltx2.emulator import Emulator

    from ._demo import emulator_receiver

    provider = ltx2.providers.normalize(args.provider)
    emu = await stack.enter_async_context(
        Emulator(time_scale=scale, host="127.0.0.1", port=0, render=render)
    )
    receiver: ltx2.WebhookReceiver | None = None
    options: dict[str, Any] = {}
    if webhooks:
        receiver, options = emulator_receiver(emu, provider)
        await receiver.start("127.0.0.1", 0)
        stack.push_async_callback(receiver.stop)
    elif provider == "fal":
        options = {"storage_url": emu.fal_storage_url}
    if console is not None:
        hooks = f", webhook receiver at {receiver.public_url}" if receiver is not None else ""
        console.print(
            f"[dim]emulator at {emu.url}{hooks}, time scale {scale:g}[/dim]", soft_wrap=True
        )
    base_url = emu.provider_url(provider)
    client = ltx2.Client(
        provider,
        api_key=EMULATOR_KEY,
        base_url=base_url,
        webhooks=receiver,
        time_scale=scale,
        **options,
    )
    await stack.enter_async_context(client)
    return Connection(client, base_url, True, receiver, scale)


def status_command(args: argparse.Namespace, job_id: str, *, in_process: bool) -> str:
    """The exact ``ltx2 status`` command that follows ``job_id`` with the same provider,
    address and key source as this command (``in_process``: this command ran the emulator,
    which is gone once it exits)."""
    parts = ["ltx2", "status", job_id, "--provider", args.provider]
    if args.emulator and not in_process:
        parts.append("--emulator")
    if args.base_url:
        parts += ["--base-url", args.base_url]
    if args.api_key_file:
        parts += ["--api-key-file", os.path.abspath(args.api_key_file)]
    return shlex.join(parts)
