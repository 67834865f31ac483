"""What a provider module is: pure translation between ltx2 and one provider's HTTP API.

A provider builds :class:`~ltx2._types.HTTPCall` s and parses :class:`~ltx2._types.HTTPReply`
s and webhook bodies into normalized :class:`~ltx2._types.StatusUpdate` s. It never opens a
connection, sleeps or retries: the transport, the poller and the receiver do the I/O.
"""

from __future__ import annotations

import functools
import ipaddress
import reprlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeGuard
from urllib.parse import urlsplit

from .._config import Limits
from .._errors import AuthenticationError, InvalidRequestError, UnsupportedError
from .._request import DURATIONS, VideoRequest
from .._types import HTTPCall, HTTPReply, JobStatus, StatusUpdate

__all__ = [
    "Capabilities",
    "Created",
    "Delivery",
    "ListedJob",
    "Provider",
    "UploadTarget",
    "is_http",
    "is_loopback_url",
    "json_object",
    "preview",
    "require_image",
    "same_origin",
    "seed_input",
    "upload_target",
]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider can do; checked before any request is sent.

    ``durations``: allowed seconds. ``camera_motion``: takes GMI's camera motion field.
    ``text_only``: a prompt without an image is allowed. ``cancel``: ``"any"``, ``"queued"``
    (only before it starts), ``"best-effort"`` or ``None``. ``webhooks``: ``"secret"`` (a
    shared per-job secret echoed back), ``"ed25519"`` (signed) or ``None`` (poll only).
    ``data_uri``: accepts ``data:`` images, up to ``max_data_uri_bytes`` decoded.
    ``upload``: has a storage upload for local images. ``status_stream``: a server-sent-events
    status stream. ``list_jobs``: can list the key's jobs (to find a job after a crash).
    ``expected_seconds``: the stated processing time range, for the poller.
    """

    durations: tuple[int, ...] = DURATIONS
    camera_motion: bool = False
    text_only: bool = False
    cancel: str | None = None
    webhooks: str | None = None
    data_uri: bool = False
    max_data_uri_bytes: int | None = None
    upload: bool = False
    status_stream: bool = False
    list_jobs: bool = False
    expected_seconds: tuple[float, float] = (30.0, 120.0)


@dataclass(frozen=True, slots=True)
class Created:
    """A parsed create reply: the provider's job id, the URLs/fields to keep for later calls
    (``meta``), and the status if the reply already carried one (GMI may reply terminal)."""

    job_id: str
    meta: Mapping[str, str] = field(default_factory=dict)
    update: StatusUpdate | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """A parsed webhook body: whose job it is (the provider's id) and what it says."""

    job_id: str | None
    update: StatusUpdate


@dataclass(frozen=True, slots=True)
class UploadTarget:
    """Where to send a local image's bytes (``method`` ``put_url`` with ``headers``, which the
    transfer must carry), and the URL the provider will read it from afterwards:
    ``file_url``, or ``None`` when the transfer's reply says (:meth:`Provider.parse_uploaded`,
    fal's one-step CDN upload)."""

    put_url: str
    file_url: str | None
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "PUT"


@dataclass(frozen=True, slots=True)
class ListedJob:
    """One job from a provider's list endpoint (used to find jobs after a crash)."""

    job_id: str
    update: StatusUpdate
    prompt: str | None = None
    created_at: float | None = None


def is_loopback_url(url: str) -> bool:
    """True for http(s) URLs on localhost or a loopback address."""
    return _is_loopback_host((urlsplit(url).hostname or "").lower())


@functools.lru_cache(maxsize=256)
def _is_loopback_host(host: str) -> bool:
    # Cached: asked on every submit (of the image URL) and raising and catching a ValueError
    # for every name that is not an address was a measurable share of a submit.
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Provider(ABC):
    """One hosted provider's API. Subclasses set the class attributes and the translations.

    An instance holds the API key and base URL; its ``repr`` never shows the key.
    """

    name: ClassVar[str]
    env_var: ClassVar[str]
    #: Every environment variable the key may be in, first match wins (default: ``env_var``).
    env_vars: ClassVar[tuple[str, ...]] = ()
    default_base_url: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    default_limits: ClassVar[Limits] = Limits()
    #: The keyword options this provider takes (``Client(..., **provider_options)``); any
    #: other name is refused, so that a misspelt option is not silently ignored.
    option_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, api_key: str, base_url: str | None = None, **options: Any) -> None:
        self._api_key = api_key
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.options = options

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url}>"

    @classmethod
    def key_variables(cls) -> tuple[str, ...]:
        """The environment variables the API key is read from, in order."""
        return cls.env_vars or (cls.env_var,)

    @classmethod
    def api_key_from_env(cls, environ: Mapping[str, str]) -> str | None:
        """The API key from the first of :meth:`key_variables` that is set and not blank."""
        for name in cls.key_variables():
            value = environ.get(name)
            if value is not None and value.strip():
                return value
        return None

    @classmethod
    def resolve_api_key(cls, api_key: str | None, environ: Mapping[str, str]) -> str:
        """The key a client uses: ``api_key``, else :meth:`api_key_from_env`, without
        surrounding whitespace. None at all, or a blank one, is
        :class:`~ltx2.AuthenticationError` with ``status_code=None`` that names the
        variable(s) to set: it is found before any request is sent."""
        names = " or ".join(cls.key_variables())
        if api_key is not None:
            if not isinstance(api_key, str):
                # The value is never shown: it may be a key of the wrong type.
                raise InvalidRequestError(
                    f"api_key: expected a string, got {type(api_key).__name__}",
                    field="api_key", value=f"<{type(api_key).__name__}>", allowed="a string",
                )  # fmt: skip
            if api_key.strip():
                return api_key.strip()
            reason = f"the api_key given for {cls.name} is blank; pass the key, or set {names}"
        else:
            found = cls.api_key_from_env(environ)
            if found is not None:
                return found.strip()
            blank = [name for name in cls.key_variables() if name in environ]
            if blank:
                reason = (
                    f"{' and '.join(blank)} {'is' if len(blank) == 1 else 'are'} set but blank: "
                    f"no API key for {cls.name}; set {names} to the key, or pass api_key="
                )
            else:
                reason = f"no API key for {cls.name}: set {names}, or pass api_key="
        raise AuthenticationError(
            f"{reason} (no request was sent)", status_code=None, provider=cls.name
        )

    @property
    def local(self) -> bool:
        """True when the base URL is on loopback (the emulator, or a local proxy)."""
        return is_loopback_url(self.base_url)

    # -- requests -----------------------------------------------------------------------

    @abstractmethod
    def auth_headers(self) -> dict[str, str]:
        """The headers that authenticate a call."""

    @abstractmethod
    def create(
        self,
        request: VideoRequest,
        image_url: str | None,
        *,
        webhook_url: str | None,
        webhook_secret: str | None,
    ) -> HTTPCall:
        """The create call. ``image_url`` is the image as the provider should read it (an
        http(s) URL or a data URI, already uploaded or encoded by the client)."""

    @abstractmethod
    def parse_create(self, reply: HTTPReply) -> Created:
        """Parse a 2xx create reply."""

    @abstractmethod
    def status(self, job_id: str, meta: Mapping[str, str]) -> HTTPCall:
        """One status read."""

    @abstractmethod
    def parse_status(self, reply: HTTPReply) -> StatusUpdate:
        """Parse a 2xx status reply."""

    def result(self, job_id: str, meta: Mapping[str, str]) -> HTTPCall:
        """The result read, for providers whose status reply does not carry the video."""
        raise UnsupportedError(f"{self.name} has no separate result call")

    def parse_result(self, reply: HTTPReply) -> StatusUpdate:
        """Parse a 2xx result reply."""
        return self.parse_status(reply)

    def cancel(self, job_id: str, meta: Mapping[str, str]) -> HTTPCall:
        """The cancel call, or :class:`UnsupportedError` when the provider has none."""
        raise UnsupportedError(
            f"{self.name} cannot cancel a job; providers that can: {cancel_capable()}"
        )

    def upload(self, file_name: str, content_type: str, *, fallback: int = 0) -> HTTPCall | None:
        """The first step of a storage upload (ask where to send the file). ``fallback``
        picks a provider's older upload route when the newer one failed (fal); ``None`` when
        there is no such route."""
        raise UnsupportedError(f"{self.name} has no upload API")

    def parse_upload(self, reply: HTTPReply) -> UploadTarget:
        """Parse the reply to :meth:`upload`."""
        raise UnsupportedError(f"{self.name} has no upload API")

    def parse_uploaded(self, reply: HTTPReply) -> str:
        """The file's URL from the transfer's reply, when :meth:`parse_upload` had none."""
        raise ValueError(f"{self.name}'s upload reply names no file URL")

    def parse_cancel(self, reply: HTTPReply) -> StatusUpdate | None:
        """What a cancel reply (a 2xx, or a status the cancel call ``accept`` s) says: the
        job's status when the reply settles it, or ``None`` when only a status read can tell
        (the cancel was only requested, or the job had already finished)."""
        return None

    def stream(self, job_id: str, meta: Mapping[str, str]) -> HTTPCall:
        """A server-sent-events status stream, for providers with one."""
        raise UnsupportedError(f"{self.name} has no status stream")

    def parse_stream_event(self, data: str) -> StatusUpdate:
        """Parse one ``data:`` payload of the status stream."""
        raise UnsupportedError(f"{self.name} has no status stream")

    def list_jobs(self) -> HTTPCall:
        """List the key's recent jobs, for providers with a list endpoint."""
        raise UnsupportedError(f"{self.name} cannot list jobs")

    def parse_list(self, reply: HTTPReply) -> list[ListedJob]:
        """Parse the reply to :meth:`list_jobs`."""
        raise UnsupportedError(f"{self.name} cannot list jobs")

    # -- replies that are errors ----------------------------------------------------------

    def parse_error(self, reply: HTTPReply) -> tuple[str, Any, str | None]:
        """``(message, details, error_type)`` from an error reply of any shape."""
        try:
            body = reply.json()
        except ValueError:
            body = None
        return generic_error(reply, body)

    def reply_error(self, reply: HTTPReply) -> tuple[str, Any] | None:
        """An error carried by a 2xx reply (RunComfy's ``error_code``), or None."""
        return None

    # -- webhooks (class-level: a receiver has no API key) --------------------------------

    @classmethod
    def parse_webhook(cls, body: Any, headers: Mapping[str, str]) -> Delivery:
        """Parse a webhook body (already JSON-decoded). Raises ValueError when malformed."""
        raise UnsupportedError(f"{cls.name} does not send webhooks")


