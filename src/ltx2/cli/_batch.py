"""``ltx2 batch FILE.jsonl``: many generations from a file, ``--concurrency`` at a time.

Each line of the file is a JSON object of :class:`ltx2.VideoRequest` fields (``image`` may be
a path relative to the file's folder, an https URL or a data URI) and an optional ``"name"``,
the output's file stem (default: the line number, ``0001``)::

    {"image": "cats/tabby.jpg", "prompt": "The cat yawns", "name": "tabby"}
    {"image": "https://example.com/dog.png", "prompt": "The dog runs", "duration": 8}

Videos go to ``OUT_DIR/<name>.mp4``. A line whose video is already there is skipped, so
running the same file again resumes it; a bad line is reported (line number and field) and
never stops the others. ``OUT_DIR/report.jsonl`` gets one object per line: ``line``,
``name``, ``provider``, ``id``, ``status`` (``succeeded``, ``failed``, ``cancelled``,
``skipped``, ``interrupted``), ``seconds`` (submitted to finished), ``file`` and ``error``.

A job is never paid for twice: its id goes to ``OUT_DIR/.ltx2-batch-jobs.jsonl`` (appended and
flushed) the moment the provider gives it, and the client keeps its records in
``OUT_DIR/.ltx2-batch-jobs.sqlite3`` (:class:`ltx2.SQLiteStore`). Ctrl-C or SIGTERM stop the
run without cancelling anything (exit 130 / 143): the jobs in flight keep running, the report
lists them as ``interrupted`` with their ids, and the next run picks them up by id
(``client.resume()``) instead of submitting them again, also after a ``kill -9``. A line
whose request, provider or ``--base-url`` changed since is a new job.

Progress goes to stderr (a rich bar with per-status counts on a terminal, one line per
finished job otherwise), the summary to stdout. Exit code 0 when every line succeeded or was
skipped, 1 when any failed, 2 for a file that cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import re
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ltx2

from . import invalid_request_message
from ._connect import check_provider_options, open_client, parse_listen
from ._signals import Interrupts, exit_code

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = ["Journal", "Line", "Outcome", "batch", "read_lines"]

#: A name becomes a file name: letters, digits, ``.``, ``_`` and ``-``, not starting with ``.``.
_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
#: ``scheme:`` at the start of an image string: a URL or a data URI, not a relative path.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
REPORT = "report.jsonl"
#: Every job id as soon as the provider gave it, and every end, one JSON object per line,
#: appended and flushed at once: what a rerun re-attaches from, even after a kill -9.
JOURNAL = ".ltx2-batch-jobs.jsonl"
#: The client's job records (:class:`ltx2.SQLiteStore`), so a rerun can ``resume()`` them.
STORE = ".ltx2-batch-jobs.sqlite3"
#: How often a re-attached job the store no longer holds is read: a tenth of the provider's
#: shortest stated time (scaled), within these bounds.
FOLLOW_MIN_INTERVAL = 0.05
FOLLOW_MAX_INTERVAL = 15.0
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


@dataclass(frozen=True, slots=True)
class Known:
    """What the journal last said of a name: the job's id, the fingerprint of the request
    and target it was made for, and ``submitted`` or how it ended."""

    id: str
    fingerprint: str
    status: str


class Journal:
    """``OUT_DIR/.ltx2-batch-jobs.jsonl``: one line per job submitted and per job ended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: Any = None

    def read(self) -> dict[str, Known]:
        """The last record of each name. A torn last line (the process was killed while it
        wrote) and anything else unreadable is passed over."""
        known: dict[str, Known] = {}
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return known
        for raw in text.splitlines():
            try:
                record = json.loads(raw)
                name, job_id = record["name"], record["id"]
                fingerprint, status = record["fingerprint"], record["status"]
            except (ValueError, KeyError, TypeError):
                continue
            if all(isinstance(v, str) for v in (name, job_id, fingerprint, status)):
                known[name] = Known(job_id, fingerprint, status)
        return known

    def __enter__(self) -> Journal:
        self._fh = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def write(self, line: Line, job_id: str, fingerprint: str, status: str) -> None:
        if self._fh is None:
            return
        record = {"name": line.name, "line": line.number, "id": job_id,
                  "fingerprint": fingerprint, "status": status}  # fmt: skip
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()


