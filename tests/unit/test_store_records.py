"""copy_record, field by field: a copy equals its original, in every field, and shares no dict;
what a record keeps of its image (a URL or a digest, never the bytes), also when it is read
from JSON an earlier version wrote."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json

from hypothesis import given
from hypothesis import strategies as st
from tests.conftest import make_png

from ltx2._request import image_reference, stored_image
from ltx2._types import JobStatus, StatusUpdate
from ltx2.stores._base import JobRecord, copy_record, new_record


def test_copy_record_keeps_every_field_and_shares_no_dict() -> None:
    values = {
        "key": "k", "provider": "fal", "token": "t",
        "request": {"prompt": "p", "image": {"sha256": "00", "bytes": 1, "mime": "image/png"}},
        "webhook_secret": "s", "job_id": "j", "update": StatusUpdate(JobStatus.RUNNING, "r"),
        "delivery": StatusUpdate(JobStatus.SUCCEEDED, "d"), "meta": {"m": "1"}, "owner": "o",
        "created_at": 1.0, "updated_at": 2.0, "scope": "fp", "collected": True,
    }  # fmt: skip
    # A field added to JobRecord must be added here (and to copy_record).
    assert {f.name for f in dataclasses.fields(JobRecord)} == set(values)
    record = JobRecord(**values)
    copy = copy_record(record)
    assert copy == record
    assert copy.request is not record.request
    assert copy.request["image"] is not record.request["image"]
    assert copy.meta is not record.meta


def _old_record_json(image: object) -> dict[str, object]:
    rec = new_record("runcomfy", {"prompt": "p", "duration": 6}, owner="o", with_secret=False)
    d = rec.to_json()
    d["request"] = {**rec.request, "image": image}  # as an earlier version wrote it
    return d


def test_a_record_read_from_old_json_keeps_the_inline_images_digest_not_the_image() -> None:
    png = make_png()
    d = _old_record_json("data:image/png;base64," + base64.b64encode(png).decode())
    rec = JobRecord.from_json(json.loads(json.dumps(d)))
    want = {"sha256": hashlib.sha256(png).hexdigest(), "bytes": len(png), "mime": "image/png"}
    assert rec.request == {"prompt": "p", "duration": 6, "image": want}
    assert "base64" not in json.dumps(rec.to_json())


def test_a_url_or_a_reference_is_kept_as_it_is() -> None:
    ref = image_reference(b"abc", "image/jpeg")
    assert ref == {"sha256": hashlib.sha256(b"abc").hexdigest(), "bytes": 3, "mime": "image/jpeg"}
    for image in ("https://cdn.example.com/cat.png", ref, None):
        assert JobRecord.from_json(_old_record_json(image)).request["image"] == image
        rec = new_record("fal", {"prompt": "p", "image": image}, owner=None, with_secret=False)
        assert rec.request["image"] == image


def test_a_new_record_given_a_data_uri_keeps_its_digest() -> None:
    png = make_png()
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    rec = new_record("fal", {"prompt": "p", "image": uri}, owner=None, with_secret=False)
    assert rec.request["image"] == image_reference(png, "image/png")


@given(st.text(max_size=300))
def test_any_old_data_uri_loads_as_a_reference(tail: str) -> None:
    """Total over whatever an old record holds after ``data:``: a reference, never an error."""
    for uri in ("data:" + tail, "DATA:image/png;base64," + tail):
        ref = stored_image(uri)
        assert set(ref) == {"sha256", "bytes", "mime"}
        assert len(ref["sha256"]) == 64
        assert isinstance(ref["bytes"], int)
        JobRecord.from_json(_old_record_json(uri))