_PREVIEW = reprlib.Repr()
_PREVIEW.maxlevel, _PREVIEW.maxstring, _PREVIEW.maxother = 3, 80, 80


def preview(value: Any) -> str:
    """A short repr of any JSON value for an error message: bounded in depth and length, so a
    hostile body (100,000 levels deep, a megabyte long) cannot make the message itself fail."""
    return _PREVIEW.repr(value)[:200]


def json_object(body: Any, what: str) -> dict[str, Any]:
    """``body`` if it is a JSON object; else a ValueError naming ``what`` (e.g. "fal status
    reply") and the start of what came instead."""
    if not isinstance(body, dict):
        raise ValueError(f"{what} is not a JSON object: {preview(body)}")
    return body


def is_http(value: Any) -> TypeGuard[str]:
    """An http(s) URL (the only kind kept from a reply: they are called with the API key)."""
    return isinstance(value, str) and value.startswith(("https://", "http://"))


def same_origin(url: str, base: str) -> bool:
    """``url`` is on ``base``'s scheme, host and port. URLs from a reply are followed (with the
    API key) only then: a proxy ``base_url`` is never bypassed and the key never sent
    elsewhere."""
    origin, prefix = _origin(base)
    # A URL that starts with base's own "scheme://netloc/" has exactly base's netloc (a
    # netloc ends at the first "/"): the common case, without parsing the URL.
    if url.startswith(prefix):
        return True
    a = urlsplit(url)
    return (a.scheme, a.hostname, a.port) == origin


