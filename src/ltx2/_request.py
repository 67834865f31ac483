"""``VideoRequest``: what to generate, validated against the seeds' shared support matrix.

The matrix (seeds/README.md, and each seed's input schema): duration 6–20 s in steps of 2,
more than 10 s only at 1080p and 25 fps; resolutions 1080p, 1440p, 2160p; fps 25 or 50;
aspect ratio 16:9 only; ``generate_audio`` defaults to true. ``camera_motion`` is GMI Cloud's
(seed 002). Images are PNG, JPEG, WebP, AVIF or HEIF (seeds 000, 001, 003), recognised by
their magic bytes, at most 50 MB (seed 003's recommended limit).

An image may be given as an http(s) URL, a data URI, a local path (``str`` or
``os.PathLike``), ``bytes``/``bytearray``/``memoryview``, an open binary file (anything with
``read()`` returning bytes) or a PIL image; files and PIL images are read (encoded) once, when
the request is built, and kept as bytes.

The keyword form of ``VideoRequest(...)``, ``Client.submit(...)`` and ``Client.generate(...)``
is typed with ``Unpack`` of the TypedDicts below, so a type checker refuses a misspelt field
or a value outside the matrix; the runtime checks stay, for untyped callers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import (
    Any,
    Literal,
    NotRequired,
    Protocol,
    Required,
    TypedDict,
    Unpack,
    get_args,
    overload,
)  # fmt: skip

import anyio
import pydantic
from pydantic import BaseModel, ConfigDict, StrictBool, field_validator, model_validator

from ._errors import InvalidRequestError

__all__ = [
    "CAMERA_MOTIONS",
    "DURATIONS",
    "FPS_VALUES",
    "MAX_IMAGE_BYTES",
    "MAX_PROMPT_CHARS",
    "RESOLUTIONS",
    "AspectRatio",
    "CameraMotion",
    "Duration",
    "Fps",
    "Image",
    "ImageSource",
    "Resolution",
    "VideoRequest",
    "VideoRequestFields",
    "VideoRequestOverrides",
    "data_uri",
    "image_reference",
    "sniff_image",
    "stored_image",
]

Duration = Literal[6, 8, 10, 12, 14, 16, 18, 20]
Resolution = Literal["1080p", "1440p", "2160p"]
Fps = Literal[25, 50]
AspectRatio = Literal["16:9"]
CameraMotion = Literal[
    "dolly_in", "dolly_out", "dolly_left", "dolly_right", "jib_up", "jib_down", "static",
    "focus_shift",
]  # fmt: skip

DURATIONS: tuple[int, ...] = get_args(Duration)
RESOLUTIONS: tuple[str, ...] = get_args(Resolution)
FPS_VALUES: tuple[int, ...] = get_args(Fps)
CAMERA_MOTIONS: tuple[str, ...] = get_args(CameraMotion)
#: Longer than this only at 1080p and 25 fps (every seed says so).
MAX_SHORT_DURATION = 10
#: seed 003: "Recommended limits: images ≤ 50 MB (~4K)".
MAX_IMAGE_BYTES = 50 * 1024 * 1024
#: No provider documents a prompt length limit: the seeds (000-004) and the providers' schema
#: pages (docs.aimlapi.com ltxv-2, fal's fal-ai/ltx-2 API page) type ``prompt`` as a plain
#: string with no ``maxLength``. This bound is ours: far beyond what the model reads (fal
#: advises prompts "within 200 words" for LTX Video), small enough that a pasted file or a
#: runaway template is caught before it is sent (and billed). Applies to every provider.
MAX_PROMPT_CHARS = 5000

#: What ``image`` is stored as once the request is built.
ImageInput = str | bytes | os.PathLike[str]


class _BinaryFile(Protocol):
    """An open binary file: ``open(path, "rb")``, ``io.BytesIO``, a spooled upload, ..."""

    def read(self, size: int = -1, /) -> bytes: ...


class _PILImage(Protocol):
    """A PIL image (``PIL.Image.Image``), without importing Pillow."""

    @property
    def format(self) -> str | None: ...

    def save(self, fp: Any, format: str | None = None, **params: Any) -> None: ...


#: What ``image`` accepts: a URL or data URI or local path (``str``), an ``os.PathLike``, raw
#: bytes (``bytes``, ``bytearray``, ``memoryview``), an open binary file or a PIL image.
Image = str | os.PathLike[str] | bytes | bytearray | memoryview | _BinaryFile | _PILImage


class _ParamFields(TypedDict, total=False):
    duration: Duration
    resolution: Resolution
    fps: Fps
    aspect_ratio: AspectRatio
    generate_audio: bool
    camera_motion: CameraMotion | None


class VideoRequestFields(_ParamFields, total=False):
    """The keyword form of a new request: ``prompt`` required, the rest optional."""

    image: Image | None
    prompt: Required[str]


class VideoRequestOverrides(_ParamFields, total=False):
    """Fields that change an existing :class:`VideoRequest` (``submit(request, fps=50)``)."""

    image: NotRequired[Image | None]
    prompt: NotRequired[str]


_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
)
_FTYP_BRANDS = {
    b"avif": "image/avif",
    b"avis": "image/avif",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"hevc": "image/heic",
    b"hevx": "image/heic",
    b"heim": "image/heic",
    b"heis": "image/heic",
    b"mif1": "image/heif",
    b"msf1": "image/heif",
}
_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*),", re.I)


def sniff_image(head: bytes) -> str | None:
    """The MIME type of an image from its first bytes, or None if it is not one we accept."""
    for magic, offset, mime in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12])
    return None


def _short(value: Any, limit: int = 80) -> str:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True, slots=True)
class ImageSource:
    """Where the image of a request comes from, after validation.

    ``kind`` is ``"url"`` (``url`` set), ``"data"`` (a data URI in ``url``, ``data`` decoded),
    ``"path"`` (``path`` set) or ``"bytes"`` (``data`` set). ``mime`` is known for all but URLs.
    """

    kind: Literal["url", "data", "path", "bytes"]
    url: str | None = None
    path: Path | None = None
    data: bytes | None = None
    mime: str | None = None
    size: int | None = None

    async def read(self) -> bytes:
        """The image's bytes (reads a local file in a worker thread)."""
        if self.data is not None:
            return self.data
        if self.path is not None:
            return await anyio.Path(self.path).read_bytes()
        raise ValueError("a URL image has no local bytes")

    async def as_data_uri(self) -> str:
        """The image as a ``data:`` URI."""
        if self.kind == "data" and self.url is not None:
            return self.url
        return data_uri(await self.read(), self.mime)


