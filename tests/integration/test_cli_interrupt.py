"""Ctrl-C (SIGINT) or SIGTERM during ``ltx2 generate``, in a child process against an emulator
of the test's own: where the provider can cancel, the job is cancelled there; where it cannot,
the command prints the job's id and the exact ``ltx2 status`` command that follows it."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
from pathlib import Path

import pytest
from tests.conftest import make_png
from tests.integration._processes import Process, ltx2_command, spawn

import ltx2
from ltx2.cli import main
from ltx2.emulator import Emulator
from ltx2.emulator._jobs import Job as EmulatedJob
from ltx2.providers import get

pytest.importorskip("rich")

#: seed 001's example image, for providers that take no local image.
HOSTED = "https://storage.googleapis.com/falserverless/example_inputs/ltxv-2-i2v-input.jpg"
#: Provider seconds: long enough that the job is still pending when the signal comes.
PROCESSING = 1000.0


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "input.png"
    path.write_bytes(make_png(320, 180))
    return path


def env_with_key(provider: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_KEY", "_TOKEN"))}
    env[get(provider).env_var] = "test-key"
    return env


async def first_job(emu: Emulator, proc: Process, timeout: float = 30.0) -> EmulatedJob:
    """The first job the child created at the emulator."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not emu.jobs:
        if proc.proc.returncode is not None or loop.time() > deadline:
            raise AssertionError(f"no job was created; stderr:\n{proc.stderr()}")
        await asyncio.sleep(0.05)
    return next(iter(emu.jobs.values()))


async def interrupt_generate(
    emu: Emulator, provider: str, image: Path | str, tmp_path: Path, sig: signal.Signals
) -> tuple[EmulatedJob, int, str]:
    """Run ``ltx2 generate`` against ``emu``, send ``sig`` once its job exists, and return
    the job, the exit code and stderr."""
    out = tmp_path / "video.mp4"
    argv = ltx2_command(
        "generate", str(image), "The camera pans left", "--provider", provider,
        "--base-url", emu.provider_url(provider), "--out", str(out), "--timeout", "120",
    )  # fmt: skip
    name = f"ltx2 generate ({provider})"
    async with spawn(argv, name=name, stderr=tmp_path / "err", env=env_with_key(provider)) as proc:
        job = await first_job(emu, proc)
        await asyncio.sleep(0.3)  # also past the create reply, into the wait (either is fine)
        proc.send_signal(sig)
        code = await proc.wait(30)
    assert not out.exists()
    return job, code, proc.stderr()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
