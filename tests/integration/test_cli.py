"""The ``ltx2`` command line, run in process through ``ltx2.cli.main(argv)``.

``main`` runs each command with ``asyncio.run``, so async tests (which own an emulator on
their loop) call it in a worker thread: ``await asyncio.to_thread(main, [...])``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
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
        for variable in get(name).key_variables():
            monkeypatch.delenv(variable, raising=False)


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

    assert main(["demo"]) == 0  # as a newcomer runs it (time scale 0.05)

    out = capsys.readouterr().out
    assert "eachlabs" in out
    assert "webhook" in out  # the in-process receiver resolved it
    # The status line showed the provider's real status while the job ran, not "queued" until
    # the webhook came: Eachlabs' own words, in order (seed 000).
    (statuses,) = [line for line in out.splitlines() if "statuses" in line]
    assert "processing" in statuses, statuses
    assert statuses.index("processing") < statuses.index("success")
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


# -- no key: exit 2, nothing sent -------------------------------------------------------------


@pytest.mark.parametrize("provider", ["fal", "eachlabs", "aimlapi"])
def test_status_without_a_key_exits_2_naming_the_variable(
    capsys: pytest.CaptureFixture[str], provider: str
) -> None:
    assert main(["status", "some-id", "--provider", provider]) == 2
    err = capsys.readouterr().err
    for name in get(provider).key_variables():
        assert name in err
    assert "no request was sent" in err
    assert "--api-key-file" in err
    assert "HTTP 401" not in err
    assert "Traceback" not in err


def test_generate_without_a_key_exits_2(image: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", str(image), "The cat yawns", "--provider", "fal"]) == 2
    assert "FAL_KEY" in capsys.readouterr().err


@pytest.mark.parametrize("blank", [" ", "\t\n"], ids=repr)
async def test_a_blank_key_in_the_environment_or_a_file_exits_2_and_sends_nothing(
    tmp_path: Path,
    image: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    blank: str,
) -> None:
    key_file = tmp_path / "blank.key"
    key_file.write_text(blank)
    async with Emulator(time_scale=SCALE, render="stub") as emu:
        base = emu.provider_url("fal")
        monkeypatch.setenv("FAL_KEY", blank)
        assert await cli("status", "some-id", "--provider", "fal", "--base-url", base) == 2
        assert "FAL_KEY" in capsys.readouterr().err
        monkeypatch.delenv("FAL_KEY")
        argv = ["--provider", "fal", "--base-url", base, "--api-key-file", str(key_file)]
        assert await cli("status", "some-id", *argv) == 2
        assert await cli("generate", str(image), "p", *argv) == 2
        assert "blank" in capsys.readouterr().err
        assert emu.stats_for("fal")["status_requests"] == 0
        assert emu.stats_for("fal")["create_attempts"] == 0


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


@pytest.mark.slow
def test_generate_with_emulator_needs_no_key_and_writes_a_6_s_clip(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import av

    out = tmp_path / "video.mp4"
    assert (
        main(["generate", str(image), "The camera pans left", "--emulator", "--out", str(out)]) == 0
    )

    assert str(out) in capsys.readouterr().out
    with av.open(str(out)) as container:
        assert container.duration is not None
        assert 5.9 <= container.duration / av.time_base <= 6.2


async def test_time_scale_scales_the_poll_schedule_of_a_job_on_an_emulator_at_base_url(
    image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An Eachlabs job of 100 provider seconds, no webhook: the poller's first look comes at
    # 0.9 × 60 s, so unscaled it would not see the end within --timeout; scaled by 0.01 it
    # sees it within a second of the end.
    set_key(monkeypatch, "eachlabs")
    out = tmp_path / "video.mp4"
    async with Emulator(time_scale=SCALE, render="stub", processing_time=100.0) as emu:
        code = await cli(
            "generate", str(image), "The camera pans left", "--out", str(out),
            "--base-url", emu.provider_url("eachlabs"), "--time-scale", str(SCALE),
            "--timeout", "20",
        )  # fmt: skip
        polls = emu.stats_for("eachlabs")["status_requests"]
    assert code == 0
    assert out.read_bytes()[4:8] == b"ftyp"
    assert polls <= 30


@pytest.mark.parametrize("command", ["generate", "batch", "status", "cancel"])
def test_every_command_that_talks_to_a_provider_has_the_same_connection_options(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--help"]) == 0
    help_text = capsys.readouterr().out
    for option in ("--provider", "--emulator", "--base-url", "--time-scale", "--api-key-file"):
        assert option in help_text, option
    assert "--api-key " not in help_text


@pytest.mark.parametrize("command", ["generate", "status", "cancel", "batch"])
def test_a_key_given_on_the_command_line_is_refused_without_being_echoed(
    command: str, image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    positional = {"generate": [str(image), "p"], "batch": [str(image)]}.get(command, ["id"])
    argv = [command, *positional, "--provider", "fal", "--api-key", "sk-very-secret-1234"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "sk-very-secret-1234" not in err
    assert "--api-key-file" in err
    assert "FAL_KEY" in err


async def test_the_key_can_come_from_a_file(
    tmp_path: Path, image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "fal.key"
    key_file.write_text("file-key\n")  # the trailing newline an editor leaves is not the key
    async with Emulator(time_scale=SCALE, render="stub", api_keys={"file-key"}) as emu:
        base = emu.provider_url("fal")
        async with ltx2.Client("fal", api_key="file-key", base_url=base) as client:
            job = await client.submit(image=image.read_bytes(), prompt="The camera pans left")
        args = ("--provider", "fal", "--base-url", base, "--api-key-file", str(key_file))

        assert await cli("status", job.id, *args) == 0
        assert f"job: fal:{job.id}" in capsys.readouterr().out

        assert await cli("status", job.id, *args[:-1], str(tmp_path / "missing.key")) == 2
        assert "api_key_file: cannot read" in capsys.readouterr().err


def test_emulator_with_base_url_or_a_key_file_exits_2(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for extra in (["--base-url", "http://127.0.0.1:1/eachlabs"], ["--api-key-file", "k"]):
        assert main(["generate", str(image), "p", "--emulator", *extra]) == 2
        assert "--emulator" in capsys.readouterr().err
    assert main(["generate", str(image), "p", "--emulator", "--time-scale", "0"]) == 2
    assert "time_scale" in capsys.readouterr().err


# -- ltx2 cancel: which providers can -------------------------------------------------------


def fresh_ltx2(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``ltx2 ARGV`` in a fresh interpreter, which has imported no provider module yet."""
    code = "import sys; from ltx2.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-c", code, *argv],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_cancel_on_gmi_cloud_names_the_providers_that_can_in_a_fresh_process() -> None:
    # Only the provider in use is imported: the list must not depend on which modules were.
    argv = ["cancel", "some-id", "--provider", "gmicloud", "--base-url", "http://127.0.0.1:9/g"]
    done = fresh_ltx2(*argv, env={"GMI_API_KEY": "test-key"})
    assert done.returncode == 1, done.stderr
    assert "gmicloud cannot cancel" in done.stderr
    assert "providers that can: eachlabs, fal, runcomfy" in done.stderr


def test_cancel_help_says_which_providers_can_cancel_and_which_cannot() -> None:
    done = fresh_ltx2("cancel", "--help")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "can cancel: eachlabs (best effort), fal (queued jobs only), runcomfy (queued" in text
    assert "gmicloud and aimlapi cannot" in text


# -- ltx2 emulator --------------------------------------------------------------------------


def test_emulator_passes_its_arguments_to_the_emulators_own_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["emulator", "--help"]) == 0
    assert "--time-scale" in capsys.readouterr().out
    assert main(["emulator", "--faults", "no_such_fault=1"]) == 2
    assert "no_such_fault" in capsys.readouterr().err
