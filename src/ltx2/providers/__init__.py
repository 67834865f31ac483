"""The providers: one module each, pure translation between ltx2 and a provider's HTTP API.

``get(name)`` returns a provider class; adding a provider is one new module and one line in
``_MODULES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from .._errors import InvalidRequestError
from ._base import Capabilities, Created, Delivery, ListedJob, Provider, UploadTarget, registry

__all__ = [
    "PROVIDERS",
    "Capabilities",
    "Created",
    "Delivery",
    "ListedJob",
    "Provider",
    "UploadTarget",
    "all_providers",
    "get",
    "names_where",
]

#: Provider name → module. The modules register their classes when imported.
_MODULES = {
    "eachlabs": "eachlabs",
    "fal": "fal",
    "gmicloud": "gmicloud",
    "runcomfy": "runcomfy",
    "aimlapi": "aimlapi",
}
PROVIDERS: tuple[str, ...] = tuple(_MODULES)


def get(name: str) -> type[Provider]:
    """The provider class called ``name``; InvalidRequestError names the known ones."""
    module = _MODULES.get(name) if isinstance(name, str) else None
    if module is None:
        raise InvalidRequestError(
            f"provider: {name!r} is not a provider; choose one of {', '.join(PROVIDERS)}",
            field="provider",
            value=name,
            allowed=PROVIDERS,
        )
    importlib.import_module(f"{__name__}.{module}")
    return registry()[name]


def all_providers() -> dict[str, type[Provider]]:
    """Every provider class by name, in :data:`PROVIDERS` order. Imports each module, so an
    answer never depends on which modules happen to have been imported already."""
    return {name: get(name) for name in PROVIDERS}


def names_where(test: Callable[[Capabilities], object]) -> list[str]:
    """The names of the providers whose capabilities pass ``test`` (all modules counted)."""
    return [name for name, cls in all_providers().items() if test(cls.capabilities)]