async def test_a_signal_during_generate_cancels_the_job_at_the_provider(
    image: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    async with Emulator(time_scale=1.0, render="stub", processing_time=PROCESSING) as emu:
        job, code, err = await interrupt_generate(emu, "eachlabs", image, tmp_path, sig)

        assert job.state == "cancelled", err  # at the emulator: nothing left running
        assert emu.stats_for("eachlabs")["cancels"] == 1
    assert code == 128 + sig, err  # 130 for Ctrl-C, 143 for SIGTERM
    assert f"cancelled eachlabs job {job.id}" in err
    assert "Traceback" not in err
    assert "test-key" not in err


async def test_ctrl_c_right_after_the_create_still_cancels_the_job(
    image: Path, tmp_path: Path
) -> None:
    # The signal comes while the create's reply may still be on its way: the command waits
    # for it (so it has the id) and then cancels.
    async with Emulator(time_scale=1.0, render="stub", processing_time=PROCESSING) as emu:
        out = tmp_path / "video.mp4"
        argv = ltx2_command(
            "generate", str(image), "The camera pans left",
            "--base-url", emu.provider_url("eachlabs"), "--out", str(out),
        )  # fmt: skip
        env = env_with_key("eachlabs")
        async with spawn(argv, name="ltx2 generate", stderr=tmp_path / "err", env=env) as proc:
            job = await first_job(emu, proc)
            proc.send_signal(signal.SIGINT)
            code = await proc.wait(30)
        assert code == 130, proc.stderr()
        assert job.state == "cancelled", proc.stderr()


@pytest.mark.parametrize("provider", ["gmicloud", "aimlapi"])
async def test_where_the_provider_cannot_cancel_it_prints_the_status_command_to_follow_it(
    image: Path,
    tmp_path: Path,
    provider: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GMI Cloud documents no upload: a local image needs uploader=, so it gets a URL (the stub
    # emulator does not fetch it).
    source = HOSTED if provider == "gmicloud" else image
    async with Emulator(time_scale=1.0, render="stub", processing_time=PROCESSING) as emu:
        job, code, err = await interrupt_generate(emu, provider, source, tmp_path, signal.SIGINT)

        assert code == 130, err
        assert job.state == "pending"  # it runs on at the provider
        assert emu.stats_for(provider)["cancels"] == 0
        assert job.id in err
        command = (
            f"ltx2 status {job.id} --provider {provider} --base-url {emu.provider_url(provider)}"
        )
        assert command in err
        assert "cannot cancel" in err

        # The printed command works as printed.
        for name in ltx2.PROVIDERS:
            monkeypatch.delenv(get(name).env_var, raising=False)
        monkeypatch.setenv(get(provider).env_var, "test-key")
        argv = shlex.split(command)[1:]
        assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    assert f"job: {provider}:{job.id}" in out
    assert "status: queued" in out or "status: running" in out


# -- ltx2 batch: an interrupted run is picked up again, never paid twice ---------------------


def batch_file(tmp_path: Path, image: Path, count: int) -> Path:
    jsonl = tmp_path / "jobs.jsonl"
    lines = [f'{{"image": "{image.name}", "prompt": "shot {i}"}}' for i in range(count)]
    jsonl.write_text("\n".join(lines) + "\n")
    return jsonl


def report_rows(out_dir: Path) -> dict[int, dict[str, object]]:
    rows = [json.loads(raw) for raw in (out_dir / "report.jsonl").read_text().splitlines()]
    return {int(row["line"]): row for row in rows}


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["sigint", "sigterm", "sigkill"]
)
async def test_an_interrupted_batch_records_the_ids_and_the_rerun_picks_them_up(
    image: Path, tmp_path: Path, sig: signal.Signals, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Jobs of 60 provider seconds at time scale 0.05 (3 s): four lines, two at a time. The
    # first run is stopped once two jobs exist; the second finishes all four with four
    # creates in all (the two in flight are picked up by id, not submitted again).
    jsonl = batch_file(tmp_path, image, 4)
    out = tmp_path / "out"
    async with Emulator(time_scale=0.05, render="stub", processing_time=60.0) as emu:
        args = [
            "batch", str(jsonl), "--out-dir", str(out), "--concurrency", "2",
            "--base-url", emu.provider_url("eachlabs"), "--time-scale", "0.05",
        ]  # fmt: skip
        env = env_with_key("eachlabs")
        async with spawn(
            ltx2_command(*args), name="ltx2 batch", stderr=tmp_path / "err", env=env
        ) as proc:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while len(emu.jobs) < 2:
                assert loop.time() < deadline, proc.stderr()
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)  # past the create replies
            proc.send_signal(sig)
            code = await proc.wait(30)
        first = {job.id for job in emu.jobs.values()}
        assert len(first) == 2
        assert all(job.state == "pending" for job in emu.jobs.values())  # none cancelled
        if sig != signal.SIGKILL:
            assert code == 128 + sig, proc.stderr()
            rows = report_rows(out)
            assert {row["id"] for row in rows.values() if row["id"]} == first
            assert all(row["status"] == "interrupted" for row in rows.values())
            assert "run the same command again" in proc.stderr()

        monkeypatch.setenv("EACHLABS_API_KEY", "test-key")
        assert await asyncio.to_thread(main, args) == 0
        assert emu.stats_for("eachlabs")["creates"] == 4  # not one paid twice
        rows = report_rows(out)
    assert [row["status"] for row in rows.values()] == ["succeeded"] * 4
    assert first <= {row["id"] for row in rows.values()}
    assert len({row["id"] for row in rows.values()}) == 4
    assert sorted(p.name for p in out.glob("*.mp4")) == ["0001.mp4", "0002.mp4", "0003.mp4",
                                                          "0004.mp4"]  # fmt: skip
