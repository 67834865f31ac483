"""The providers: one module each, pure translation between ltx2 and a provider's HTTP API.

``get(name)`` returns a provider class; adding a provider is one new module and one line in
``_MODULES``.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable
from typing import Literal, get_args

from .._errors import InvalidRequestError
from ._base import Capabilities, Created, Delivery, ListedJob, Provider, UploadTarget, registry

__all__ = [
    "PROVIDERS",
    "Capabilities",
    "Created",
    "Delivery",
    "ListedJob",
    "Provider",
    "ProviderName",
    "UploadTarget",
    "all_providers",
    "get",
    "names_where",
]

#: A provider's name, as type checkers see it. At run time any case is accepted ("FAL").
#: A closed set: a new provider is a new module of a new ltx2 release, so there is no ``str``
#: escape hatch; a name read from configuration is checked with ``get(name)``.
ProviderName = Literal["eachlabs", "fal", "gmicloud", "runcomfy", "aimlapi"]
PROVIDERS: tuple[ProviderName, ...] = get_args(ProviderName)
#: Provider name → module. The modules register their classes when imported.
_MODULES: dict[str, str] = {name: name for name in PROVIDERS}


def normalize(name: object) -> ProviderName:
    """``name`` as the provider's own lower-case name, in any case and without surrounding
    space (``"FAL"`` → ``"fal"``); else InvalidRequestError naming the known ones and the
    nearest one."""
    key = name.strip().lower() if isinstance(name, str) else None
    if key in _MODULES:
        return next(p for p in PROVIDERS if p == key)
    hint = ""
    if isinstance(name, str):
        squashed = re.sub(r"[^a-z0-9]", "", name.lower())  # "GMI Cloud", "AI/ML API"
        near: list[str] = [
            p for p in PROVIDERS if squashed and (p.startswith(squashed) or squashed.startswith(p))
        ]
        near = near or difflib.get_close_matches(squashed, PROVIDERS, n=1, cutoff=0.6)
        if near:
            hint = f"; did you mean {near[0]!r}?"
    shown = repr(name) if isinstance(name, str) else f"{name!r} ({type(name).__name__})"
    raise InvalidRequestError(
        f"provider: {shown} is not a provider{hint} (one of {', '.join(PROVIDERS)}, any case)",
        field="provider",
        value=name,
        allowed=PROVIDERS,
    )


def get(name: str) -> type[Provider]:
    """The provider class called ``name`` (any case); InvalidRequestError names the known
    ones, and the nearest one to a near miss."""
    key = normalize(name)
    importlib.import_module(f"{__name__}.{_MODULES[key]}")
    return registry()[key]


def all_providers() -> dict[str, type[Provider]]:
    """Every provider class by name, in :data:`PROVIDERS` order. Imports each module, so an
    answer never depends on which modules happen to have been imported already."""
    return {name: get(name) for name in PROVIDERS}


def names_where(test: Callable[[Capabilities], object]) -> list[str]:
    """The names of the providers whose capabilities pass ``test`` (all modules counted)."""
    return [name for name, cls in all_providers().items() if test(cls.capabilities)]
