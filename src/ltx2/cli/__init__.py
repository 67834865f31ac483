"""The ``ltx2`` command line.

::

    ltx2 demo                                  # emulator + receiver in process, one real MP4
    ltx2 generate cat.jpg "The cat yawns"      # a real call (key from the provider's env var)
    ltx2 batch lines.jsonl --concurrency 20    # one job per JSONL line; a rerun resumes
    ltx2 status ID --provider fal              # one status request
    ltx2 cancel ID --provider fal
    ltx2 emulator --port 8000                  # every provider's API on localhost
    ltx2 receiver --redis URL --port 8080      # webhooks for every replica, into Redis

Exit codes: 0 success; 2 bad input (an :class:`ltx2.InvalidRequestError`, bad arguments, or no
API key: nothing was sent); 1 a job that failed, was cancelled or timed out, or an API or
transport error; 130 when interrupted by Ctrl-C (SIGINT), 143 by SIGTERM. Errors go to stderr,
and no message ever carries an API key.

The commands that talk to a provider (``generate``, ``batch``, ``status``, ``cancel``) share
``--provider``, ``--emulator``, ``--base-url``, ``--time-scale`` and ``--api-key-file``
(:mod:`ltx2.cli._connect`). Keys come from the environment or ``--api-key-file``, never from a
command-line value.

The commands use only ltx2's public API, so they double as examples of it. rich, PyAV,
Pillow and the emulator are imported inside the commands that need them, so ``ltx2 --help``
is quick and ``ltx2 status`` works without the ``emulator`` extra.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import ltx2

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
#: 128 + SIGINT, the shell's code for a command stopped by Ctrl-C (SIGTERM: 128 + 15).
EXIT_INTERRUPTED = 130

#: A sub-command: takes the parsed arguments, returns the exit code. Errors it raises are
#: mapped to exit codes by :func:`run`.
Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ltx2`` command line with ``argv`` (default ``sys.argv[1:]``); return the
    exit code. The console script exits with it (``sys.exit(main())``)."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and not getattr(args, "passthrough", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, or an argparse error (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    args.extra = extra
    if args.verbose:
        logging.basicConfig(
            level=logging.DEBUG if args.verbose > 1 else logging.INFO,
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
        )
    command: Command | None = getattr(args, "run", None)
    if command is None:
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    return run(command, args)


def run(command: Command, args: argparse.Namespace) -> int:
    """Run one command and map ltx2's errors to exit codes and messages on stderr."""
    try:
        return command(args)
    except ltx2.InvalidRequestError as exc:
        fail(invalid_request_message(exc))
        return EXIT_BAD_INPUT
    except ltx2.AuthenticationError as exc:
        if exc.status_code is not None:  # the provider refused the key: an API error
            fail(str(exc))
            return EXIT_FAILED
        # No key, or a blank one: bad input, found before any request was sent.
        fail(f"{exc} (or use --api-key-file PATH)")
        return EXIT_BAD_INPUT
    except ltx2.LTX2Error as exc:
        fail(str(exc))
        return EXIT_FAILED
    except OSError as exc:  # a port in use, an unwritable --out, ...
        fail(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        fail("interrupted")
        return EXIT_INTERRUPTED


def _in_loop(command: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]) -> Command:
    """An async command, run in a fresh event loop by ``asyncio.run``."""

    def run_command(args: argparse.Namespace) -> int:
        return asyncio.run(command(args))

    run_command.__doc__ = command.__doc__
    return run_command


def fail(message: str) -> None:
    """Print ``ltx2: error: message`` to stderr."""
    print(f"ltx2: error: {message}", file=sys.stderr, flush=True)


def invalid_request_message(exc: ltx2.InvalidRequestError) -> str:
    """The error's message, plus the field and the allowed values when it does not say them."""
    message = str(exc)
    extra: list[str] = []
    if exc.field and not message.startswith(f"{exc.field}:"):
        extra.append(f"field: {exc.field}")
    if exc.allowed is not None:
        allowed = (
            ", ".join(map(str, exc.allowed))
            if isinstance(exc.allowed, list | tuple)
            else str(exc.allowed)
        )
        if allowed not in message:
            extra.append(f"allowed: {allowed}")
    return f"{message} ({'; '.join(extra)})" if extra else message