@functools.lru_cache(maxsize=64)
def _origin(base: str) -> tuple[tuple[str, str | None, int | None], str]:
    """``base``'s (scheme, host, port) and its ``scheme://netloc/`` prefix, parsed once: a
    client compares every URL of every reply against the same base_url."""
    b = urlsplit(base)
    return (b.scheme, b.hostname, b.port), f"{b.scheme}://{b.netloc}/"


def upload_target(body: dict[str, Any], provider: str) -> UploadTarget:
    """An ``{upload_url, file_url, content_type?}`` upload reply (fal storage's legacy
    ``initiate``): ``upload_url`` to PUT the bytes to, ``file_url`` to pass on."""
    put_url, file_url = body.get("upload_url"), body.get("file_url")
    if not is_http(put_url) or not is_http(file_url):
        raise ValueError(f"{provider} upload reply lacks upload_url/file_url: {preview(body)}")
    content_type = body.get("content_type")
    headers = {"Content-Type": content_type} if isinstance(content_type, str) else {}
    return UploadTarget(put_url, file_url, headers)


def require_image(image_url: str | None, provider: str) -> str:
    """The image URL of an image-to-video create, or an InvalidRequestError naming the
    provider (the client refuses prompt-only requests earlier; this guards direct use)."""
    if not image_url:
        raise InvalidRequestError(
            f"image: {provider}'s image-to-video needs an image", field="image", value=None
        )
    return image_url


