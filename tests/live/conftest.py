"""The live tier: real providers, real keys, real money (a few cents a run).

``pytest -m live`` runs one cheapest generation per provider whose key is set (6 s, 1080p,
25 fps, no audio, the seed's own example image); every other provider is skipped. With
``--record`` the replies are written, redacted, to ``tests/fixtures/<provider>/live/`` (see
:mod:`tests.live._record`); ``tests/unit/providers/test_live_replay.py`` replays them through
the adapters on every run. Without ``-m live`` these tests never run, even with keys set.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "live" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="the live tier runs only with -m live (it spends money)")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)