def data_uri(data: bytes, mime: str | None) -> str:
    """``data`` as a base64 ``data:`` URI of type ``mime``."""
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_reference(data: bytes, mime: str | None) -> dict[str, Any]:
    """What a job record keeps of an image that went to the provider inline (as a data URI):
    ``{"sha256": <hex digest>, "bytes": <size>, "mime": <type>}``, never the image itself.

    An image given as a URL, or uploaded (Eachlabs' presigned upload, fal's storage, the
    caller's ``uploader=``), is kept as that URL instead. Nothing reads the image back from a
    record: a job is created once, and resume() re-attaches it by its id (or, for a create
    whose reply never came, by its prompt), so the reference only says which image it was."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "mime": mime}


def stored_image(value: Any) -> Any:
    """``value`` as a job record keeps it: a URL, a reference or None as it is; a data URI
    (what records written by earlier versions of ltx2 hold) becomes its
    :func:`image_reference`. Total: an undecodable one is referred to by its text's digest."""
    if not (isinstance(value, str) and value[:5].lower() == "data:"):
        return value
    match = _DATA_URI.match(value[:256])
    declared = match.group("mime") if match is not None else None
    try:
        raw = base64.b64decode(value[match.end() :] if match is not None else "", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if match is None or not raw:
        return image_reference(value.encode(errors="replace"), declared)
    return image_reference(raw, sniff_image(raw[:32]) or declared)


def _check_image_bytes(head: bytes, size: int, field: str, shown: Any) -> str:
    if size > MAX_IMAGE_BYTES:
        raise InvalidRequestError(
            f"{field}: the image is {size} bytes; at most {MAX_IMAGE_BYTES} bytes (50 MB) "
            "are allowed",
            field=field,
            value=shown,
            allowed=f"<= {MAX_IMAGE_BYTES} bytes",
        )
    mime = sniff_image(head)
    if mime is None:
        raise InvalidRequestError(
            f"{field}: {_short(shown)} is not a PNG, JPEG, WebP, AVIF or HEIF image "
            "(judged by its first bytes)",
            field=field,
            value=shown,
            allowed="PNG, JPEG, WebP, AVIF, HEIF",
        )
    return mime


_ACCEPTED = "https URL, data URI, local path, bytes, an open binary file or a PIL image"
#: PIL formats kept as they are when a PIL image is encoded; anything else becomes PNG.
_PIL_KEEP = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WEBP"}


def _is_pil_image(value: Any) -> bool:
    pil = sys.modules.get("PIL.Image")  # not imported: it cannot be a PIL image
    return pil is not None and isinstance(value, pil.Image)


def _encode_pil(image: Any, field: str) -> bytes:
    """A PIL image's bytes: its own format when it is JPEG, PNG or WebP, else PNG."""
    fmt = _PIL_KEEP.get(str(image.format or "").upper(), "PNG")
    if fmt == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
        fmt = "PNG"
    if fmt == "PNG" and image.mode not in ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
    buf = io.BytesIO()
    try:
        image.save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    except (OSError, ValueError) as exc:
        raise InvalidRequestError(
            f"{field}: the PIL image could not be encoded as {fmt} ({exc})",
            field=field, value=image, allowed=_ACCEPTED,
        ) from None  # fmt: skip
    return buf.getvalue()


def _read_file(fh: Any, field: str) -> bytes:
    """All of an open binary file, refused beyond the image size limit."""
    try:
        data = fh.read(MAX_IMAGE_BYTES + 1)
    except (OSError, ValueError) as exc:  # closed, or not readable
        raise InvalidRequestError(
            f"{field}: the file {_file_name(fh)} cannot be read ({exc})",
            field=field, value=_file_name(fh), allowed=_ACCEPTED,
        ) from None  # fmt: skip
    if isinstance(data, str):
        raise InvalidRequestError(
            f"{field}: the file {_file_name(fh)} is open in text mode; open it with 'rb'",
            field=field, value=_file_name(fh), allowed="a file opened in binary mode ('rb')",
        )  # fmt: skip
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidRequestError(
            f"{field}: read() of {type(fh).__name__} gave {type(data).__name__}, not bytes",
            field=field, value=type(fh).__name__, allowed=_ACCEPTED,
        )  # fmt: skip
    return bytes(data)


def _file_name(fh: Any) -> str:
    name = getattr(fh, "name", None)
    return repr(name) if isinstance(name, str) else f"<{type(fh).__name__}>"


def to_image_input(value: Any, field: str = "image") -> ImageInput:
    """Any accepted image argument in its stored form: ``str``, ``bytes`` or a path. Reads an
    open file and encodes a PIL image; refuses every other type, naming it."""
    if isinstance(value, str | bytes | os.PathLike):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if _is_pil_image(value):
        return _encode_pil(value, field)
    if callable(getattr(value, "read", None)):
        return _read_file(value, field)
    raise InvalidRequestError(
        f"{field}: {_short(value)} has type {type(value).__name__}; an image is an {_ACCEPTED}",
        field=field, value=value, allowed=_ACCEPTED,
    )  # fmt: skip


#: Whitespace as ``str.isspace`` sees it (``re``'s ``\s`` uses the same Unicode table), found
#: in one C-level scan instead of a Python-level test per character.
_SPACE = re.compile(r"\s")


def resolve_image(image: ImageInput, field: str = "image") -> ImageSource:
    """Validate an image argument and say where it comes from. Reads at most a file's head."""
    if isinstance(image, bytes | bytearray | memoryview):
        raw = bytes(image)
        mime = _check_image_bytes(raw[:32], len(raw), field, raw)
        return ImageSource("bytes", data=raw, mime=mime, size=len(raw))
    if isinstance(image, str):
        lowered = image[:8].lower()
        if lowered.startswith(("https://", "http://")):
            if len(image) > 8192 or _SPACE.search(image):
                raise InvalidRequestError(
                    f"{field}: {_short(image)} is not a valid URL",
                    field=field,
                    value=image,
                    allowed="an http(s) URL",
                )
            return ImageSource("url", url=image)
        if lowered.startswith("data:"):
            return _resolve_data_uri(image, field)
        if "://" in image[:16]:
            raise InvalidRequestError(
                f"{field}: {_short(image)} has an unsupported URL scheme",
                field=field,
                value=image,
                allowed="https URL, data URI, local path or bytes",
            )
    path = Path(os.fspath(image)).expanduser()
    try:
        with path.open("rb") as fh:
            head = fh.read(32)
            size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise InvalidRequestError(
            f"{field}: {_short(str(image))} is neither an http(s) URL, a data URI nor a "
            f"readable file ({exc.strerror or exc})",
            field=field,
            value=str(image),
            allowed="https URL, data URI, local path or bytes",
        ) from None
    mime = _check_image_bytes(head, size, field, str(image))
    return ImageSource("path", path=path, mime=mime, size=size)


def _resolve_data_uri(uri: str, field: str) -> ImageSource:
    match = _DATA_URI.match(uri[:256])
    if match is None or ";base64" not in (match.group("params") or "").lower():
        raise InvalidRequestError(
            f"{field}: {_short(uri)} is not a base64 data URI",
            field=field,
            value=uri,
            allowed="data:<mime>;base64,<data>",
        )
    payload = uri[match.end() :]
    if len(payload) * 3 // 4 > MAX_IMAGE_BYTES + 3:
        _check_image_bytes(b"", len(payload) * 3 // 4, field, uri)
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError(
            f"{field}: the data URI's base64 payload does not decode",
            field=field,
            value=uri,
            allowed="valid base64",
        ) from None
    mime = _check_image_bytes(raw[:32], len(raw), field, uri)
    return ImageSource("data", url=uri, data=raw, mime=mime, size=len(raw))


class VideoRequest(BaseModel):
    """One image-to-video generation.

    Args:
        image: an http(s) URL, a ``data:`` URI, a local path (``str`` or ``pathlib.Path``),
            the image's bytes (``bytes``, ``bytearray``, ``memoryview``), an open binary file
            or a PIL image (PNG, JPEG, WebP, AVIF or HEIF, at most 50 MB). A file is read and a
            PIL image encoded (its own JPEG/PNG/WebP format, else PNG) when the request is
            built. ``None`` only for AI/ML API's text-to-video.
        prompt: what should happen in the video (at most ``MAX_PROMPT_CHARS`` characters).
        duration: seconds, 6–20 in steps of 2; over 10 only at 1080p and 25 fps.
        resolution: ``"1080p"``, ``"1440p"`` or ``"2160p"``.
        fps: 25 or 50.
        aspect_ratio: ``"16:9"`` (the only one the model has).
        generate_audio: add a generated soundtrack (default true).
        camera_motion: GMI Cloud's camera motion (``dolly_in``, ``dolly_out``, ``dolly_left``,
            ``dolly_right``, ``jib_up``, ``jib_down``, ``static``, ``focus_shift``).

    Every violation raises :class:`ltx2.InvalidRequestError` naming the field, the value and
    what is allowed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    image: ImageInput | None
    prompt: str
    duration: Duration = 6
    resolution: Resolution = "1080p"
    fps: Fps = 25
    aspect_ratio: AspectRatio = "16:9"
    generate_audio: StrictBool = True
    camera_motion: CameraMotion | None = None

    @overload
    def __init__(
        self, image: Image | None, prompt: str, /, **fields: Unpack[_ParamFields]
    ) -> None: ...

    @overload
    def __init__(self, **fields: Unpack[VideoRequestFields]) -> None: ...

    def __init__(self, *args: Any, **data: Any) -> None:
        if len(args) > 2:
            raise InvalidRequestError(
                f"VideoRequest takes image and prompt positionally, then keywords ({len(args)} "
                "positional arguments given)",
                field="request", value=len(args), allowed="VideoRequest(image, prompt, **fields)",
            )  # fmt: skip
        for name, value in zip(("image", "prompt"), args, strict=False):
            if value is not None:
                if name in data:
                    raise InvalidRequestError(
                        f"{name}: given both positionally and as a keyword",
                        field=name, value=value, allowed="one of the two",
                    )  # fmt: skip
                data[name] = value
        data.setdefault("image", None)
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise _to_invalid_request(exc) from None

    @field_validator("image", mode="before")
    @classmethod
    def _check_image(cls, value: Any) -> Any:
        if value is None:
            return None
        value = to_image_input(value)
        resolve_image(value)  # raises InvalidRequestError
        return value

    @field_validator("prompt", mode="before")
    @classmethod
    def _check_prompt(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value  # pydantic says it is not a string
        if not value.strip():
            raise InvalidRequestError(
                "prompt: must not be empty", field="prompt", value=value, allowed="non-empty text"
            )
        if len(value) > MAX_PROMPT_CHARS:
            raise InvalidRequestError(
                f"prompt: {len(value)} characters; at most {MAX_PROMPT_CHARS} are allowed "
                "(no provider documents a limit; ltx2 bounds it so that a runaway prompt is "
                "caught before it is sent)",
                field="prompt", value=_short(value), allowed=f"<= {MAX_PROMPT_CHARS} characters",
            )  # fmt: skip
        return value

    @model_validator(mode="after")
    def _check_matrix(self) -> VideoRequest:
        if self.duration > MAX_SHORT_DURATION and (self.resolution != "1080p" or self.fps != 25):
            raise InvalidRequestError(
                f"duration: {self.duration} s is only supported at 1080p and 25 fps "
                f"(got {self.resolution} at {self.fps} fps); at that setting use 6, 8 or 10",
                field="duration",
                value=self.duration,
                allowed=[d for d in DURATIONS if d <= MAX_SHORT_DURATION],
            )
        return self

    def image_source(self) -> ImageSource | None:
        """Where the image comes from (``None`` for a prompt-only request)."""
        return None if self.image is None else resolve_image(self.image)

    def params(self) -> dict[str, Any]:
        """The generation parameters besides image and prompt, as JSON."""
        return self.model_dump(exclude={"image", "prompt"})

    def to_json(self) -> dict[str, Any]:
        """The whole request as JSON, a bytes image as a data URI (so it can be rebuilt).
        Job records keep less: the image's URL or :func:`image_reference`."""
        d = self.params()
        d["prompt"] = self.prompt
        img = self.image
        if isinstance(img, bytes):
            src = resolve_image(img)
            d["image"] = data_uri(img, src.mime)
        elif img is not None:
            d["image"] = os.fspath(img)
        else:
            d["image"] = None
        return d

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            if name == "image" and isinstance(value, bytes | str) and len(value) > 80:
                yield name, _short(value)
            else:
                yield name, value


def _to_invalid_request(exc: pydantic.ValidationError) -> InvalidRequestError:
    err = exc.errors(include_url=False)[0]
    ctx = err.get("ctx") or {}
    inner = ctx.get("error")
    if isinstance(inner, InvalidRequestError):
        return inner
    field = ".".join(str(p) for p in err["loc"]) or "request"
    value = err.get("input")
    allowed = ctx.get("expected")
    if err["type"] == "missing":
        msg = f"{field}: is required"
    elif err["type"] == "extra_forbidden":
        known = ", ".join(VideoRequest.model_fields)
        msg = f"{field}: is not a VideoRequest field (fields: {known})"
        allowed = known
    elif allowed is not None:
        msg = f"{field}: {_short(value)} is not allowed; allowed: {allowed}"
    else:
        msg = f"{field}: {_short(value)}: {err['msg']}"
    return InvalidRequestError(msg, field=field, value=value, allowed=allowed)
