"""The shared support matrix, data URIs, and the job's time-driven stages."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from ltx2.emulator._jobs import InputError, Job, JobParams, decode_data_uri, parse_params

OK = {"image_url": "https://example.com/a.jpg", "prompt": "p"}


def test_defaults_follow_the_seeds() -> None:
    params = parse_params(OK)
    assert params == JobParams("https://example.com/a.jpg", "p", 6, "1080p", 25, "16:9", True)
    assert params.size == (1920, 1080)


@pytest.mark.parametrize(
    "extra",
    [
        {"duration": 20},
        {"duration": "12"},
        {"duration": 10, "resolution": "2160p", "fps": 50},
        {"duration": 8.0, "resolution": "1440p"},
        {"generate_audio": False},
    ],
)
def test_supported_combinations(extra: dict[str, Any]) -> None:
    parse_params({**OK, **extra})


@pytest.mark.parametrize(
    ("extra", "field", "kind"),
    [
        ({"duration": 12, "resolution": "1440p"}, "duration", "value_error"),
        ({"duration": 14, "fps": 50}, "duration", "value_error"),
        ({"duration": 5}, "duration", "enum"),
        ({"duration": True}, "duration", "type_error"),
        ({"duration": "six"}, "duration", "type_error"),
        ({"fps": 24}, "fps", "enum"),
        ({"resolution": "1920x1080"}, "resolution", "enum"),
        ({"aspect_ratio": "1:1"}, "aspect_ratio", "enum"),
        ({"generate_audio": 1}, "generate_audio", "type_error"),
        ({"image_url": None}, "image_url", "missing"),
        ({"image_url": 5}, "image_url", "type_error"),
        ({"prompt": ["x"]}, "prompt", "type_error"),
    ],
)
def test_unsupported_inputs_name_the_field(extra: dict[str, Any], field: str, kind: str) -> None:
    with pytest.raises(InputError) as info:
        parse_params({**OK, **extra})
    assert info.value.field == field
    assert info.value.kind == kind


def test_gmi_spellings_and_camera_motion() -> None:
    raw = {
        "image_uri": "https://x/y.png",
        "prompt": "p",
        "resolution": "2560x1440",
        "camera_motion": "jib_down",
    }
    params = parse_params(
        raw,
        image_field="image_uri",
        resolutions={"1920x1080": "1080p", "2560x1440": "1440p", "3840x2160": "2160p"},
        camera_motions=("jib_down", "static"),
        aspect_field=False,
    )
    assert (params.resolution, params.camera_motion) == ("1440p", "jib_down")
    # Providers without camera_motion ignore it.
    assert parse_params({**OK, "camera_motion": "orbit"}).camera_motion is None


def test_aimlapi_durations_only_6_8_10() -> None:
    with pytest.raises(InputError):
        parse_params({**OK, "duration": 12}, durations=(6, 8, 10))
    assert parse_params({"prompt": "p"}, require_image=False).image_url is None


def test_data_uris() -> None:
    payload = b"\x89PNG\r\n\x1a\nrest"
    uri = "data:image/png;base64," + base64.b64encode(payload).decode()
    assert decode_data_uri(uri) == payload
    assert decode_data_uri("data:text/plain,hello%20world") == b"hello world"
    with pytest.raises(OverflowError):
        decode_data_uri(uri, limit=4)
    for bad in ("data:image/png;base64,@@@@", "nodata", "data:image/png;base64"):
        with pytest.raises(ValueError, match="data URI"):
            decode_data_uri(bad)


def test_job_stages_follow_time() -> None:
    job = Job(
        id="j",
        provider="fal",
        key="k",
        request={},
        params=parse_params(OK),
        processing_time=10.0,
        nominal_time=1000.0,
        started=100.0,
        queue_position=4,
    )
    assert [job.stage(100 + t) for t in (0, 1, 3, 5, 9, 50)] == [
        "created",
        "queued",
        "starting",
        "running",
        "running",
        "running",
    ]
    assert job.next_change(100.0) == pytest.approx(0.5)
    assert job.next_change(104.0) is None
    assert job.queue_position_at(100.0) == 4
    assert job.queue_position_at(102.5) == 0
    assert job.elapsed_nominal(105.0) == 500.0
    job.state = "succeeded"
    assert job.stage(101.0) == "succeeded"
    assert job.next_change(101.0) is None


def test_limits_option_reads_creates_and_concurrent_either_empty() -> None:
    from ltx2.emulator._cli import build_parser

    assert build_parser().parse_args(["--limits", "60:5"]).limits == (60, 5)
    assert build_parser().parse_args(["--limits", "60:"]).limits == (60, None)
    assert build_parser().parse_args(["--limits", ":5"]).limits == (None, 5)
    assert build_parser().parse_args([]).limits is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--limits", "sixty"])
