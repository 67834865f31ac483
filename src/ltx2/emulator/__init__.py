"""A local emulator of the five providers' LTX-2 Fast APIs, for tests, demos and benchmarks.

It serves Eachlabs, fal, GMI Cloud, RunComfy and AI/ML API from one aiohttp server, each
under its own prefix with the paths, auth headers, status values, error bodies and limits
their documents describe, sends their webhooks (fal's signed with an Ed25519 key it
publishes as JWKS), and renders real H.264/AAC MP4s of the input image moved by the asked
camera motion. Timing and faults are settings::

    from ltx2.emulator import Emulator, Faults

    async with Emulator(time_scale=0.01, seed=0, faults=Faults(server_error=0.1)) as emu:
        client = ltx2.Client("eachlabs", base_url=emu.provider_url("eachlabs"), api_key="k")

``ltx2 emulator`` runs it from the command line (see :func:`main`).
"""

from __future__ import annotations

from ._cli import main
from ._faults import Faults
from ._server import Emulator

__all__ = ["Emulator", "Faults", "main"]
