"""The providers: one module each, pure translation between ltx2 and a provider's HTTP API.

``get(name)`` returns a provider class; adding a provider is one new module and one line in
``_MODULES``.
"""

from __future__ import annotations

import importlib

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
    "get",
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
