"""``ltx2 batch FILE.jsonl``: many generations from a file, through ``Client.as_completed``.

Each line of the file is a JSON object of :class:`ltx2.VideoRequest` fields (``image`` may be
a path relative to the file's folder, an https URL or a data URI) and an optional ``"name"``,
the output's file stem (default: the line number, ``0001``)::

    {"image": "cats/tabby.jpg", "prompt": "The cat yawns", "name": "tabby"}
    {"image": "https://example.com/dog.png", "prompt": "The dog runs", "duration": 8}

Videos go to ``OUT_DIR/<name>.mp4``. A line whose video is already there is skipped, so
running the same file again resumes it; a bad line is reported (line number and field) and
never stops the others. ``OUT_DIR/report.jsonl`` gets one object per line: ``line``,
``name``, ``provider``, ``id``, ``status`` (``succeeded``, ``failed``, ``cancelled``,
``skipped``), ``seconds`` (submitted to finished), ``file`` and ``error``.

Progress goes to stderr (a rich bar with per-status counts on a terminal, one line per
finished job otherwise), the summary to stdout. Exit code 0 when every line succeeded or was
skipped, 1 when any failed, 2 for a file that cannot be read.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ltx2

from . import invalid_request_message
from ._connect import check_provider_options, open_client, parse_listen

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = ["Line", "Outcome", "batch", "read_lines"]

#: A name becomes a file name: letters, digits, ``.``, ``_`` and ``-``, not starting with ``.``.
_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
#: ``scheme:`` at the start of an image string: a URL or a data URI, not a relative path.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
REPORT = "report.jsonl"
#: How many failures the summary lists (all are in the report).
SHOWN_FAILURES = 20


@dataclass(slots=True)
class Line:
    """One non-blank line of the file: its request, or why it has none."""

    number: int
    name: str
    request: ltx2.VideoRequest | None = None
    error: str | None = None


@dataclass(slots=True)
class Outcome:
    """One line of ``report.jsonl``."""

    line: int
    name: str
    provider: str
    id: str | None
    status: str
    seconds: float | None
    file: str | None
    error: str | None


def read_lines(path: Path) -> list[Line]:
    """Parse the JSONL file. A file that cannot be read raises
    :class:`ltx2.InvalidRequestError` (exit 2); a bad line becomes a :class:`Line` with an
    ``error`` naming its number and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ltx2.InvalidRequestError(
            f"file: cannot read {os.fspath(path)!r} ({reason})",
            field="file", value=os.fspath(path), allowed="a readable UTF-8 JSONL file",
        ) from None  # fmt: skip
    numbered = [(n, raw) for n, raw in enumerate(text.splitlines(), 1) if raw.strip()]
    width = max(4, len(str(numbered[-1][0]))) if numbered else 4
    lines: list[Line] = []
    used: dict[str, int] = {}
    for number, raw in numbered:
        line = _parse(number, raw, width, path.parent)
        if line.error is None and line.name in used:
            line.error = f"name: {line.name!r} is already used by line {used[line.name]}"
            line.request = None
        used.setdefault(line.name, number)
        if line.error is not None:
            line.error = f"line {number}: {line.error}"
        lines.append(line)
    return lines


def _parse(number: int, raw: str, width: int, base: Path) -> Line:
    line = Line(number, f"{number:0{width}d}")
    try:
        fields = json.loads(raw)
    except ValueError as exc:
        line.error = f"not valid JSON ({exc})"
        return line
    if not isinstance(fields, dict):
        line.error = f"expected a JSON object of VideoRequest fields, got {type(fields).__name__}"
        return line
    name = fields.pop("name", None)
    if name is not None:
        if not isinstance(name, str) or not _NAME.match(name):
            line.error = (
                f"name: {name!r} is not a file name (letters, digits, '.', '_', '-'; "
                "at most 128; not starting with '.')"
            )
            return line
        line.name = name
    image = fields.get("image")
    if isinstance(image, str) and image and not _SCHEME.match(image):
        local = Path(image).expanduser()
        fields["image"] = os.fspath(local if local.is_absolute() else base / local)
    try:
        line.request = ltx2.VideoRequest(**fields)
    except ltx2.InvalidRequestError as exc:
        line.error = invalid_request_message(exc)
    return line


