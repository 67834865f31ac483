"""ltx2: an asyncio-native SDK for LTX-2 Fast image-to-video on hosted providers.

    async with ltx2.Client("fal") as client:
        video = await client.generate(image="cat.jpg", prompt="The cat yawns")
        await video.save("cat.mp4")

Providers: Eachlabs, fal, GMI Cloud, RunComfy, AI/ML API. Jobs resolve from webhooks
(``WebhookReceiver``) or from an adaptive poller; stores keep them across restarts
(``SQLiteStore``) and replicas (``RedisStore``).
"""

from __future__ import annotations

from ._client import Client as Client
from ._config import DownloadPolicy as DownloadPolicy
from ._config import Limits as Limits
from ._config import PollPolicy as PollPolicy
from ._config import RetryPolicy as RetryPolicy
from ._config import Timeouts as Timeouts
from ._errors import APIError as APIError
from ._errors import AuthenticationError as AuthenticationError
from ._errors import BadRequestError as BadRequestError
from ._errors import ClientClosedError as ClientClosedError
from ._errors import InvalidRequestError as InvalidRequestError
from ._errors import JobCancelledError as JobCancelledError
from ._errors import JobFailedError as JobFailedError
from ._errors import JobTimeoutError as JobTimeoutError
from ._errors import LTX2Error as LTX2Error
from ._errors import NotFoundError as NotFoundError
from ._errors import RateLimitError as RateLimitError
from ._errors import ServerError as ServerError
from ._errors import TransportError as TransportError
from ._errors import UnsupportedError as UnsupportedError
from ._errors import WebhookError as WebhookError
from ._job import Job as Job
from ._job import Video as Video
from ._request import VideoRequest as VideoRequest
from ._types import JobStatus as JobStatus
from ._types import StatusUpdate as StatusUpdate
from .providers import PROVIDERS as PROVIDERS
from .stores import MemoryStore as MemoryStore
from .stores import RedisStore as RedisStore
from .stores import SQLiteStore as SQLiteStore
from .stores import Store as Store
from .webhooks import WebhookReceiver as WebhookReceiver

__version__ = "0.1.0"

__all__ = [
    "PROVIDERS",
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ClientClosedError",
    "DownloadPolicy",
    "InvalidRequestError",
    "Job",
    "JobCancelledError",
    "JobFailedError",
    "JobStatus",
    "JobTimeoutError",
    "LTX2Error",
    "Limits",
    "MemoryStore",
    "NotFoundError",
    "PollPolicy",
    "RateLimitError",
    "RedisStore",
    "RetryPolicy",
    "SQLiteStore",
    "ServerError",
    "StatusUpdate",
    "Store",
    "Timeouts",
    "TransportError",
    "UnsupportedError",
    "Video",
    "VideoRequest",
    "WebhookError",
    "WebhookReceiver",
]
