"""Forgetting ``aclose()`` (issue 13, item 14): one warning in ltx2's words, with the fix, and
none of aiohttp's "Unclosed client session" / "Unclosed connector" at exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("av")

PRELUDE = """
import asyncio, io
import ltx2
from ltx2.emulator import Emulator
from PIL import Image

buf = io.BytesIO()
Image.new("RGB", (64, 36)).save(buf, format="PNG")
PNG = buf.getvalue()
"""

LEAK_STARTED = """
async def main():
    async with Emulator(time_scale=0.01, render="stub") as emu:
        for _ in range(2):  # two forgotten clients: still one warning
            client = ltx2.Client("eachlabs", api_key="k", base_url=emu.provider_url("eachlabs"),
                                 time_scale=0.01)
            await client.generate(image=PNG, prompt="p")
asyncio.run(main())
"""

LEAK_UNSTARTED = """
async def main():
    async with Emulator(time_scale=0.01, render="stub") as emu:
        async with ltx2.Client("eachlabs", api_key="k", base_url=emu.provider_url("eachlabs"),
                               time_scale=0.01) as c:
            job_id = (await c.submit(image=PNG, prompt="p")).id
        client = ltx2.Client("eachlabs", api_key="k", base_url=emu.provider_url("eachlabs"))
        await client.job(job_id).refresh()  # a request, without async with or aclose()
asyncio.run(main())
"""

CLOSED = """
async def main():
    async with Emulator(time_scale=0.01, render="stub") as emu:
        client = ltx2.Client("eachlabs", api_key="k", base_url=emu.provider_url("eachlabs"),
                             time_scale=0.01)
        await client.generate(image=PNG, prompt="p")
        await client.aclose()
asyncio.run(main())
"""


def run(body: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(PRELUDE) + textwrap.dedent(body))
    return subprocess.run(  # noqa: S603 - our own interpreter, our own script
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("body", [LEAK_STARTED, LEAK_UNSTARTED], ids=["started", "unstarted"])
def test_a_forgotten_client_warns_once_in_ltx2_words(body: str, tmp_path: Path) -> None:
    proc = run(body, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Unclosed" not in proc.stderr, proc.stderr
    assert proc.stderr.count("was not closed") == 1, proc.stderr
    assert "was not closed" in proc.stderr
    assert "async with ltx2.Client" in proc.stderr  # the fix
    assert "aclose()" in proc.stderr


def test_a_closed_client_says_nothing(tmp_path: Path) -> None:
    proc = run(CLOSED, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