# -- the parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command (each sets ``run``, its coroutine)."""
    parser = argparse.ArgumentParser(
        prog="ltx2",
        description="LTX-2 Fast image-to-video on hosted providers, from the command line.",
        epilog="exit codes: 0 ok, 1 job failed/cancelled/timed out or API error, 2 bad input",
    )
    parser.add_argument("--version", action="version", version=f"ltx2 {ltx2.__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log what the SDK does (-vv: debug)"
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_demo(sub)
    _add_generate(sub)
    _add_batch(sub)
    _add_status(sub)
    _add_cancel(sub)
    _add_emulator(sub)
    _add_receiver(sub)
    return parser


def _video_args(p: argparse.ArgumentParser) -> None:
    # Deliberately no argparse `choices` on these: the SDK validates them (VideoRequest) and
    # its InvalidRequestError names the field and the allowed values (exit code 2).
    p.add_argument("--duration", type=int, default=6, help="seconds (default: %(default)s)")
    p.add_argument("--resolution", default="1080p", help="default: %(default)s")
    p.add_argument("--fps", type=int, default=25, help="default: %(default)s")


def _keys_epilog() -> str:
    from ._connect import key_variables

    return f"API keys are read from: {key_variables()}."


def _add_demo(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="generate one video against the built-in emulator (no network, no key)",
        description=(
            "Start the emulator and a webhook receiver on 127.0.0.1, generate a video of the "
            "shipped demo image with a camera move, download it, write a contact sheet of its "
            "frames and print a summary. Needs no network and no API key."
        ),
    )
    p.add_argument(
        "--provider",
        default="eachlabs",
        type=str.lower,
        choices=ltx2.PROVIDERS,
        help="default: %(default)s",
    )
    p.add_argument("--out", default="ltx2-demo.mp4", help="the MP4 to write (default: %(default)s)")
    p.add_argument(
        "--time-scale",
        type=float,
        default=0.05,
        help="emulated provider time × this (default: %(default)s)",
    )
    _video_args(p)

    async def run_demo(args: argparse.Namespace) -> int:
        from ._demo import demo

        return await demo(args)

    p.set_defaults(run=_in_loop(run_demo))


def _add_generate(sub: Any) -> None:
    from ._connect import add_provider_options, add_webhook_options

    p: argparse.ArgumentParser = sub.add_parser(
        "generate",
        help="generate a video from an image at a provider",
        description=(
            "Submit one image-to-video job, show its progress, and download the video. "
            "Ctrl-C (or SIGTERM) cancels the job at the provider where it can, and otherwise "
            "prints its id and the ltx2 status command that follows it."
        ),
        epilog=_keys_epilog(),
    )
    p.add_argument("image", metavar="IMAGE", help="a local path, an https URL or a data URI")
    p.add_argument("prompt", metavar="PROMPT", help="what should happen in the video")
    add_provider_options(p, in_process=True)
    _video_args(p)
    p.add_argument("--no-audio", action="store_true", help="no generated soundtrack")
    p.add_argument(
        "--camera-motion", default=None, help="GMI Cloud's camera motion (e.g. dolly_in)"
    )
    p.add_argument("--out", default="video.mp4", help="the MP4 to write (default: %(default)s)")
    add_webhook_options(p, what="the job is")
    p.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait (default: %(default)s)"
    )

    async def run_generate(args: argparse.Namespace) -> int:
        from ._generate import generate

        return await generate(args)

    p.set_defaults(run=_in_loop(run_generate))


def _add_batch(sub: Any) -> None:
    from ._connect import add_provider_options, add_webhook_options

    p: argparse.ArgumentParser = sub.add_parser(
        "batch",
        help="generate one video per line of a JSONL file, many at once; a rerun resumes",
        description=(
            "Each line is a JSON object of VideoRequest fields (image: a path relative to the "
            "file, an https URL or a data URI; prompt; duration, resolution, fps, ...) and an "
            'optional "name", the output file stem (default: the line number, 0001). Videos '
            "go to OUT_DIR/<name>.mp4; lines whose video is already there are skipped, so "
            "running it again resumes. OUT_DIR/report.jsonl lists every line (line, name, "
            "provider, id, status, seconds, file, error). Each job's id is recorded the moment "
            "the provider gives it: Ctrl-C or SIGTERM stop the run without cancelling the jobs "
            "in flight, and the next run picks them up instead of submitting them again. Exit "
            "0 when every line succeeded or was skipped, 1 when any failed, 2 for a file that "
            "cannot be read, 130/143 when interrupted."
        ),
        epilog=_keys_epilog(),
    )
    p.add_argument("file", metavar="FILE.jsonl", help="one request per line")
    add_provider_options(p, in_process=True)
    p.add_argument(
        "--concurrency", type=int, default=10, help="jobs at once (default: %(default)s)"
    )
    p.add_argument(
        "--out-dir", default=None, metavar="DIR", help="default: FILE's folder/<FILE stem>-videos"
    )
    p.add_argument(
        "--render",
        choices=("full", "stub"),
        default="full",
        help="with --emulator: real MP4s, or one tiny stub clip (default: %(default)s)",
    )
    add_webhook_options(p, what="jobs are")

    async def run_batch(args: argparse.Namespace) -> int:
        from ._batch import batch

        return await batch(args)

    p.set_defaults(run=_in_loop(run_batch))


