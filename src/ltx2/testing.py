"""pytest plugin for testing code that uses ltx2 (registered as the ``ltx2`` pytest11 entry point).

It provides one fixture, ``ltx2_emulator``: a started :class:`ltx2.emulator.Emulator` with
``time_scale=0.01`` and ``seed=0``, stopped after the test::

    async def test_generate(ltx2_emulator):
        async with ltx2.Client("fal", base_url=ltx2_emulator.provider_url("fal"), api_key="k") as c:
            video = await c.generate(image="cat.jpg", prompt="The cat yawns")

Override any :class:`~ltx2.emulator.Emulator` argument with the marker::

    @pytest.mark.ltx2_emulator(time_scale=0.1, faults=Faults(webhook_drop=0.5), render="stub")
    async def test_drops(ltx2_emulator): ...

The fixture is async and needs pytest-asyncio (or anyio's plugin in asyncio mode). This
module loads in every pytest run where ltx2 is installed, so it imports nothing heavy: the
emulator (and PyAV, numpy, Pillow) are imported inside the fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from ltx2.emulator import Emulator

__all__ = ["DEFAULTS", "ltx2_emulator", "pytest_configure"]

DEFAULTS: dict[str, Any] = {"time_scale": 0.01, "seed": 0}
"""The fixture's emulator arguments before marker overrides."""


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``ltx2_emulator`` marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        "ltx2_emulator(**kwargs): arguments for the ltx2_emulator fixture's Emulator "
        "(time_scale, seed, faults, processing_time, render, api_keys, limits, ...)",
    )


_F = TypeVar("_F", bound=Callable[..., Any])


def _async_fixture(fn: _F) -> _F:
    """``pytest_asyncio.fixture`` when installed; else plain ``pytest.fixture``, and pytest
    reports that the async fixture needs an async plugin."""
    try:
        import pytest_asyncio
    except ImportError:  # pragma: no cover - depends on the user's environment
        return cast(_F, pytest.fixture(fn))
    return cast(_F, pytest_asyncio.fixture(fn))


@_async_fixture
async def ltx2_emulator(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    """A started ``Emulator(time_scale=0.01, seed=0)``, stopped after the test.

    Override any argument with ``@pytest.mark.ltx2_emulator(**kwargs)``.
    """
    from ltx2.emulator import Emulator

    kwargs = dict(DEFAULTS)
    marker = request.node.get_closest_marker("ltx2_emulator")
    if marker is not None:
        if marker.args:
            raise TypeError("@pytest.mark.ltx2_emulator takes keyword arguments only")
        kwargs.update(marker.kwargs)
    async with Emulator(**kwargs) as emu:
        yield emu
