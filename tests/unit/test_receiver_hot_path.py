"""What the receiver's per-delivery path may share or skip, and the behaviour it must keep."""

from __future__ import annotations

import json

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from ltx2._errors import WebhookError
from ltx2.webhooks._eachlabs_verify import verify_eachlabs
from ltx2.webhooks._headers import header
from ltx2.webhooks._receiver import _ok


@pytest.mark.parametrize("name", ["X-Webhook-Secret", "x-webhook-secret", "X-WEBHOOK-SECRET"])
def test_headers_are_found_in_any_case_in_aiohttp_headers_and_plain_dicts(name: str) -> None:
    plain = {"Content-Type": "application/json", name: "s3cret"}
    proxy = CIMultiDictProxy(CIMultiDict(plain))
    for headers in (plain, proxy):
        assert header(headers, "x-webhook-secret") == "s3cret"
        assert header(headers, "x-webhook-signature") is None
        verify_eachlabs(b"{}", headers, "s3cret", now=0.0)
        with pytest.raises(WebhookError):
            verify_eachlabs(b"{}", headers, "other", now=0.0)


def test_every_200_is_json_and_owns_its_headers() -> None:
    first = _ok()
    assert first.status == 200
    assert first.content_type == "application/json"
    assert first.charset == "utf-8"
    assert first.body is not None
    assert json.loads(bytes(first.body)) == {"ok": True, "message": "ok"}
    first.headers["X-Extra"] = "1"  # a host app's middleware may add headers to one reply
    assert "X-Extra" not in _ok().headers