class _Display:
    """Per-status counts, shown as a rich bar on a terminal or as plain lines otherwise."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.total = total
        self.counts: Counter[str] = Counter(queued=total)
        self.finished = 0
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> _Display:
        if self.console.is_terminal and self.total:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]batch"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[counts]}"),
                console=self.console,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("batch", total=self.total, counts=self._counts())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._refresh()
            self._bar.__exit__(None, None, None)

    def _counts(self) -> str:
        c = self.counts
        return (
            f"queued {c['queued']} · running {c['running']} · [green]succeeded "
            f"{c['succeeded']}[/green] · [red]failed {c['failed'] + c['cancelled']}[/red]"
        )

    def _refresh(self) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.finished, counts=self._counts())

    def started(self) -> None:
        self.counts["queued"] -= 1
        self.counts["running"] += 1
        self._refresh()

    def ended(self, outcome: Outcome) -> None:
        self.counts["running"] -= 1
        self.counts[outcome.status] += 1
        self.finished += 1
        self._refresh()
        # Without a bar every line is told; with one, only the lines that went wrong (above
        # the bar), the rest being in its counts.
        if self._bar is None or outcome.status != "succeeded":
            what = f"line {outcome.line} ({outcome.name}): {outcome.status}"
            if outcome.seconds is not None:
                what += f" in {outcome.seconds:.1f} s"
            what += f" -> {outcome.file}" if outcome.file else f": {outcome.error}"
            console = self._bar.console if self._bar is not None else self.console
            console.print(
                f"[{self.finished}/{self.total}] {what}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )


async def batch(args: argparse.Namespace) -> int:
    """Run the batch; returns the exit code."""
    from rich.console import Console

    began = time.monotonic()
    err = Console(stderr=True)
    path = Path(args.file)
    lines = read_lines(path)
    provider: str = args.provider
    out_dir = Path(args.out_dir) if args.out_dir else path.with_name(f"{path.stem}-videos")
    _check_args(args, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    outcomes: dict[int, Outcome] = {}
    to_run: list[Line] = []
    for line in lines:
        target = out_dir / f"{line.name}.mp4"
        if line.request is None:
            outcomes[line.number] = Outcome(
                line.number, line.name, provider, None, "failed", None, None, line.error
            )
        elif target.exists():  # saved by an earlier run (Video.save writes atomically)
            outcomes[line.number] = Outcome(
                line.number, line.name, provider, None, "skipped", None, str(target), None
            )
        else:
            to_run.append(line)
    skipped = sum(o.status == "skipped" for o in outcomes.values())
    err.print(
        f"{path}: {len(lines)} lines; {len(to_run)} to run, {skipped} already on disk, "
        f"{len(outcomes) - skipped} invalid; videos in {out_dir}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )

    status, reason = "cancelled", "interrupted before it finished"
    try:
        if to_run:
            with _Display(err, len(to_run)) as display:
                await _run(args, to_run, out_dir, outcomes, display)
    except Exception as exc:  # e.g. no API key: the lines not run are failed, with why
        status, reason = "failed", f"not run: {exc or type(exc).__name__}"
        raise
    finally:
        # Also when stopped early: what finished is reported, and the rest with the reason.
        for line in to_run:
            outcomes.setdefault(
                line.number,
                Outcome(line.number, line.name, provider, None, status, None, None, reason),
            )
        report = _write_report(out_dir, outcomes)
    _summary(args, lines, outcomes, report, time.monotonic() - began)
    ok = all(o.status in ("succeeded", "skipped") for o in outcomes.values())
    return 0 if ok else 1


def _check_args(args: argparse.Namespace, out_dir: Path) -> None:
    def bad(field: str, value: Any, message: str, allowed: str) -> ltx2.InvalidRequestError:
        return ltx2.InvalidRequestError(
            f"{field}: {message}", field=field, value=value, allowed=allowed
        )

    if args.concurrency < 1:
        raise bad("concurrency", args.concurrency, f"{args.concurrency} is below 1", ">= 1")
    if out_dir.exists() and not out_dir.is_dir():
        raise bad("out_dir", str(out_dir), f"{str(out_dir)!r} is not a folder", "a folder")
    check_provider_options(args, in_process=True)
    if args.webhook_url:
        parse_listen(args.listen)


async def _run(
    args: argparse.Namespace,
    to_run: list[Line],
    out_dir: Path,
    outcomes: dict[int, Outcome],
    display: _Display,
) -> None:
    provider: str = args.provider
    by_request = {id(line.request): line for line in to_run}
    started: dict[int, float] = {}

    def requests() -> Iterator[ltx2.VideoRequest]:
        # Pulled by the fan-out one at a time, as slots free up: that is when a line starts.
        for line in to_run:
            assert line.request is not None
            started[line.number] = time.monotonic()
            display.started()
            yield line.request

    async def on_progress(done: int, total: int | None, job: ltx2.Job) -> None:
        # Runs as each job finishes, inside its fan-out slot: the download is bounded by
        # --concurrency too. Everything that can go wrong is caught here, per line.
        line = by_request[id(job.request)]
        seconds = round(time.monotonic() - started[line.number], 3)
        target = out_dir / f"{line.name}.mp4"
        status: str = "succeeded"
        file: str | None = str(target)
        error: str | None = None
        try:
            video = await job
            await video.save(target)
        except ltx2.JobCancelledError as exc:
            status, file, error = "cancelled", None, str(exc)
        except (ltx2.LTX2Error, OSError) as exc:
            status, file, error = "failed", None, str(exc) or type(exc).__name__
        outcome = Outcome(line.number, line.name, provider, job.id or None, status, seconds,
                          file, error)  # fmt: skip
        outcomes[line.number] = outcome
        display.ended(outcome)

    async with contextlib.AsyncExitStack() as stack:
        # Against an in-process emulator (--emulator), or the provider (key from its
        # environment variable or --api-key-file), as ``ltx2 generate`` does.
        conn = await open_client(
            args, stack, display.console, in_process=True, webhooks=True, render=args.render
        )
        client = conn.client
        jobs = client.as_completed(
            requests(), concurrency=args.concurrency, on_progress=on_progress
        )
        async with contextlib.aclosing(jobs):
            async for _job in jobs:
                pass  # on_progress has recorded and saved it


def _write_report(out_dir: Path, outcomes: dict[int, Outcome]) -> Path:
    report = out_dir / REPORT
    partial = out_dir / f".{REPORT}.part"
    with partial.open("w", encoding="utf-8") as fh:
        for number in sorted(outcomes):
            fh.write(json.dumps(asdict(outcomes[number])) + "\n")
    os.replace(partial, report)
    return report


def _summary(
    args: argparse.Namespace,
    lines: list[Line],
    outcomes: dict[int, Outcome],
    report: Path,
    wall: float,
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    counts = Counter(o.status for o in outcomes.values())
    table = Table(title="ltx2 batch", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("file", str(args.file))
    table.add_row("provider", args.provider + (" (emulated)" if args.emulator else ""))
    table.add_row("lines", str(len(lines)))
    for status, style in (
        ("succeeded", "green"),
        ("skipped", "dim"),
        ("failed", "red"),
        ("cancelled", "red"),
    ):
        table.add_row(status, f"[{style}]{counts[status]}[/{style}]")
    table.add_row("wall time", f"{wall:.1f} s")
    table.add_row("report", str(report))
    console.print(table)

    bad = [o for o in sorted(outcomes.values(), key=lambda o: o.line) if o.error]
    if bad:
        failures = Table(title="not done", title_justify="left")
        for column in ("line", "name", "status", "id", "error"):
            failures.add_column(column, overflow="fold")
        for o in bad[:SHOWN_FAILURES]:
            failures.add_row(str(o.line), o.name, o.status, o.id or "", o.error or "")
        if len(bad) > SHOWN_FAILURES:
            failures.caption = f"and {len(bad) - SHOWN_FAILURES} more in {report}"
        console.print(failures)
