"""``ltx2 batch FILE.jsonl``, run in process through ``ltx2.cli.main``: every line becomes a
video or a reported error, a second run resumes, and the exit code says how it went.

Against ``--emulator`` the command runs its own emulator (stub renders, scaled time); against
an emulator of the test's own (``--base-url``) the test can inject failures and look at the
jobs. ``main`` runs its own event loop, so async tests call it in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import make_png

import ltx2
from ltx2.cli import main
from ltx2.providers import get

pytest.importorskip("av")
pytest.importorskip("rich")
from ltx2.emulator import Emulator, Faults

SCALE = "0.002"
EMULATED = ["--emulator", "--render", "stub", "--time-scale", SCALE]


@pytest.fixture(autouse=True)
def no_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ltx2.PROVIDERS:
        for variable in get(name).key_variables():
            monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with a JSONL file's images: ``cat.png`` and ``pics/dog.png``."""
    (tmp_path / "pics").mkdir()
    (tmp_path / "cat.png").write_bytes(make_png(320, 180))
    (tmp_path / "pics" / "dog.png").write_bytes(make_png(64, 36))
    return tmp_path


def write_jsonl(path: Path, *lines: object) -> Path:
    """Write ``lines`` (strings as they are, anything else as JSON), one per line."""
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def report(out_dir: Path) -> dict[int, dict[str, Any]]:
    rows = [json.loads(raw) for raw in (out_dir / "report.jsonl").read_text().splitlines()]
    assert all(
        set(row) == {"line", "name", "provider", "id", "status", "seconds", "file", "error"}
        for row in rows
    )
    return {row["line"]: row for row in rows}


def is_mp4(path: Path) -> bool:
    return path.read_bytes()[4:8] == b"ftyp"


