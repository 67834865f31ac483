"""The ``ltx2`` command line, run in process through ``ltx2.cli.main(argv)``.

``main`` runs each command with ``asyncio.run``, so async tests (which own an emulator on
their loop) call it in a worker thread: ``await asyncio.to_thread(main, [...])``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.conftest import make_png

import ltx2
from ltx2.cli import main
from ltx2.emulator import Emulator
from ltx2.providers import get

pytest.importorskip("av")
pytest.importorskip("rich")

SCALE = 0.01
#: Per provider, in provider seconds: Eachlabs and fal finish at once; a RunComfy job stays
#: queued for a long while (25 % of 10,000 s × SCALE), so it can be looked at and cancelled.
PROCESSING = {"eachlabs": 0.0, "fal": 0.0, "runcomfy": 10_000.0}


@pytest.fixture(autouse=True)
def no_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """No provider key in the environment unless a test sets one."""
    for name in ltx2.PROVIDERS:
        monkeypatch.delenv(get(name).env_var, raising=False)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=SCALE, render="stub", processing_time=PROCESSING) as e:
        yield e


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "input.png"
    path.write_bytes(make_png(320, 180))
    return path


def set_key(monkeypatch: pytest.MonkeyPatch, provider: str) -> None:
    monkeypatch.setenv(get(provider).env_var, "test-key")


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


# -- ltx2 demo -----------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_writes_a_1080p25_mp4_with_audio_and_a_contact_sheet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import av
    import numpy as np
    from PIL import Image

    monkeypatch.chdir(tmp_path)  # the default --out, ltx2-demo.mp4, lands here

    assert main(["demo", "--time-scale", "0.01"]) == 0

    out = capsys.readouterr().out
    assert "eachlabs" in out
    assert "webhook" in out  # the in-process receiver resolved it
    mp4 = tmp_path / "ltx2-demo.mp4"
    with av.open(str(mp4)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (1920, 1080)
        assert video.average_rate == 25
        assert container.duration is not None
        assert 5.9 <= container.duration / av.time_base <= 6.2
        assert container.streams.audio, "the demo asks for audio"
        frames = [f.to_ndarray(format="gray") for f in container.decode(video)]
    assert len(frames) == 150
    difference = np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean()
    assert difference > 1.0, "the camera moved: first and last frames differ"
    with Image.open(tmp_path / "ltx2-demo-frames.png") as sheet:
        assert sheet.format == "PNG"
        assert sheet.width > sheet.height > 0


# -- bad input: exit 2, naming the field ----------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value", "field", "allowed"),
    [("--duration", "7", "duration", "6, 8, 10"), ("--fps", "30", "fps", "25 or 50")],
)
def test_generate_with_a_value_outside_the_matrix_exits_2_naming_the_field(
    image: Path,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    value: str,
    field: str,
    allowed: str,
) -> None:
    # No key is set: the request is checked before the key is looked for.
    assert main(["generate", str(image), "The cat yawns", flag, value]) == 2
    err = capsys.readouterr().err
    assert f"{field}: {value}" in err
    assert allowed in err
    assert "Traceback" not in err


def test_generate_with_a_missing_image_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", str(tmp_path / "nope.jpg"), "The cat yawns"]) == 2
    assert "image:" in capsys.readouterr().err


def test_generate_into_a_missing_folder_exits_2_before_submitting(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "missing" / "video.mp4"
    assert main(["generate", str(image), "The cat yawns", "--out", str(out)]) == 2
    assert "out: the folder" in capsys.readouterr().err


def test_an_unknown_provider_or_option_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "abc", "--provider", "nope"]) == 2
    assert main(["status", "abc", "--bogus"]) == 2
    assert main([]) == 2
    assert "--provider" in capsys.readouterr().err


# -- no key: exit 1 -------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["fal", "eachlabs"])
def test_status_without_a_key_exits_1_naming_the_variable(
    capsys: pytest.CaptureFixture[str], provider: str
) -> None:
    assert main(["status", "some-id", "--provider", provider]) == 1
    err = capsys.readouterr().err
    assert get(provider).env_var in err
    assert "Traceback" not in err


def test_generate_without_a_key_exits_1(image: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", str(image), "The cat yawns", "--provider", "fal"]) == 1
    assert "FAL_KEY" in capsys.readouterr().err


# -- against the emulator -------------------------------------------------------------------


async def test_status_of_a_finished_job_prints_its_video_url(
    emu: Emulator, image: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_key(monkeypatch, "fal")
    base = emu.provider_url("fal")
    async with ltx2.Client("fal", base_url=base, time_scale=SCALE) as client:
        job = await client.submit(image=image.read_bytes(), prompt="The camera pans left")
        await job.result(timeout=30)

    assert await cli("status", job.id, "--provider", "fal", "--base-url", base) == 0

    out = capsys.readouterr().out
    assert "status: succeeded" in out
    assert "video: http://127.0.0.1" in out


async def test_cancel_then_status_shows_the_job_cancelled(
    emu: Emulator, image: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_key(monkeypatch, "runcomfy")
    base = emu.provider_url("runcomfy")
    async with ltx2.Client("runcomfy", base_url=base, time_scale=SCALE) as client:
        job = await client.submit(image=image.read_bytes(), prompt="The camera pans left")
    args = (job.id, "--provider", "runcomfy", "--base-url", base)

    assert await cli("status", *args) == 0
    assert "status: queued" in capsys.readouterr().out

    assert await cli("cancel", *args) == 0
    assert "cancel requested" in capsys.readouterr().out

    assert await cli("status", *args) == 0
    out = capsys.readouterr().out
    assert "status: cancelled" in out
    assert "video:" not in out


async def test_cancel_where_the_provider_cannot_exits_1(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_key(monkeypatch, "aimlapi")
    base = emu.provider_url("aimlapi")
    assert await cli("cancel", "some-id", "--provider", "aimlapi", "--base-url", base) == 1
    err = capsys.readouterr().err
    assert "cannot cancel" in err
    assert "test-key" not in err


async def test_status_of_an_unknown_job_exits_1(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_key(monkeypatch, "eachlabs")
    base = emu.provider_url("eachlabs")
    assert await cli("status", "no-such-job", "--base-url", base) == 1
    assert "404" in capsys.readouterr().err


async def test_generate_resolves_from_its_webhook_receiver_and_saves_the_video(
    emu: Emulator,
    image: Path,
    tmp_path: Path,
    free_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    set_key(monkeypatch, "eachlabs")
    out = tmp_path / "video.mp4"
    listen = f"127.0.0.1:{free_port}"

    code = await cli(
        "generate", str(image), "The camera slowly dollies in",
        "--base-url", emu.provider_url("eachlabs"), "--out", str(out),
        "--webhook-url", f"http://{listen}", "--listen", listen, "--timeout", "30",
    )  # fmt: skip

    assert code == 0
    assert out.read_bytes()[4:8] == b"ftyp"
    assert str(out) in capsys.readouterr().out
    assert emu.stats_for("eachlabs")["webhooks_sent"] >= 1


async def test_generate_on_fal_resolves_from_the_status_stream(
    emu: Emulator, image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_key(monkeypatch, "fal")
    out = tmp_path / "video.mp4"

    code = await cli(
        "generate", str(image), "The camera pans left", "--provider", "fal",
        "--base-url", emu.provider_url("fal"), "--out", str(out), "--timeout", "30",
    )  # fmt: skip

    assert code == 0
    assert out.stat().st_size > 0


# -- ltx2 emulator --------------------------------------------------------------------------


def test_emulator_passes_its_arguments_to_the_emulators_own_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["emulator", "--help"]) == 0
    assert "--time-scale" in capsys.readouterr().out
    assert main(["emulator", "--faults", "no_such_fault=1"]) == 2
    assert "no_such_fault" in capsys.readouterr().err
