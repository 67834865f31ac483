"""What the parts of a client share: one provider, its transport, the store, the lifecycle.

A :class:`ltx2.Client` is a thin front over three roles, each in its own module and each
holding this context: submitting (``_submitting.Submitter``), resolving
(``_resolving.Resolver``, which also answers what a :class:`ltx2.Job` asks) and resuming
(``_resuming.Resumer``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._limits import KeyLimiter, shared_limiter

if TYPE_CHECKING:
    from ._config import Limits
    from ._lifecycle import Lifecycle
    from ._transport import Transport
    from .providers import Provider
    from .providers._base import Capabilities
    from .stores import Store
    from .webhooks import WebhookReceiver

__all__ = ["Context", "Uploader"]


#: ``Client(uploader=...)``: stores a local image's bytes (with their MIME type) somewhere the
#: provider can fetch them, and returns the https URL.
Uploader = Callable[[bytes, str], Awaitable[str]]


@dataclass(eq=False, repr=False, slots=True)
class Context:
    """One client's shared parts (no repr: it holds the API key)."""

    name: str
    provider: Provider
    capabilities: Capabilities
    transport: Transport
    store: Store
    receiver: WebhookReceiver | None
    lifecycle: Lifecycle
    #: Names this client in records and poll leases (one per process or replica).
    owner: str
    limits: Limits
    api_key: str
    #: The key's limiter in the running event loop, set when the client starts.
    limiter: KeyLimiter | None = None
    #: ``Client(uploader=...)``: stores a local image, returns its https URL.
    uploader: Uploader | None = None

    @property
    def webhooks(self) -> bool:
        """True when jobs are told to call the receiver back."""
        return self.receiver is not None and self.capabilities.webhooks is not None

    def open_limiter(self) -> KeyLimiter:
        """The key's limiter for this event loop (clients on one key share it)."""
        if self.limiter is None:
            self.limiter = shared_limiter(self.name, self.api_key, self.limits)
        return self.limiter

    def release_slot(self) -> None:
        """A job this client counted in has ended, failed to start or been let go."""
        if self.limiter is not None:
            self.limiter.release_slot()