def test_every_line_becomes_a_video_or_an_error_naming_its_line_and_field(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_uri = "data:image/png;base64," + base64.b64encode(make_png()).decode()
    jsonl = write_jsonl(
        folder / "jobs.jsonl",
        {"image": "cat.png", "prompt": "The cat yawns", "name": "yawn"},  # 1
        {"image": "pics/dog.png", "prompt": "The dog runs", "duration": 8},  # 2
        "",  # 3: blank lines are passed over
        {"image": "cat.png", "prompt": "x", "duration": 7},  # 4
        "{not json",  # 5
        {"image": "cat.png", "prompt": "x", "colour": "red"},  # 6
        {"image": "cat.png", "prompt": "x", "name": "yawn"},  # 7: the name is taken
        {"image": "cat.png", "prompt": "x", "name": "../escape"},  # 8
        {"image": "nowhere.png", "prompt": "x"},  # 9
        ["not", "an", "object"],  # 10
        {"image": data_uri, "prompt": "A data URI"},  # 11: Eachlabs refuses them (seed 000)
        {"image": "https://images.example.com/cow.png", "prompt": "The cow moos"},  # 12
    )
    out = folder / "out"

    code = main(["batch", str(jsonl), *EMULATED, "--concurrency", "2", "--out-dir", str(out)])

    assert code == 1  # some lines failed
    rows = report(out)
    assert sorted(rows) == [1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    for number, name in ((1, "yawn"), (2, "0002"), (12, "0012")):
        row = rows[number]
        assert row["status"] == "succeeded", row
        assert row["name"] == name
        assert row["provider"] == "eachlabs"
        assert row["id"]
        assert row["seconds"] > 0
        assert row["error"] is None
        assert row["file"] == str(out / f"{name}.mp4")
        assert is_mp4(out / f"{name}.mp4")
    errors = {n: rows[n]["error"] for n in rows if rows[n]["status"] == "failed"}
    assert sorted(errors) == [4, 5, 6, 7, 8, 9, 10, 11]
    # A line that is not a request says so with its number; one the provider refuses at
    # submit time (11) says which field.
    assert all(error.startswith(f"line {n}: ") for n, error in errors.items() if n != 11)
    assert "duration: 7" in errors[4]
    assert "not valid JSON" in errors[5]
    assert "colour: is not a VideoRequest field" in errors[6]
    assert "name: 'yawn' is already used by line 1" in errors[7]
    assert "name: '../escape'" in errors[8]
    assert "image:" in errors[9]
    assert "JSON object" in errors[10]
    assert errors[11].startswith("image: eachlabs refuses data URIs")
    assert not any(rows[n]["id"] or rows[n]["file"] for n in errors)
    assert sorted(p.name for p in out.glob("*.mp4")) == ["0002.mp4", "0012.mp4", "yawn.mp4"]

    captured = capsys.readouterr()
    assert "[4/4] line" in captured.err  # not a terminal: one plain line per finished job
    assert "Traceback" not in captured.err
    assert "succeeded" in captured.out  # the summary
    assert "line 4: duration" in captured.out


def test_a_second_run_skips_the_lines_whose_video_is_on_disk(folder: Path) -> None:
    jsonl = write_jsonl(
        folder / "jobs.jsonl",
        {"image": "cat.png", "prompt": "one"},
        {"image": "cat.png", "prompt": "two"},
        {"image": "cat.png", "prompt": "three"},
    )
    out = folder / "jobs-videos"  # the default --out-dir

    assert main(["batch", str(jsonl), *EMULATED]) == 0
    assert [row["status"] for row in report(out).values()] == ["succeeded"] * 3
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp4")}
    assert sorted(kept) == ["0001.mp4", "0002.mp4", "0003.mp4"]

    (out / "0002.mp4").unlink()  # lost: made again
    with jsonl.open("a") as fh:  # a line added since: made
        fh.write(json.dumps({"image": "cat.png", "prompt": "four"}) + "\n")

    assert main(["batch", str(jsonl), *EMULATED]) == 0
    rows = report(out)
    assert {n: rows[n]["status"] for n in rows} == {
        1: "skipped",
        2: "succeeded",
        3: "skipped",
        4: "succeeded",
    }
    assert rows[1]["file"] == str(out / "0001.mp4")
    assert rows[1]["id"] is None
    for name in ("0001.mp4", "0003.mp4"):  # not downloaded again
        assert (out / name).stat().st_mtime_ns == kept[name]

    # Nothing left to do: no client is even made (no key is needed), and it still exits 0.
    assert main(["batch", str(jsonl), "--provider", "fal", "--out-dir", str(out)]) == 0
    assert [row["status"] for row in report(out).values()] == ["skipped"] * 4


async def test_failed_jobs_are_reported_and_run_again_on_the_next_run(
    folder: Path, monkeypatch: pytest.MonkeyPatch, free_port: int
) -> None:
    monkeypatch.setenv("EACHLABS_API_KEY", "test-key")
    prompts = [f"prompt {i}" for i in range(8)]
    jsonl = write_jsonl(
        folder / "jobs.jsonl", *({"image": "cat.png", "prompt": p} for p in prompts)
    )
    out = folder / "out"
    args = ["batch", str(jsonl), "--out-dir", str(out), "--concurrency", "4"]
    faults = Faults(job_failure=0.5)
    async with Emulator(time_scale=0.002, seed=11, render="stub", faults=faults) as emu:
        # Jobs resolve from Eachlabs' webhooks, to the receiver the command runs.
        listen = f"127.0.0.1:{free_port}"
        args += ["--base-url", emu.provider_url("eachlabs")]
        args += ["--webhook-url", f"http://{listen}", "--listen", listen]

        assert await asyncio.to_thread(main, args) == 1
        first = report(out)
        failed = [row for row in first.values() if row["status"] == "failed"]
        done = [row for row in first.values() if row["status"] == "succeeded"]
        assert len(failed) == emu.stats_for("eachlabs")["faults"]["job_failure"] > 0
        for row in failed + done:  # the report's ids are the provider's, line by line
            job = emu.jobs[row["id"]]
            assert job.params.prompt == prompts[row["line"] - 1]
            assert job.state == row["status"]
        assert all(row["id"] in row["error"] and "failed" in row["error"] for row in failed)

        await asyncio.to_thread(main, args)
        second = report(out)
    assert sorted(n for n in second if second[n]["status"] == "skipped") == sorted(
        row["line"] for row in done
    )
    rerun = [n for n in second if second[n]["status"] != "skipped"]
    assert sorted(rerun) == sorted(row["line"] for row in failed)
    assert all(second[n]["id"] not in (None, first[n]["id"]) for n in rerun)  # new jobs


@pytest.mark.parametrize(
    "argv",
    [
        ["batch", "{folder}/missing.jsonl"],
        ["batch", "{folder}"],  # a folder, not a file
        ["batch", "{folder}/ok.jsonl", "--concurrency", "0"],
        ["batch", "{folder}/ok.jsonl", "--out-dir", "{folder}/cat.png"],  # a file
        ["batch", "{folder}/ok.jsonl", "--emulator", "--base-url", "http://127.0.0.1:1"],
    ],
)
def test_bad_arguments_exit_2_before_anything_runs(
    folder: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    write_jsonl(folder / "ok.jsonl", {"image": "cat.png", "prompt": "p"})
    assert main([a.format(folder=folder) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ltx2: error: ")
    assert "Traceback" not in err
    assert not list(folder.glob("**/*.mp4"))


def test_without_a_key_it_exits_2_and_reports_why(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonl = write_jsonl(folder / "jobs.jsonl", {"image": "cat.png", "prompt": "p"})
    assert main(["batch", str(jsonl), "--provider", "fal"]) == 2  # bad input: nothing sent
    assert "FAL_KEY" in capsys.readouterr().err
    (row,) = report(folder / "jobs-videos").values()
    assert row["status"] == "failed"
    assert "FAL_KEY" in row["error"]


def test_the_journal_keeps_the_last_word_on_each_name_and_passes_over_a_torn_line(
    tmp_path: Path,
) -> None:
    from ltx2.cli._batch import Journal, Line

    journal = Journal(tmp_path / "j.jsonl")
    with journal:
        journal.write(Line(1, "a"), "job-1", "fp-a", "submitted")
        journal.write(Line(2, "b"), "job-2", "fp-b", "submitted")
        journal.write(Line(1, "a"), "job-1", "fp-a", "failed")
    with (tmp_path / "j.jsonl").open("a") as fh:
        fh.write('{"name": "b", "id": "job-9", "finger')  # killed while writing
    known = journal.read()
    assert {name: (k.id, k.status) for name, k in known.items()} == {
        "a": ("job-1", "failed"),
        "b": ("job-2", "submitted"),
    }
