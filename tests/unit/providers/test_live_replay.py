"""Every reply recorded from the real providers (``pytest -m live --record``, see
tests/live/) replayed through its adapter: what the providers really answered must parse,
and each recorded job must read as it ended (a video)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from tests.live._record import REDACTED, Recording, recordings, redact, replay

from ltx2._types import HTTPReply, JobStatus, StatusUpdate
from ltx2.providers import Created, get

CASES = recordings()
_NONE_YET = pytest.param(
    None, None, marks=pytest.mark.skip(reason="no replies recorded yet (pytest -m live --record)")
)


@pytest.mark.parametrize(("name", "path"), [*CASES] or [_NONE_YET])
def test_every_recorded_reply_parses(name: str, path: Path) -> None:
    parsed = replay(get(name)("replay-key"), path)
    assert isinstance(parsed, Created | StatusUpdate)
    if isinstance(parsed, StatusUpdate):
        assert parsed.status is not JobStatus.UNKNOWN


def _jobs() -> dict[str, list[Path]]:
    by_provider: dict[str, list[Path]] = defaultdict(list)
    for name, path in CASES:
        by_provider[name].append(path)
    return by_provider


@pytest.mark.parametrize("name", sorted(_jobs()) or [_NONE_YET.values[0]])
def test_each_recorded_job_ends_with_its_video(name: str | None) -> None:
    if name is None:
        pytest.skip("no replies recorded yet (pytest -m live --record)")
    provider = get(name)("replay-key")
    updates = [replay(provider, path) for path in _jobs()[name]]
    assert isinstance(updates[0], Created)
    last = updates[-1]
    assert isinstance(last, StatusUpdate)
    assert last.status is JobStatus.SUCCEEDED
    assert last.video_url


def test_recording_redacts_keys_identities_and_signed_urls(tmp_path: Path) -> None:
    key = "sk-live-0123456789"
    body = {
        "request_id": "r-1",
        "user_id": "user_42",
        "token": "abc",
        "echo": f"Bearer {key}",
        "video": {"url": "https://storage.example/v.mp4?X-Amz-Signature=s3cr3t&X-Amz-Credential=c"},
        "logs": [{"message": f"key={key}"}],
    }
    rec = Recording("fal", key, tmp_path)
    path = rec.add(
        "result", HTTPReply(200, {"content-type": "application/json"}, json.dumps(body).encode())
    )
    text = path.read_text()
    assert key not in text
    assert "s3cr3t" not in text
    assert "user_42" not in text
    saved = json.loads(text)["body"]
    assert saved["request_id"] == "r-1"
    assert saved["video"]["url"] == "https://storage.example/v.mp4"
    assert saved["token"] == saved["user_id"] == REDACTED
    assert redact({"token": None}, key) == {"token": None}
    # and the recording replays
    assert replay(get("fal")("k"), path) == StatusUpdate(
        JobStatus.SUCCEEDED, "COMPLETED", video_url="https://storage.example/v.mp4"
    )
