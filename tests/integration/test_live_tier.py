"""A dry run of the live tier against the emulator: ``pytest -m live --record`` in a child
process with keys set and each provider pointed at the emulator records every reply,
redacted, and the replay test then reads them back through the adapters."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from ltx2.emulator import Emulator

ROOT = Path(__file__).parents[2]
KEY = "sk-live-dry-run-0123456789"


async def pytest_child(*args: str, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_live_tier_records_redacted_replies_that_replay(tmp_path: Path) -> None:
    async with Emulator(time_scale=0.01, seed=0, render="stub", processing_time=30) as emu:
        env = {
            **os.environ,
            "LTX2_LIVE_RECORD_DIR": str(tmp_path),
            "LTX2_LIVE_POLL_EVERY": "0.05",
            "FAL_KEY": KEY,
            "AIML_API_KEY": KEY,
        }
        for name in ("fal", "aimlapi"):
            env[f"LTX2_LIVE_{name.upper()}_BASE_URL"] = emu.root_url(name)
        for name in ("EACHLABS_API_KEY", "GMI_API_KEY", "RUNCOMFY_API_TOKEN"):
            env.pop(name, None)
        code, out = await pytest_child("-m", "live", "--record", "tests/live", env=env)
    assert code == 0, out
    assert "2 passed" in out, out
    files = sorted(tmp_path.glob("*/live/*.json"))
    assert {f.parents[1].name for f in files} == {"fal", "aimlapi"}
    assert files[0].name == "01-create.json"
    for path in files:
        text = path.read_text()
        assert KEY not in text
        json.loads(text)
    # The same replay the unit tier runs on tests/fixtures/*/live/.
    from tests.live._record import replay

    from ltx2._types import JobStatus
    from ltx2.providers import get

    for name in ("fal", "aimlapi"):
        paths = sorted((tmp_path / name / "live").glob("*.json"))
        last = replay(get(name)("k"), paths[-1])
        assert getattr(last, "status", None) is JobStatus.SUCCEEDED
