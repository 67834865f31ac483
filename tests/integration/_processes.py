"""Other processes for the restart and replica tests: the emulator, ``ltx2 receiver`` and
client scripts, each started with ``sys.executable`` on 127.0.0.1, waited for by the line it
prints when ready (with a deadline), and always stopped when the test ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp

__all__ = [
    "CHILD_CLIENT",
    "Process",
    "emulator_process",
    "emulator_stats",
    "ltx2_command",
    "receiver_process",
    "spawn",
]

#: The client script the tests run in child processes.
CHILD_CLIENT = Path(__file__).with_name("_child_client.py")
#: How long a process may take to print its ready line (imports, the stub clip's render).
READY_TIMEOUT = 30.0
#: How long a process has to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 10.0


def ltx2_command(*args: str) -> list[str]:
    """``ltx2 ARGS`` as the console script runs it, with this interpreter."""
    code = "import sys; from ltx2.cli import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, *args]


class Process:
    """A child process with its stdout read line by line and its stderr kept in a file."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str, stderr: Path) -> None:
        self.proc = proc
        self.name = name
        self.stderr_path = stderr
        self.lines: list[str] = []

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        """What the process wrote to stderr so far (for assertion messages)."""
        try:
            return self.stderr_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    async def read_line(self, timeout: float = READY_TIMEOUT) -> str:
        """The next line of stdout (AssertionError, with its stderr, if none comes)."""
        assert self.proc.stdout is not None
        try:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.name} printed nothing in {timeout} s; stderr:\n{self.stderr()}"
            ) from None
        if not raw:
            code = await self.proc.wait()
            raise AssertionError(f"{self.name} exited ({code}); stderr:\n{self.stderr()}")
        line = raw.decode(errors="replace").rstrip("\n")
        self.lines.append(line)
        return line

    async def wait_for_line(self, pattern: str, timeout: float = READY_TIMEOUT) -> re.Match[str]:
        """Read stdout until a line matches ``pattern``; its match."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            line = await self.read_line(max(0.01, deadline - loop.time()))
            match = re.search(pattern, line)
            if match is not None:
                return match

    async def rest_of_stdout(self) -> list[str]:
        """Every line still to come (after the process exited)."""
        assert self.proc.stdout is not None
        rest = (await self.proc.stdout.read()).decode(errors="replace").splitlines()
        self.lines.extend(rest)
        return rest

    async def wait(self, timeout: float) -> int:
        """Wait for the process to exit; its exit code (AssertionError after ``timeout``)."""
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.name} still running after {timeout} s; stderr:\n{self.stderr()}"
            ) from None

    def send_signal(self, sig: signal.Signals) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time. Idempotent."""
        if self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


@contextlib.asynccontextmanager
async def spawn(
    argv: Sequence[str], *, name: str, stderr: Path, env: dict[str, str] | None = None
) -> AsyncIterator[Process]:
    """Run ``argv``; the process is stopped (SIGTERM, then SIGKILL) when the block ends."""
    with stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=err, env=env,
        )  # fmt: skip
    process = Process(proc, name, stderr)
    try:
        yield process
    finally:
        await asyncio.shield(process.stop())


@contextlib.asynccontextmanager
async def emulator_process(tmp_path: Path, *args: str) -> AsyncIterator[tuple[Process, str]]:
    """``python -m ltx2.emulator --port 0 ARGS`` in its own process; yields it and its URL."""
    argv = [sys.executable, "-m", "ltx2.emulator", "--host", "127.0.0.1", "--port", "0", *args]
    async with spawn(argv, name="emulator", stderr=tmp_path / "emulator.err") as proc:
        match = await proc.wait_for_line(r"ltx2 emulator on (http://\S+)")
        yield proc, match.group(1)


@contextlib.asynccontextmanager
async def receiver_process(
    tmp_path: Path, redis_url: str, *args: str
) -> AsyncIterator[tuple[Process, str]]:
    """``ltx2 receiver --redis URL --port 0 ARGS``; yields it and the URL it listens on."""
    argv = ltx2_command("receiver", "--redis", redis_url, "--port", "0", *args)
    async with spawn(argv, name="ltx2 receiver", stderr=tmp_path / "receiver.err") as proc:
        match = await proc.wait_for_line(r"ltx2 receiver listening on (http://\S+)")
        yield proc, match.group(1)


async def emulator_stats(url: str) -> dict[str, Any]:
    """The emulator's ``/_emulator/stats``: counters per provider."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/_emulator/stats") as r:
        r.raise_for_status()
        stats: dict[str, Any] = json.loads(await r.read())
        return stats
