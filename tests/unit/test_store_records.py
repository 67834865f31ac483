"""copy_record, field by field: a copy equals its original, in every field, and shares no dict."""

from __future__ import annotations

import dataclasses

from ltx2._types import JobStatus, StatusUpdate
from ltx2.stores._base import JobRecord, copy_record


def test_copy_record_keeps_every_field_and_shares_no_dict() -> None:
    values = {
        "key": "k", "provider": "fal", "request": {"prompt": "p"}, "token": "t",
        "webhook_secret": "s", "job_id": "j", "update": StatusUpdate(JobStatus.RUNNING, "r"),
        "delivery": StatusUpdate(JobStatus.SUCCEEDED, "d"), "meta": {"m": "1"}, "owner": "o",
        "created_at": 1.0, "updated_at": 2.0, "scope": "fp",
    }  # fmt: skip
    # A field added to JobRecord must be added here (and to copy_record).
    assert {f.name for f in dataclasses.fields(JobRecord)} == set(values)
    record = JobRecord(**values)
    copy = copy_record(record)
    assert copy == record
    assert copy.request is not record.request
    assert copy.meta is not record.meta
