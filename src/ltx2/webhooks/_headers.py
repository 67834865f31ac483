"""Reading a delivery's headers by name, in any case, without copying them."""

from __future__ import annotations

from collections.abc import Mapping

from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["header"]

#: Mappings whose ``get`` already ignores case (aiohttp's request headers are a proxy).
_CASELESS = (CIMultiDictProxy, CIMultiDict)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` (lower case) in ``headers``: aiohttp's request headers
    (case-insensitive: one lookup, the receiver's hot path) or any mapping, such as a plain
    dict a caller built, whose keys may be in any case (then scanned once)."""
    value = headers.get(name)
    if value is None and not isinstance(headers, _CASELESS):
        for key, v in headers.items():
            if key.lower() == name:
                return v
    return value
