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

from ._limits import Limiter, LimitsBackend

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
    #: Where the key's limits live (the store's own, or ``Client(limits_backend=...)``).
    limits_backend: LimitsBackend
    #: Names the key in records and limits: its fingerprint (a keyed hash), never the key.
    scope: str
    #: The key's limiter, set when the client starts.
    limiter: Limiter | None = None
    #: ``Client(uploader=...)``: stores a local image, returns its https URL.
    uploader: Uploader | None = None

    @property
    def webhooks(self) -> bool:
        """True when jobs are told to call the receiver back."""
        return self.receiver is not None and self.capabilities.webhooks is not None

    def open_limiter(self) -> Limiter:
        """The key's limiter (clients on one key share it: in this event loop, or through
        the limits backend across replicas)."""
        if self.limiter is None:
            self.limiter = self.limits_backend.limiter(self.name, self.scope, self.limits)
        return self.limiter

    async def close_limiter(self) -> None:
        """This client is done with its limiter (after its jobs' slots were released)."""
        limiter, self.limiter = self.limiter, None
        if limiter is not None:
            await limiter.aclose()

    def release_slot(self) -> None:
        """A job this client counted in has ended, failed to start or been let go."""
        if self.limiter is not None:
            self.limiter.release_slot()