def _add_status(sub: Any) -> None:
    from ._connect import add_provider_options

    p: argparse.ArgumentParser = sub.add_parser(
        "status",
        help="read a job's status (one request)",
        description="Print a job's status, and its video URL once it succeeded.",
        epilog=_keys_epilog(),
    )
    p.add_argument("job_id", metavar="ID", help="the provider's job id")
    add_provider_options(p, in_process=False)

    async def run_status(args: argparse.Namespace) -> int:
        from ._jobs import status

        return await status(args)

    p.set_defaults(run=_in_loop(run_status))


def cancel_support() -> str:
    """Which providers can cancel a job, and how far, from their capabilities (every
    provider module counted, whichever were imported)."""
    from ltx2.providers import all_providers

    how = {"best-effort": "best effort", "queued": "queued jobs only", "any": "any job"}
    can: list[str] = []
    cannot: list[str] = []
    for name, cls in all_providers().items():
        mode = cls.capabilities.cancel
        if mode:
            can.append(f"{name} ({how.get(mode, mode)})")
        else:
            cannot.append(name)
    text = f"Providers that can cancel: {', '.join(can) or 'none'}."
    if cannot:
        text += f" {' and '.join(cannot)} cannot: the job runs to its end."
    return text


def _add_cancel(sub: Any) -> None:
    from ._connect import add_provider_options

    support = cancel_support()
    p: argparse.ArgumentParser = sub.add_parser(
        "cancel",
        help="cancel a job (where the provider can)",
        description=f"Ask the provider to cancel a job. {support}",
        epilog=_keys_epilog(),
    )
    p.add_argument("job_id", metavar="ID", help="the provider's job id")
    add_provider_options(p, in_process=False)

    async def run_cancel(args: argparse.Namespace) -> int:
        from ._jobs import cancel

        return await cancel(args)

    p.set_defaults(run=_in_loop(run_cancel))


def _add_emulator(sub: Any) -> None:
    # The emulator package has its own command line (also `python -m ltx2.emulator`); every
    # argument after `ltx2 emulator`, --help included, goes to it.
    p: argparse.ArgumentParser = sub.add_parser(
        "emulator",
        add_help=False,
        help="run the local emulator of every provider's API until Ctrl-C "
        "(ltx2 emulator --help for its options)",
    )

    def run_emulator(args: argparse.Namespace) -> int:
        """Run ``ltx2.emulator.main`` with the remaining arguments."""
        from ltx2.emulator import main as emulator_main

        try:
            emulator_main(args.extra)
        except SystemExit as exc:  # its --help, or a bad argument (already printed)
            return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
        return EXIT_OK

    p.set_defaults(run=run_emulator, passthrough=True)


def _add_receiver(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "receiver",
        help="run a webhook receiver that writes deliveries to Redis, until Ctrl-C / SIGTERM",
        description=(
            "Serve a WebhookReceiver whose deliveries go to a RedisStore, for clients on other "
            "processes or hosts that share the store. It holds no API key and resolves no job: "
            "the client that submitted a job hears its delivery through Redis. Prints "
            "'ltx2 receiver listening on URL' once it listens; SIGINT/SIGTERM stop it (exit 0)."
        ),
    )
    p.add_argument("--redis", required=True, metavar="URL", help="e.g. redis://127.0.0.1:6379/0")
    p.add_argument(
        "--prefix", default="ltx2", help="the clients' RedisStore prefix (default: %(default)s)"
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    p.add_argument(
        "--port", type=int, default=8080, help="port; 0 picks a free one (default: %(default)s)"
    )
    p.add_argument(
        "--public-url",
        default=None,
        metavar="URL",
        help="where providers reach it (behind a proxy); clients build webhook URLs from it",
    )

    async def run_receiver(args: argparse.Namespace) -> int:
        from ._receiver import receiver

        return await receiver(args)

    p.set_defaults(run=_in_loop(run_receiver))