def fingerprint(args: argparse.Namespace, request: ltx2.VideoRequest) -> str:
    """What a job was made for: the provider, its address and the request's fields. A rerun
    re-attaches a name's job only when this is unchanged (an edited line is a new job)."""
    fields = request.model_dump(mode="json")
    what = json.dumps([args.provider, args.base_url or "", fields], sort_keys=True, default=str)
    return hashlib.sha256(what.encode()).hexdigest()[:32]


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
    # Jobs an earlier run submitted and did not see through (interrupted, killed, or its
    # download lost) are picked up again by id, never submitted twice. An emulator that ran
    # in process took its jobs with it.
    journal = Journal(out_dir / JOURNAL)
    known = {} if args.emulator else journal.read()
    attach: dict[int, str] = {}
    for line in to_run:
        assert line.request is not None
        seen = known.get(line.name)
        if (
            seen is not None
            and seen.status in ("submitted", "succeeded")
            and seen.fingerprint == fingerprint(args, line.request)
        ):
            attach[line.number] = seen.id
    skipped = sum(o.status == "skipped" for o in outcomes.values())
    again = f" ({len(attach)} already submitted: picked up again)" if attach else ""
    err.print(
        f"{path}: {len(lines)} lines; {len(to_run)} to run{again}, {skipped} already on disk, "
        f"{len(outcomes) - skipped} invalid; videos in {out_dir}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )

    run = _Run(args, to_run, out_dir, outcomes, attach, journal)
    signum: int | None = None
    status, reason = "cancelled", "interrupted before it finished"
    try:
        if to_run:
            # An in-process emulator's ids die with it: they are not journaled.
            keep = journal if not args.emulator else contextlib.nullcontext()
            with _Display(err, len(to_run)) as display, keep:
                signum = await run.run(display)
    except Exception as exc:  # e.g. no API key: the lines not run are failed, with why
        status, reason = "failed", f"not run: {exc or type(exc).__name__}"
        raise
    finally:
        # Also when stopped early: what finished is reported, and the rest with the reason.
        for line in to_run:
            outcomes.setdefault(line.number, run.unfinished(line, status, reason, signum))
        report = _write_report(out_dir, outcomes)
    _summary(args, lines, outcomes, report, time.monotonic() - began)
    if signum is not None:
        running = sum(o.status == "interrupted" and o.id is not None for o in outcomes.values())
        where = (
            "the emulator stopped with this command"
            if args.emulator
            else f"{running} job(s) keep running at {provider}; run the same command again to "
            "pick them up (they are not submitted again)"
        )
        print(f"ltx2: interrupted; {where}", file=sys.stderr, flush=True)
        return exit_code(signum)
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


class _Run:
    """One batch run: the fan-out of the fresh lines and the re-attached jobs of earlier
    runs, each recorded in the journal as soon as its id is known."""

    def __init__(
        self,
        args: argparse.Namespace,
        to_run: list[Line],
        out_dir: Path,
        outcomes: dict[int, Outcome],
        attach: dict[int, str],
        journal: Journal,
    ) -> None:
        self.args = args
        self.provider: str = args.provider
        self.to_run = to_run
        self.out_dir = out_dir
        self.outcomes = outcomes
        self.attach = attach
        self.journal = journal
        self.ids: dict[int, str] = dict(attach)
        self.started: dict[int, float] = {}
        self.fingerprints = {
            line.number: fingerprint(args, line.request)
            for line in to_run
            if line.request is not None
        }
        self.display: _Display | None = None
        self.stopping = False

    def unfinished(self, line: Line, status: str, reason: str, signum: int | None) -> Outcome:
        """The report line of a line that did not finish in this run."""
        job_id = self.ids.get(line.number)
        if signum is not None:
            status = "interrupted"
            if job_id is None:
                reason = "interrupted before it was submitted"
            elif self.args.emulator:
                reason = "interrupted; the emulated job stopped with the emulator"
            else:
                reason = (
                    f"interrupted; the {self.provider} job keeps running: run the same "
                    "command again to pick it up"
                )
        return Outcome(line.number, line.name, self.provider, job_id, status, None, None, reason)

    async def run(self, display: _Display) -> int | None:
        """Run every line; the number of the signal that stopped it, if one did.

        SIGINT or SIGTERM stop it without cancelling anything: the client is closed first, so
        the jobs in flight keep running at the provider (their ids are in the journal and the
        report, their records in the store) and the next run picks them up."""
        self.display = display
        async with contextlib.AsyncExitStack() as stack:
            store: ltx2.Store | None = None
            if not self.args.emulator:
                store = ltx2.SQLiteStore(self.out_dir / STORE)
                stack.push_async_callback(store.close)
            # Against an in-process emulator (--emulator), or the provider (key from its
            # environment variable or --api-key-file), as ``ltx2 generate`` does.
            conn = await open_client(
                self.args, stack, display.console, in_process=True, webhooks=True,
                render=self.args.render, store=store,
            )  # fmt: skip
            client = conn.client
            with Interrupts() as stop:
                work = asyncio.create_task(self._work(client, conn.time_scale))
                if await stop.first(work):
                    self.stopping = True
                    await client.aclose()  # nothing is cancelled: the jobs run on
                    work.cancel()
                    with contextlib.suppress(Exception, asyncio.CancelledError):
                        await work
                    return stop.signum
                work.result()
        return None

    async def _work(self, client: ltx2.Client, time_scale: float) -> None:
        fresh = [line for line in self.to_run if line.number not in self.attach]
        resumed: dict[str, ltx2.Job] = {}
        if self.attach:
            resumed = {job.id: job for job in await client.resume() if job.id}
        downloads = asyncio.Semaphore(self.args.concurrency)
        async with asyncio.TaskGroup() as tg:
            for line in self.to_run:
                job_id = self.attach.get(line.number)
                if job_id is not None:
                    job = resumed.get(job_id)
                    attached = job is not None
                    if job is None:
                        job = client.job(job_id)
                    tg.create_task(self._follow(client, line, job, attached, time_scale, downloads))
            if fresh:
                tg.create_task(self._fan_out(client, fresh))

    async def _fan_out(self, client: ltx2.Client, fresh: list[Line]) -> None:
        """``--concurrency`` workers, each taking the next line when free: submit it, put the
        job's id in the journal at once (before anything else can go wrong), wait for the
        job and save its video. Built on ``client.submit`` rather than ``as_completed``,
        which would cancel the jobs in flight when stopped: a batch stopped early leaves
        them running, to be picked up by the next run."""
        assert self.display is not None
        display = self.display
        pending = iter(fresh)

        async def worker() -> None:
            for line in pending:
                assert line.request is not None
                self.started[line.number] = time.monotonic()
                display.started()
                try:
                    job = await client.submit(line.request)
                except Exception as exc:  # refused input, an API error: this line only
                    self._record(line, None, "failed", None, str(exc) or type(exc).__name__)
                    continue
                self.ids[line.number] = job.id
                self.journal.write(line, job.id, self.fingerprints[line.number], "submitted")
                await self._finish(line, job)

        async with asyncio.TaskGroup() as tg:
            for _ in range(min(self.args.concurrency, len(fresh))):
                tg.create_task(worker())

    async def _follow(
        self,
        client: ltx2.Client,
        line: Line,
        job: ltx2.Job,
        attached: bool,
        time_scale: float,
        downloads: asyncio.Semaphore,
    ) -> None:
        """Wait for a job an earlier run submitted, then save it like any other. A job
        ``resume()`` gave back is followed by the client (poller, webhooks); one the store
        no longer holds (it ended, or the store is gone) is read here until it ends."""
        assert self.display is not None
        self.started[line.number] = time.monotonic()
        self.display.started()
        error: Exception | None = None
        if not attached:
            low, _high = client.capabilities.expected_seconds
            interval = min(FOLLOW_MAX_INTERVAL, max(FOLLOW_MIN_INTERVAL, low * 0.1 * time_scale))
            try:
                await job.refresh()
                while not job.done:
                    await asyncio.sleep(interval)
                    await job.refresh()
            except ltx2.LTX2Error as exc:  # e.g. 404: the provider no longer knows it
                error = exc
        async with downloads:
            await self._finish(line, job, error)

    async def _finish(self, line: Line, job: ltx2.Job, failed: Exception | None = None) -> None:
        # Everything that can go wrong is caught here, per line.
        target = self.out_dir / f"{line.name}.mp4"
        status: str = "succeeded"
        file: str | None = str(target)
        error: str | None = None
        try:
            if failed is not None:
                raise failed
            video = await job
            await video.save(target)
        except ltx2.JobCancelledError as exc:
            status, file, error = "cancelled", None, str(exc)
        except (ltx2.LTX2Error, OSError) as exc:
            status, file, error = "failed", None, str(exc) or type(exc).__name__
        self._record(line, job.id or None, status, file, error)

    def _record(
        self, line: Line, job_id: str | None, status: str, file: str | None, error: str | None
    ) -> None:
        assert self.display is not None
        if self.stopping:
            return  # stopped by a signal: the client's closing is no outcome of the job
        if job_id:
            self.ids[line.number] = job_id
            self.journal.write(line, job_id, self.fingerprints[line.number], status)
        seconds = round(time.monotonic() - self.started[line.number], 3)
        outcome = Outcome(line.number, line.name, self.provider, job_id, status, seconds, file,
                          error)  # fmt: skip
        self.outcomes[line.number] = outcome
        self.display.ended(outcome)


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
        ("interrupted", "yellow"),
    ):
        if status == "interrupted" and not counts[status]:
            continue
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
