"""What the provider translation tests share: recorded replies and the seeds' defaults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ltx2._types import HTTPReply

FIXTURES = Path(__file__).parents[2] / "fixtures"

#: The generation fields' defaults, as every seed's input schema names them.
SEED_DEFAULTS: dict[str, Any] = {
    "duration": 6,
    "resolution": "1080p",
    "aspect_ratio": "16:9",
    "fps": 25,
    "generate_audio": True,
}


def load_fixture(provider: str, name: str) -> Any:
    """A recorded JSON body from ``tests/fixtures/<provider>/<name>``."""
    return json.loads((FIXTURES / provider / name).read_text())


def reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> HTTPReply:
    """An HTTP reply carrying ``body`` (JSON-encoded unless it is bytes)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HTTPReply(status, headers or {}, raw)
