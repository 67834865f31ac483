"""Recording real providers' replies for the live tier, and replaying them through the
adapters (tests/unit/providers/test_live_replay.py).

A recording is one JSON file per reply, ``tests/fixtures/<provider>/live/<NN>-<kind>.json``:
``{"kind", "status", "content_type", "body"}``. Before it is written it is redacted: the API
key wherever it appears, any field whose name says token, secret, key or signature, any
user or organization id, and every URL's query string (signed storage URLs carry
credentials there) are replaced.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ltx2._types import HTTPReply, JobStatus, StatusUpdate
from ltx2.providers import Created, Provider

__all__ = ["FIXTURES", "REDACTED", "Recording", "recordings", "redact", "replay"]

FIXTURES = Path(__file__).parents[1] / "fixtures"
REDACTED = "<redacted>"
#: The kinds of reply a recording can be, and what parses each.
KINDS = ("create", "status", "result")
_SECRET_FIELD = re.compile(r"token|secret|api[_-]?key|signature|password|user_?id|org", re.I)


def redact(value: Any, key: str) -> Any:
    """``value`` (a decoded JSON body) with secrets, identities and URL queries replaced."""
    if isinstance(value, dict):
        return {
            k: REDACTED if _SECRET_FIELD.search(k) and v not in (None, "") else redact(v, key)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if isinstance(value, str):
        if key and key in value:
            value = value.replace(key, REDACTED)
        if value.startswith(("https://", "http://")):
            parts = urlsplit(value)
            if parts.query or parts.username or parts.password:
                host = parts.hostname or ""
                port = f":{parts.port}" if parts.port else ""
                value = urlunsplit((parts.scheme, host + port, parts.path, "", ""))
        return value
    return value


class Recording:
    """Writes one provider's replies, numbered in the order they came."""

    def __init__(self, provider: str, key: str, directory: Path | None = None) -> None:
        self.directory = directory or FIXTURES / provider / "live"
        self.key = key
        self.count = 0

    def add(self, kind: str, reply: HTTPReply) -> Path:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        try:
            body: Any = reply.json()
        except ValueError:
            body = reply.body.decode("utf-8", "replace")
        self.count += 1
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{self.count:02d}-{kind}.json"
        entry = {
            "kind": kind,
            "status": reply.status,
            "content_type": reply.headers.get("content-type", ""),
            "body": redact(body, self.key),
        }
        path.write_text(json.dumps(entry, indent=2, sort_keys=True) + "\n")
        return path


def recordings() -> list[tuple[str, Path]]:
    """Every recorded reply in the repository: ``(provider, path)``, in order."""
    return [
        (path.parents[1].name, path)
        for path in sorted(FIXTURES.glob("*/live/*.json"))
        if path.parents[1].name != "live"
    ]


def replay(provider: Provider, path: Path) -> Created | StatusUpdate:
    """Parse one recorded reply with the adapter, as the client would have."""
    entry = json.loads(path.read_text())
    raw = entry["body"]
    body = raw if isinstance(raw, str) else json.dumps(raw)
    reply = HTTPReply(int(entry["status"]), {"content-type": entry["content_type"]}, body.encode())
    kind = entry["kind"]
    if kind == "create":
        return provider.parse_create(reply)
    if kind == "status":
        return provider.parse_status(reply)
    if kind == "result":
        return provider.parse_result(reply)
    raise ValueError(f"{path}: unknown kind {kind!r}")


def unfinished(update: StatusUpdate) -> bool:
    return not update.status.terminal and update.status is not JobStatus.UNKNOWN