def seed_input(request: VideoRequest, **image: Any) -> dict[str, Any]:
    """The generation fields that every seed's input schema names alike (seeds 000-004:
    prompt, duration, resolution, aspect_ratio, fps, generate_audio), after ``image``: the
    image under the provider's own field name (``image_url=...``), if any."""
    return {
        **image,
        "prompt": request.prompt,
        "duration": request.duration,
        "resolution": request.resolution,
        "aspect_ratio": request.aspect_ratio,
        "fps": request.fps,
        "generate_audio": request.generate_audio,
    }


def generic_error(reply: HTTPReply, body: Any) -> tuple[str, Any, str | None]:
    """Pull a message out of the usual error shapes: ``{message}``, ``{error}``,
    ``{detail}``, ``{error: {message}}``; otherwise the body text."""
    error_type = reply.headers.get("x-fal-error-type")
    if isinstance(body, dict):
        details: Any = body.get("details", body.get("detail"))
        for key in ("message", "error_message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("name")
            if isinstance(value, str) and value:
                return value, details if details is not None else body, error_type
            if isinstance(value, list) and value:
                return _describe_detail_list(value), value, error_type
        return f"HTTP {reply.status}", body, error_type
    text = reply.body[:500].decode("utf-8", "replace").strip()
    return text or f"HTTP {reply.status}", None, error_type


def _describe_detail_list(items: list[Any]) -> str:
    """FastAPI's validation errors, ``[{loc: [...], msg}, ...]``, as ``"a.b: msg; ..."``; any
    other shape (a ``loc`` that is not a list, a ``msg`` that is not text) is shown, not
    trusted."""
    parts = []
    for item in items[:5]:
        if isinstance(item, dict):
            loc = item.get("loc")
            path = loc if isinstance(loc, list) else [loc] if loc is not None else []
            where = ".".join(_text_of(p) for p in path if p != "body")
            msg = item.get("msg", item)
            parts.append(f"{where}: {_text_of(msg)}" if where else _text_of(msg))
        else:
            parts.append(_text_of(item))
    return "; ".join(parts)


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else preview(value)


_REGISTRY: dict[str, type[Provider]] = {}


def register(cls: type[Provider]) -> type[Provider]:
    """Class decorator: make a provider available by name."""
    _REGISTRY[cls.name] = cls
    return cls


def registry() -> Mapping[str, type[Provider]]:
    """The providers by name."""
    return _REGISTRY


def cancel_capable() -> str:
    """The names of the providers that can cancel, for error messages. Every provider module
    is counted, imported or not (the registry holds only the imported ones)."""
    from . import names_where  # the package imports this module: a late import

    return ", ".join(sorted(names_where(lambda c: c.cancel))) or "none"


def status_from(table: Mapping[str, JobStatus], raw: Any, provider: str) -> JobStatus:
    """Map a provider status word; an unknown word is treated as still running (a provider
    adding a new intermediate status must not fail jobs) but never as finished."""
    if isinstance(raw, str):
        found = table.get(raw.lower())
        if found is not None:
            return found
    return JobStatus.RUNNING
