"""A wire-faithful Cloudinary emulator on loopback, for integration tests.

It speaks the Upload API, the parts of the Admin API media-tui uses, and the delivery URL layout
of res.cloudinary.com, as measured in `shared/reference/cloudinary.md` (cited below as "ref §n").
DESIGN.md §4 asks for strictness: a lenient fake hides real bugs. So the emulator checks
signatures exactly as Cloudinary does (ref §3), refuses stale timestamps, enforces the 5 MiB
chunk minimum (ref §4), answers every failure with `{"error": {"message": ...}}` (ref §6), and
validates image and video bytes instead of storing whatever arrives.

It runs in-process: a stdlib `ThreadingHTTPServer` (HTTP/1.1 keep-alive) on 127.0.0.1 and a
free port, a hand-written linear multipart parser, Pillow for image sizes and resized
deliveries. No dependency beyond what media-tui already installs.

    with CloudinaryEmulator() as emulator:
        cloudinary.config(cloud_name=emulator.cloud_name, api_key=emulator.api_key,
                          api_secret=emulator.api_secret, upload_prefix=emulator.url)
        ...
        emulator.faults.failure_rate = 0.5      # fault switch, see `FaultSwitch`

State for assertions: `assets` (keyed by `(resource_type, type, public_id)`), `requests` (one
`RequestRecord(method, path, status)` per request, status 0 for a dropped connection),
`upload_count`, `chunk_count`, `destroy_count`, `internal_errors` (emulator bugs, which the
pytest fixture turns into a failure).

Webhook notifications (ref §8, §11.6): upload (including the last chunk of a chunked upload),
destroy and rename build a payload; every payload is kept in `notifications`. When the call
carried a `notification_url`, or `emulator.notification_url` is set, the payload is also POSTed
there as compact JSON signed like Cloudinary does (`sign_notification`), from a background
thread so the API answer never waits for the receiver, and retried on a non-200 answer.

    emulator.notification_url = receiver_url     # global URL; a call's own one wins
    emulator.notification_retry_delays = (0.01, 0.01, 0.01)
    ...
    assert emulator.wait_for_deliveries(1)
    delivery = emulator.deliveries[0]            # url, body, timestamp, signature, statuses
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import http.client
import io
import json
import queue
import random
import re
import secrets
import socket
import string
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from PIL import Image, ImageOps

JSON = dict[str, Any]

# ref §4: "the emulator should reject non-final chunks under 5,242,880 bytes".
MIN_CHUNK_BYTES = 5 * 1024 * 1024
# ref §3.3: a signature "is valid for 1 hour" after its timestamp.
SIGNATURE_WINDOW_SECONDS = 3600
# ref §3.4: a single request is capped at 100 MB; above it the real API answered 413.
MAX_REQUEST_BYTES = 100 * 1024 * 1024
# ref §3.1 rule 1: never signed. `signature` is the result, so it cannot be signed either.
UNSIGNED_FIELDS = frozenset({"file", "cloud_name", "resource_type", "api_key", "signature"})
UPLOAD_RESOURCE_TYPES = frozenset({"image", "video", "raw", "auto"})
STORED_RESOURCE_TYPES = frozenset({"image", "video", "raw"})
# ref §7: Admin list `max_results` is 1–500, default 10; bulk delete removes 1000 per call.
LIST_DEFAULT, LIST_MAX, BULK_DELETE_MAX = 10, 500, 1000
# ref §6: Free plan 500 Admin calls/hour, paid 2000; the emulator plays a paid account.
ADMIN_RATE_LIMIT = 2000
# ref §11.4: how long partial chunk sessions live is unknown; 24 h is the checklist's guess.
CHUNK_SESSION_TTL_SECONDS = 24 * 3600
# ref §8: a webhook not answered with 200 is retried up to 3 times, at about 3, 6 and 9 minutes
# upstream. Tests cannot wait minutes, so the emulator's default pauses are tiny; they are
# settable per emulator (`notification_retry_delays`), one retry per entry.
NOTIFICATION_RETRY_DELAYS: tuple[float, ...] = (0.05, 0.1, 0.2)
# Per delivery attempt (connect, send, read the answer); Cloudinary does not publish its own.
NOTIFICATION_TIMEOUT_SECONDS = 5.0
# Fields of the upload response that the real notification payloads of ref §8 do not carry.
_RESPONSE_ONLY_FIELDS = frozenset({"signature", "api_key"})
_ID_ALPHABET = string.ascii_lowercase + string.digits
_READ_BLOCK = 1024 * 1024

_STATUS_MESSAGES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Already Exists",
    413: "Request Entity Too Large",
    # ref §11.5: "Rate Limit Exceeded" is the checklist's wording (unverified upstream).
    420: "Rate Limit Exceeded",
    429: "Rate Limit Exceeded",
    # ref §12: reports of 500 "General Error".
    500: "General Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_REASON_PHRASES = {420: "Enhance Your Calm"}  # http.server has no phrase for 420


# --------------------------------------------------------------------------------------------
# Values passed between the HTTP layer and the emulator
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    """A failure answered as `{"error": {"message": ...}}` with `status` (ref §6)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class DeliveryError(Exception):
    """A res.cloudinary.com failure: no JSON, the reason in an `X-Cld-Error` header (ref §6)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Request:
    """One HTTP request as the emulator sees it, body already read."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    oversized: int = 0  # body length when it exceeded the request cap (then `body` is empty)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


class RequestRecord(NamedTuple):
    """One line of `CloudinaryEmulator.requests`; compares equal to `(method, path, status)`."""

    method: str
    path: str
    status: int  # 0 when the fault switch dropped the connection


def _json_response(status: int, payload: JSON, headers: Iterable[tuple[str, str]] = ()) -> Response:
    # Cloudinary answers compact JSON; the SDK only needs it parseable, but compact is what we saw.
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, body, "application/json; charset=utf-8", tuple(headers))


def _error_response(status: int, message: str) -> Response:
    return _json_response(status, {"error": {"message": message}})


# --------------------------------------------------------------------------------------------
# Form parsing (multipart/form-data, urlencoded, JSON)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilePart:
    filename: str | None
    data: bytes


@dataclass
class Form:
    """Parsed request parameters. `key[]` fields (how the SDK sends lists) become lists."""

    fields: dict[str, str | list[str]] = field(default_factory=dict)
    file: FilePart | None = None

    def get(self, name: str) -> str:
        value = self.fields.get(name, "")
        return ",".join(value) if isinstance(value, list) else value

    def add(self, name: str, value: str) -> None:
        if name.endswith("[]"):
            existing = self.fields.setdefault(name[:-2], [])
            if isinstance(existing, list):
                existing.append(value)
            else:
                self.fields[name[:-2]] = [existing, value]
        else:
            self.fields[name] = value  # a repeated plain field: the last one wins, as in Rails


_BOUNDARY_RE = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_DISPOSITION_PARAM_RE = re.compile(r';\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def parse_form(request: Request) -> Form:
    """Read the parameters of an Upload API call from its query string and body."""
    form = Form()
    for name, value in parse_qsl(request.query, keep_blank_values=True):
        form.add(name, value)
    content_type = request.headers.get("content-type", "").lower()
    if not request.body:
        return form
    if content_type.startswith("multipart/form-data"):
        _parse_multipart_into(form, request.body, _multipart_boundary(request.headers))
    elif content_type.startswith("application/x-www-form-urlencoded"):
        for name, value in parse_qsl(
            request.body.decode("utf-8", "replace"), keep_blank_values=True
        ):
            form.add(name, value)
    elif content_type.startswith("application/json"):
        _parse_json_into(form, request.body)
    else:
        raise ApiError(400, f"Unsupported Content-Type {content_type or '(none)'}")
    _resolve_text_file(form)
    return form


def _multipart_boundary(headers: Mapping[str, str]) -> bytes:
    match = _BOUNDARY_RE.search(headers.get("content-type", ""))
    if match is None:
        raise ApiError(400, "Missing multipart boundary")
    return (match.group(1) or match.group(2)).encode("latin-1")


def _parse_multipart_into(form: Form, body: bytes, boundary: bytes) -> None:
    """Split a multipart body with `bytes.find` from moving offsets: linear in the body size."""
    delimiter = b"--" + boundary
    pos = body.find(delimiter)
    if pos < 0:
        raise ApiError(400, "Malformed multipart body")
    while True:
        pos += len(delimiter)
        if body.startswith(b"--", pos):
            return  # the close delimiter
        line_end = body.find(b"\r\n", pos)
        head_end = body.find(b"\r\n\r\n", line_end) if line_end >= 0 else -1
        next_delim = body.find(b"\r\n" + delimiter, head_end + 4) if head_end >= 0 else -1
        if next_delim < 0:
            raise ApiError(400, "Malformed multipart body")
        name, filename = _part_disposition(body[line_end + 2 : head_end])
        content = body[head_end + 4 : next_delim]
        if name == "file" and filename is not None:
            form.file = FilePart(filename, content)
        elif name:
            form.add(name, content.decode("utf-8", "replace"))
        pos = next_delim + 2


def _part_disposition(raw_headers: bytes) -> tuple[str | None, str | None]:
    """Return the `name` and `filename` of a part's Content-Disposition."""
    for line in raw_headers.decode("utf-8", "replace").split("\r\n"):
        header, _, value = line.partition(":")
        if header.strip().lower() != "content-disposition":
            continue
        params: dict[str, str] = {}
        for key, raw in _DISPOSITION_PARAM_RE.findall(value):
            params[key.lower()] = _unquote_param(raw.strip())
        filename = params.get("filename")
        if "filename*" in params:  # RFC 2231/5987: charset''percent-encoded
            filename = unquote(params["filename*"].split("'", 2)[-1])
        return params.get("name"), filename
    return None, None


def _unquote_param(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
    # urllib3 and httpx use the HTML5 form encoding for quotes in names and filenames.
    return raw.replace("%22", '"')


def _parse_json_into(form: Form, body: bytes) -> None:
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise ApiError(400, "Invalid JSON body") from exc
    if not isinstance(payload, dict):
        raise ApiError(400, "Invalid JSON body")
    for name, value in payload.items():
        if isinstance(value, list):
            form.fields[name] = [_json_scalar(item) for item in value]
        elif value is not None:
            form.fields[name] = _json_scalar(value)


def _json_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _resolve_text_file(form: Form) -> None:
    """A `file` sent as text is a URL or a base64 data URI (ref §2)."""
    text = form.fields.pop("file", None)
    if text is None or form.file is not None:
        return
    value = ",".join(text) if isinstance(text, list) else text
    if value.startswith("data:"):
        _, _, payload = value.partition(",")
        try:
            form.file = FilePart(None, base64.b64decode(payload, validate=True))
        except binascii.Error as exc:
            raise ApiError(400, "Invalid data URI in file parameter") from exc
    elif re.match(r"^(https?|ftp|s3|gs)://", value):
        # Fetching remote files would make tests depend on the network; say so plainly.
        raise ApiError(400, f"Remote file URLs are not supported by the emulator: {value}")
    else:
        form.file = FilePart(None, value.encode())


# --------------------------------------------------------------------------------------------
# Signing (ref §3)
# --------------------------------------------------------------------------------------------


def string_to_sign(fields: Mapping[str, str | list[str]], version: int = 2) -> str:
    """The string Cloudinary hashes: non-empty `k=v` pairs, sorted, joined by `&` (ref §3.1)."""
    pairs = []
    for key, value in fields.items():
        text = ",".join(value) if isinstance(value, list) else value
        if key in UNSIGNED_FIELDS or not text:
            continue  # rule 1 and rule 2: unsigned keys and empty values are left out
        pair = f"{key}={text}"
        # rule 3: signature v2 escapes `&` inside a pair, and nothing else.
        pairs.append(pair.replace("&", "%26") if version >= 2 else pair)
    return "&".join(sorted(pairs))


def hex_digest(text: str, algorithm: str) -> str:
    return hashlib.new(algorithm, text.encode()).hexdigest()


def sign_notification(body: str, timestamp: str, secret: str, algorithm: str = "sha1") -> str:
    """`X-Cld-Signature` of a webhook: hex of sha1(body + timestamp + secret), not an HMAC (ref §8).

    `body` is the exact string sent and `timestamp` the exact header value: re-serialised JSON
    or a float timestamp hash differently.
    """
    return hex_digest(body + timestamp + secret, algorithm)


# --------------------------------------------------------------------------------------------
# Media sniffing: resource type, format, dimensions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaInfo:
    resource_type: str  # image | video | raw
    format: str | None = None
    width: int | None = None
    height: int | None = None
    pages: int | None = None
    duration: float | None = None
    is_audio: bool = False


_PIL_FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp", "BMP": "bmp"}
_PIL_FORMATS |= {"TIFF": "tiff", "ICO": "ico"}
_CONTENT_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "ico": "image/x-icon",
    "pdf": "application/pdf",
    "svg": "image/svg+xml",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
    "avi": "video/x-msvideo",
    "flv": "video/x-flv",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
}
_PIL_SAVE_FORMATS = {"jpg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP", "bmp": "BMP"}
_PIL_SAVE_FORMATS |= {"tiff": "TIFF"}


def sniff_media(data: bytes) -> MediaInfo:
    """Classify bytes the way `auto` upload does: images, then video/audio, else raw (ref §2)."""
    return _sniff_image(data) or _sniff_video(data) or MediaInfo("raw")


def _sniff_image(data: bytes) -> MediaInfo | None:
    if data.startswith(b"%PDF-"):
        # Cloudinary files PDFs under `image` (they are paged images to it).
        pages = len(re.findall(rb"/Type\s*/Page[^s]", data)) or 1
        return MediaInfo("image", "pdf", pages=pages)
    head = data[:1024].lstrip()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return MediaInfo("image", "svg", pages=1)
    try:
        # `formats` keeps Pillow from claiming video (it has an MPEG plugin, for one).
        with Image.open(io.BytesIO(data), formats=list(_PIL_FORMATS)) as image:
            fmt = _PIL_FORMATS[image.format or ""]
            pages = getattr(image, "n_frames", 1)
            return MediaInfo("image", fmt, image.width, image.height, pages=pages)
    except Exception:
        return None


def _sniff_video(data: bytes) -> MediaInfo | None:
    """Video and audio by magic bytes; Cloudinary files audio under `video` with `is_audio`."""
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        fmt = "mov" if brand == b"qt  " else "m4a" if brand in (b"M4A ", b"M4B ") else "mp4"
        width, height, duration = _iso_bmff_info(data)
        return MediaInfo("video", fmt, width, height, duration=duration, is_audio=fmt == "m4a")
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return MediaInfo("video", "webm" if b"webm" in data[:64] else "mkv")
    if data.startswith(b"RIFF") and data[8:12] == b"AVI ":
        return MediaInfo("video", "avi")
    if data.startswith(b"FLV"):
        return MediaInfo("video", "flv")
    if data.startswith(b"RIFF") and data[8:12] == b"WAVE":
        return MediaInfo("video", "wav", duration=_wav_duration(data), is_audio=True)
    audio = {b"OggS": "ogg", b"fLaC": "flac", b"ID3": "mp3"}
    for magic, fmt in audio.items():
        if data.startswith(magic):
            return MediaInfo("video", fmt, is_audio=True)
    if len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:  # an MPEG audio frame sync
        return MediaInfo("video", "mp3", is_audio=True)
    return None


def _iter_boxes(data: bytes, start: int, end: int) -> Iterable[tuple[bytes, int, int]]:
    """Yield (type, payload start, box end) of the ISO-BMFF boxes in `data[start:end]`."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1 and pos + 16 <= end:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header:
            return
        yield kind, pos + header, min(pos + size, end)
        pos += size


def _iso_bmff_info(data: bytes) -> tuple[int | None, int | None, float | None]:
    """Width, height (first visual track) and duration (`mvhd`) of an MP4/MOV, when present."""
    width = height = None
    duration = None
    try:
        for kind, start, end in _iter_boxes(data, 0, len(data)):
            if kind != b"moov":
                continue
            for child, c_start, c_end in _iter_boxes(data, start, end):
                if child == b"mvhd":
                    duration = _mvhd_duration(data, c_start)
                elif child == b"trak" and width is None:
                    width, height = _trak_size(data, c_start, c_end)
    except struct.error:
        pass
    return width, height, duration


def _mvhd_duration(data: bytes, start: int) -> float | None:
    if data[start] == 1:
        timescale, duration = struct.unpack_from(">IQ", data, start + 20)
    else:
        timescale, duration = struct.unpack_from(">II", data, start + 12)
    return round(duration / timescale, 3) if timescale else None


def _trak_size(data: bytes, start: int, end: int) -> tuple[int | None, int | None]:
    for kind, t_start, _ in _iter_boxes(data, start, end):
        if kind == b"tkhd":
            offset = 88 if data[t_start] == 1 else 76  # width/height after the 3x3 matrix
            width, height = struct.unpack_from(">II", data, t_start + offset)
            if width and height:
                return width >> 16, height >> 16  # 16.16 fixed point
    return None, None


def _wav_duration(data: bytes) -> float | None:
    byte_rate = 0
    for kind, start, end in _iter_riff_chunks(data):
        if kind == b"fmt " and end - start >= 12:
            byte_rate = int(struct.unpack_from("<I", data, start + 8)[0])
        elif kind == b"data" and byte_rate:
            return round((end - start) / byte_rate, 3)
    return None


def _iter_riff_chunks(data: bytes) -> Iterable[tuple[bytes, int, int]]:
    pos = 12
    while pos + 8 <= len(data):
        kind, size = struct.unpack_from("<4sI", data, pos)
        yield kind, pos + 8, min(pos + 8 + size, len(data))
        pos += 8 + size + (size & 1)


# --------------------------------------------------------------------------------------------
# Delivery transformations (res.cloudinary.com URL layout)
# --------------------------------------------------------------------------------------------

# Transformation keys Cloudinary knows. The emulator renders c/w/h/q/f/so and ignores the
# others, so a valid URL never fails here, while a garbage component still gets a 400.
_KNOWN_TRANSFORM_KEYS = frozenset(
    (  # noqa: SIM905 - one short line instead of forty
        "a ac af ar b bo br c co cs d dl dn dpr du e eo f fl fn fps g h ki l o p pg q r so sp t u "
        "vc vs w x y z"
    ).split()
)
_CROP_MODES = frozenset(
    "scale fit limit mfit fill lfill fill_pad thumb pad lpad mpad crop".split()  # noqa: SIM905
)
_TRANSFORM_COMPONENT_RE = re.compile(r"^([a-z]{1,3})_(.+)$")
_VERSION_RE = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class Transformation:
    crop: str = "scale"
    width: float | None = None
    height: float | None = None
    quality: int | None = None
    format: str | None = None
    start_offset: str | None = None


def is_transformation_segment(segment: str) -> bool:
    components = segment.split(",")
    for component in components:
        match = _TRANSFORM_COMPONENT_RE.match(component)
        if match is None or match.group(1) not in _KNOWN_TRANSFORM_KEYS:
            return False
    return True


def parse_transformation(segments: list[str]) -> Transformation:
    """Fold chained segments into one; later segments win, which is enough for resizes."""
    values: dict[str, str] = {}
    for segment in segments:
        for component in segment.split(","):
            key, _, value = component.partition("_")
            values[key] = value
    crop = values.get("c", "scale")
    if crop not in _CROP_MODES:
        raise DeliveryError(400, f"Invalid crop mode: {crop}")
    return Transformation(
        crop=crop,
        width=_dimension(values, "w", "width"),
        height=_dimension(values, "h", "height"),
        quality=_quality(values.get("q")),
        format=values.get("f"),
        start_offset=values.get("so"),
    )


def _dimension(values: Mapping[str, str], key: str, name: str) -> float | None:
    raw = values.get(key)
    if raw is None:
        return None
    try:
        number = float(raw)
    except ValueError:
        number = 0.0
    if number <= 0:
        # ref §6: the delivery header reads e.g. `Invalid width in transformation: abc`.
        raise DeliveryError(400, f"Invalid {name} in transformation: {raw}")
    return number


def _quality(raw: str | None) -> int | None:
    if raw is None or not raw.isdigit():
        return None  # q_auto and friends: Pillow's default is fine
    return max(1, min(100, int(raw)))


def _target_size(value: float | None, source: int) -> int | None:
    if value is None:
        return None
    return max(1, round(value * source)) if value <= 1 else round(value)


def resize_image(image: Image.Image, t: Transformation) -> Image.Image:
    """Apply Cloudinary's crop modes to `image` (the common subset, see `_CROP_MODES`)."""
    sw, sh = image.size
    w, h = _target_size(t.width, sw), _target_size(t.height, sh)
    if w is None and h is None:
        return image
    if w is None or h is None:
        # One side given: every mode scales proportionally; `limit` never enlarges.
        ratio = (w / sw) if w is not None else (h or sh) / sh
        if t.crop in ("limit", "lfill", "lpad") and ratio >= 1:
            return image
        return image.resize((max(1, round(sw * ratio)), max(1, round(sh * ratio))))
    if t.crop in ("fill", "lfill", "thumb", "fill_pad"):
        if t.crop == "lfill" and w >= sw and h >= sh:
            return image
        return ImageOps.fit(image, (w, h))
    if t.crop == "crop":
        return ImageOps.fit(image, (min(w, sw), min(h, sh)), method=Image.Resampling.NEAREST)
    if t.crop in ("fit", "limit", "mfit"):
        ratio = min(w / sw, h / sh)
        if (t.crop == "limit" and ratio >= 1) or (t.crop == "mfit" and ratio <= 1):
            return image
        return image.resize((max(1, round(sw * ratio)), max(1, round(sh * ratio))))
    if t.crop in ("pad", "lpad", "mpad"):
        return ImageOps.pad(image.convert("RGBA"), (w, h), color=(0, 0, 0, 0))
    return image.resize((w, h))  # scale: exact size, aspect not kept


def encode_image(image: Image.Image, fmt: str, quality: int | None) -> bytes:
    save_as = _PIL_SAVE_FORMATS.get(fmt)
    if save_as is None:
        raise DeliveryError(400, f"Unsupported format: {fmt}")
    if save_as == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    out = io.BytesIO()
    options: dict[str, Any] = (
        {"quality": quality} if quality and save_as in ("JPEG", "WEBP") else {}
    )
    image.save(out, save_as, **options)
    return out.getvalue()


# --------------------------------------------------------------------------------------------
# Fault switch
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultDecision:
    drop: bool = False
    fail_status: int | None = None
    latency: float = 0.0


class FaultSwitch:
    """Runtime-settable faults, shared by all request threads.

    Set the attributes from a test at any time: `failure_rate` (0..1) answers `failure_status`
    with the error JSON before any processing, so nothing is stored; `drop_rate` closes the
    connection after reading the request, without a response; `latency` delays every answer;
    `bandwidth` (bytes/s) caps how fast request bodies are read, so progress can be watched.
    `match` (a regex searched in "METHOD /path") limits faults to some requests. Draws come
    from `random.Random(seed)`, so a sequential test sees the same faults on every run.
    """

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._script: list[int | None] = []  # scripted faults first: a status, or None = drop
        self.failure_rate = 0.0
        self.failure_status = 500
        self.drop_rate = 0.0
        self.latency = 0.0
        self.bandwidth: float | None = None
        self.match: str | None = None
        self.failures_injected = 0
        self.drops_injected = 0
        self.delays_injected = 0
        self.throttled_requests = 0

    @property
    def injected(self) -> int:
        return self.failures_injected + self.drops_injected

    def seed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """Answer the next `count` matching requests with `status`, whatever the rates say."""
        with self._lock:
            self._script.extend([status] * count)

    def drop_next(self, count: int = 1) -> None:
        """Drop the connection of the next `count` matching requests."""
        with self._lock:
            self._script.extend([None] * count)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
        self.failure_rate = self.drop_rate = self.latency = 0.0
        self.failure_status = 500
        self.bandwidth = None
        self.match = None

    def applies_to(self, method: str, path: str) -> bool:
        pattern = self.match
        return pattern is None or re.search(pattern, f"{method} {path}") is not None

    def decide(self, method: str, path: str) -> FaultDecision:
        if not self.applies_to(method, path):
            return FaultDecision()
        latency = max(0.0, self.latency)
        with self._lock:
            if latency:
                self.delays_injected += 1
            if self._script:
                status = self._script.pop(0)
                return self._count(FaultDecision(status is None, status, latency))
            if self.drop_rate > 0 and self._rng.random() < self.drop_rate:
                return self._count(FaultDecision(True, None, latency))
            if self.failure_rate > 0 and self._rng.random() < self.failure_rate:
                return self._count(FaultDecision(False, self.failure_status, latency))
        return FaultDecision(latency=latency)

    def note_throttled(self) -> None:
        with self._lock:
            self.throttled_requests += 1

    def _count(self, decision: FaultDecision) -> FaultDecision:
        if decision.drop:
            self.drops_injected += 1
        else:
            self.failures_injected += 1
        return decision


# --------------------------------------------------------------------------------------------
# Stored state
# --------------------------------------------------------------------------------------------

AssetKey = tuple[str, str, str]  # (resource_type, type, public_id)


@dataclass
class StoredAsset:
    """One asset as the emulator keeps it: the bytes plus everything the API reports."""

    resource_type: str
    type: str
    public_id: str
    data: bytes
    media: MediaInfo
    asset_id: str
    version: int
    version_id: str
    created_at: float
    seq: int  # upload order, the stable sort key of listings
    etag: str
    original_filename: str
    tags: list[str] = field(default_factory=list)
    context: dict[str, str] = field(default_factory=dict)
    asset_folder: str = ""
    display_name: str = ""

    @property
    def key(self) -> AssetKey:
        return (self.resource_type, self.type, self.public_id)

    @property
    def format(self) -> str | None:
        # Raw assets have no format: their extension, if any, is part of the public_id.
        return None if self.resource_type == "raw" else self.media.format


@dataclass
class _ChunkSession:
    """A chunked upload in progress, keyed by X-Unique-Upload-Id (ref §4, §11.4)."""

    upload_id: str
    resource_type: str
    public_id: str
    asset_folder: str
    params: dict[str, str]
    filename: str | None
    started_at: float
    total: int | None = None
    parts: dict[int, bytes] = field(default_factory=dict)
    result: JSON | None = None

    @property
    def received(self) -> int:
        return sum(len(part) for part in self.parts.values())

    def is_complete(self) -> bool:
        if self.total is None:
            return False
        offset = 0
        for start in sorted(self.parts):
            if start != offset:
                return False
            offset += len(self.parts[start])
        return offset == self.total

    def assemble(self) -> bytes:
        return b"".join(self.parts[start] for start in sorted(self.parts))


@dataclass(frozen=True)
class _Auth:
    kind: Literal["signed", "basic", "oauth", "unsigned"]
    preset: Mapping[str, str] = field(default_factory=dict)


_CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|-1|\*)$")


@dataclass
class Delivery:
    """One webhook notification on its way to `url` (ref §8), kept for assertions.

    `body`, `timestamp` and `signature` are exactly what every attempt sends (body and the
    X-Cld-Timestamp / X-Cld-Signature headers). `statuses` has one entry per attempt: the HTTP
    status, or None for a connection error or timeout. `finished` turns true once it was
    delivered (a 200) or given up (retries spent, or the emulator stopped).
    """

    url: str
    body: str
    timestamp: str
    signature: str
    payload: JSON
    statuses: list[int | None] = field(default_factory=list)
    delivered: bool = False
    finished: bool = False

    @property
    def attempts(self) -> int:
        return len(self.statuses)


# --------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------


class CloudinaryEmulator:
    """A local Cloudinary account: start it, point the SDK or httpx at `url`, inspect state."""

    def __init__(
        self,
        cloud_name: str = "demo",
        api_key: str = "123456789012345",
        api_secret: str = "emulator-secret",
        signature_algorithm: str = "sha1",
        *,
        enforce_sha256: bool = False,
        accept_signature_v1: bool = False,
        folder_mode: Literal["fixed", "dynamic"] = "fixed",
        unsigned_presets: Mapping[str, Mapping[str, str]] | None = None,
        oauth_tokens: Iterable[str] = (),
        max_request_bytes: int = MAX_REQUEST_BYTES,
        max_file_bytes: int | None = None,
        admin_rate_limit: int = ADMIN_RATE_LIMIT,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.cloud_name = cloud_name
        self.api_key = api_key
        self.api_secret = api_secret
        self.signature_algorithm = signature_algorithm  # for signatures the server makes
        self.enforce_sha256 = enforce_sha256
        self.accept_signature_v1 = accept_signature_v1
        self.folder_mode = folder_mode
        self.unsigned_presets = {k: dict(v) for k, v in (unsigned_presets or {}).items()}
        self.oauth_tokens = set(oauth_tokens)
        self.max_request_bytes = max_request_bytes
        self.max_file_bytes = max_file_bytes  # the plan limit of ref §3.4, off by default
        self.admin_rate_limit = admin_rate_limit
        self.clock = clock
        self.faults = FaultSwitch(seed)
        self.assets: dict[AssetKey, StoredAsset] = {}
        self.requests: list[RequestRecord] = []
        self.notifications: list[JSON] = []
        self.internal_errors: list[str] = []
        self.upload_count = 0
        self.chunk_count = 0
        self.destroy_count = 0
        self.connections_accepted = 0  # keep-alive checks: one client, one connection
        self.leaked_threads: list[threading.Thread] = []  # connection threads alive after stop
        # Webhooks (ref §8): all settable at any time from a test.
        self.notification_url: str | None = None  # the Console's global URL; None = no delivery
        self.notification_algorithm = "sha1"  # or "sha256", for X-Cld-Signature
        self.notification_retry_delays: tuple[float, ...] = NOTIFICATION_RETRY_DELAYS
        self.notification_timeout = NOTIFICATION_TIMEOUT_SECONDS
        self.deliveries: list[Delivery] = []
        self.deliveries_finished = 0
        self._host, self._port = host, port
        self._lock = threading.RLock()
        self._sessions: dict[str, _ChunkSession] = {}
        self._cursors: dict[str, tuple[str, int]] = {}
        self._seq = 0
        self._admin_window = (0.0, 0)  # (window end, calls made in it)
        self._stopping = threading.Event()
        self._server: _EmulatorHTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        # The request id of the call a connection thread is answering, for notification payloads.
        self._call = threading.local()
        self._delivery_queue: queue.SimpleQueue[Delivery | None] = queue.SimpleQueue()
        self._delivery_thread: threading.Thread | None = None
        self._deliveries_changed = threading.Condition()
        self._delivery_connection: http.client.HTTPConnection | None = None  # the attempt in flight

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> CloudinaryEmulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _EmulatorHTTPServer((self._host, self._port), self)
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # `stop` waits up to one poll
            name=f"cloudinary-emulator-{self.port}",
            daemon=True,
        )
        self._serve_thread.start()
        self._delivery_queue = queue.SimpleQueue()
        self._delivery_thread = threading.Thread(
            target=self._deliver_notifications,
            args=(self._delivery_queue,),
            name=f"cloudinary-emulator-{self.port}-webhooks",
            daemon=True,
        )
        self._delivery_thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._serve_thread
        if server is None or thread is None:
            return
        self._stopping.set()  # wakes latency, bandwidth and webhook retry waits
        self._abort_delivery_attempt()
        server.shutdown()
        server.server_close()
        server.close_connections()  # idle keep-alive connections would otherwise linger
        server.join_handlers(timeout=5.0)
        thread.join(timeout=5.0)
        # After the handlers: no call can queue a notification any more. Whatever is still
        # queued is given up at once, then the sentinel ends the worker.
        notifier = self._delivery_thread
        self._delivery_queue.put(None)
        if notifier is not None:
            notifier.join(timeout=5.0)
        self.leaked_threads = [
            *server.live_threads(),
            *(t for t in (thread, notifier) if t is not None and t.is_alive()),
        ]
        self._server = self._serve_thread = self._delivery_thread = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> CloudinaryEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def cloudinary_url(self) -> str:
        return f"cloudinary://{self.api_key}:{self.api_secret}@{self.cloud_name}?upload_prefix={self.url}"

    @property
    def handler_threads(self) -> list[threading.Thread]:
        """Live connection threads (for leak checks)."""
        return self._server.live_threads() if self._server is not None else []

    def asset(
        self, public_id: str, resource_type: str = "image", type: str = "upload"
    ) -> StoredAsset:
        return self.assets[(resource_type, type, public_id)]

    def record_internal_error(self, text: str) -> None:
        with self._lock:
            self.internal_errors.append(text)

    def sleep(self, seconds: float) -> None:
        """Wait that long, or less if the emulator stops meanwhile."""
        if seconds > 0:
            self._stopping.wait(seconds)

    # -- request entry point (called from connection threads) -------------------------------

    def handle(self, request: Request) -> Response | None:
        """Answer one request; None means: drop the connection without a response."""
        # Made before dispatch so an upload notification carries the same id as the answer's
        # X-Request-Id header (ref §8 payloads have a `request_id`).
        request_id = self._call.request_id = secrets.token_hex(16)
        decision = self.faults.decide(request.method, request.path)
        self.sleep(decision.latency)
        if decision.drop:
            self._log(request, 0)
            return None
        if decision.fail_status is not None:
            status = decision.fail_status
            response = _error_response(status, _STATUS_MESSAGES.get(status, "General Error"))
        else:
            response = self._dispatch(request)
        response = Response(
            response.status,
            response.body,
            response.content_type,
            (*response.headers, ("X-Request-Id", request_id)),
        )
        self._log(request, response.status)
        return response

    def _log(self, request: Request, status: int) -> None:
        with self._lock:
            self.requests.append(RequestRecord(request.method, request.path, status))

    def _dispatch(self, request: Request) -> Response:
        try:
            if request.oversized:
                # ref §3.4: the real API answered 413 above its 100 MB request cap.
                raise ApiError(
                    413,
                    f"File size too large. Got {request.oversized}. Maximum is {self.max_request_bytes}.",
                )
            return self._route(request)
        except ApiError as error:
            return _error_response(error.status, error.message)
        except DeliveryError as error:
            return Response(error.status, b"", "text/plain", (("X-Cld-Error", error.reason),))
        except Exception:
            # An emulator bug: answer like Cloudinary would, and keep it for the fixture to report.
            self.record_internal_error(traceback.format_exc())
            return _error_response(500, "General Error")

    def _route(self, request: Request) -> Response:
        segments = [unquote(part) for part in request.path.split("/")[1:]]
        if len(segments) >= 2 and segments[0] == "v1_1":
            if segments[1] != self.cloud_name:
                # Unknown clouds are 401 "Invalid cloud_name <name>" upstream
                # (jerocosio/autoform-cloudinary#20, urre/kap-cloudinary#5: http_code 401).
                raise ApiError(401, f"Invalid cloud_name {segments[1]}")
            return self._route_api(request, segments[2:])
        if (
            len(segments) >= 4
            and segments[0] == self.cloud_name
            and request.method in ("GET", "HEAD")
        ):
            return self._deliver(segments[1], segments[2], segments[3:])
        if request.method in ("GET", "HEAD") and segments and segments[0] != "v1_1":
            raise DeliveryError(404, "Resource not found")
        raise ApiError(404, f"Unknown API endpoint {request.method} {request.path}")

    def _route_api(self, request: Request, rest: list[str]) -> Response:
        method = request.method
        if method == "POST" and rest == ["upload"]:
            return self._upload(request, "auto")  # spec: upload without a type auto-detects
        if method == "POST" and len(rest) == 2 and rest[0] in UPLOAD_RESOURCE_TYPES:
            action = rest[1]
            if action in ("upload", "upload_chunked"):
                return self._upload(request, rest[0])
            if action == "destroy":
                return self._destroy(request, rest[0])
            if action == "rename":
                return self._rename(request, rest[0])
        if rest and rest[0] in ("resources", "ping", "config"):
            return self._admin(request, rest)
        raise ApiError(404, f"Unknown API endpoint {method} {request.path}")

    # -- Upload API authentication (ref §2, §3, §11.2) ----------------------------------------

    def _authenticate(self, request: Request, form: Form, *, allow_unsigned: bool) -> _Auth:
        header = request.headers.get("authorization", "")
        if header:
            return self._authenticate_header(header)
        signature = form.get("signature")
        if not signature:
            return self._unsigned(form, allow_unsigned)
        api_key = form.get("api_key")
        if not api_key:
            raise ApiError(400, "Missing required parameter - api_key")
        if api_key != self.api_key:
            # Seen upstream as 401 {"error":{"message":"Unknown API key <key>"}} (cloudinary_npm#288).
            raise ApiError(401, f"Unknown API key {api_key}")
        self._check_timestamp(form.get("timestamp"))
        self._check_signature(form, signature)
        return _Auth("signed")

    def _authenticate_header(self, header: str) -> _Auth:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "basic" and self._basic_ok(credentials.strip()):
            return _Auth("basic")
        if scheme.lower() == "bearer" and credentials.strip() in self.oauth_tokens:
            return _Auth("oauth")
        raise ApiError(401, "Invalid credentials")

    def _basic_ok(self, credentials: str) -> bool:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        key, _, secret = decoded.partition(":")
        return hmac.compare_digest(key, self.api_key) and hmac.compare_digest(
            secret, self.api_secret
        )

    def _unsigned(self, form: Form, allow_unsigned: bool) -> _Auth:
        preset = form.get("upload_preset")
        if form.get("api_key") or not allow_unsigned:
            raise ApiError(400, "Missing required parameter - signature")
        if not preset:
            raise ApiError(400, "Upload preset must be specified when using unsigned upload")
        if preset not in self.unsigned_presets:
            raise ApiError(400, "Upload preset must be whitelisted for unsigned uploads")
        # ref §3.4: unsigned uploads default overwrite to false and cannot set it to true.
        if _truthy(form.get("overwrite"), default=False):
            raise ApiError(400, "overwrite parameter is not allowed when using unsigned upload")
        return _Auth("unsigned", self.unsigned_presets[preset])

    def _check_timestamp(self, raw: str) -> None:
        if not raw:
            raise ApiError(400, "Missing required parameter - timestamp")
        try:
            timestamp = int(raw)
        except ValueError as exc:
            raise ApiError(400, f"Invalid timestamp {raw}") from exc
        if self.clock() - timestamp > SIGNATURE_WINDOW_SECONDS:
            reported = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S +0000")
            # ref §3.3: the status is undocumented; 401 like a bad signature.
            raise ApiError(
                401, f"Stale request - reported time is {reported} which is more than 1 hour ago"
            )

    def _check_signature(self, form: Form, signature: str) -> None:
        # ref §3.3: the digest length tells the algorithm: 40 hex = SHA-1, 64 hex = SHA-256.
        algorithm = {40: "sha1", 64: "sha256"}.get(len(signature))
        if algorithm == "sha1" and self.enforce_sha256:
            algorithm = None
        to_sign = string_to_sign(form.fields)
        candidates = [to_sign]
        if self.accept_signature_v1:
            candidates.append(string_to_sign(form.fields, version=1))
        for candidate in candidates:
            if algorithm and hmac.compare_digest(
                hex_digest(candidate + self.api_secret, algorithm), signature
            ):
                return
        raise ApiError(401, f"Invalid Signature {signature}. String to sign - '{to_sign}'.")

    # -- Upload ------------------------------------------------------------------------------

    def _upload(self, request: Request, resource_type: str) -> Response:
        form = parse_form(request)
        auth = self._authenticate(request, form, allow_unsigned=True)
        params = {**auth.preset, **{name: form.get(name) for name in form.fields}}
        if form.file is None or not form.file.data:
            raise ApiError(400, "Missing required parameter - file")
        content_range = request.headers.get("content-range")
        if content_range:
            upload_id = request.headers.get("x-unique-upload-id", "")
            return self._upload_chunk(
                resource_type, params, form.file, content_range, upload_id, auth
            )
        return _json_response(200, self._store(resource_type, params, form.file, auth))

    def _store(
        self,
        requested_type: str,
        params: Mapping[str, str],
        file: FilePart,
        auth: _Auth,
        identity: tuple[str, str] | None = None,
    ) -> JSON:
        """Validate the bytes, then create, replace or (overwrite=0) return the asset."""
        data = file.data
        if self.max_file_bytes is not None and len(data) > self.max_file_bytes:
            raise ApiError(
                400,
                f"File size too large. Got {len(data)}. Maximum is {self.max_file_bytes}. "
                "Upgrade your plan to enjoy higher limits https://www.cloudinary.com/pricing/upgrades/file-limit",
            )
        media = self._media_for(requested_type, data)
        public_id, asset_folder = identity or self._identity(
            params, file.filename, media.resource_type
        )
        delivery_type = params.get("type") or "upload"
        overwrite = _truthy(params.get("overwrite"), default=auth.kind != "unsigned")
        etag = hashlib.md5(data).hexdigest()
        with self._lock:
            key = (media.resource_type, delivery_type, public_id)
            existing = self.assets.get(key)
            if existing is not None and not overwrite:
                # ref §5: the stored asset comes straight back, with "existing": true, status 200.
                return {**self._asset_json(existing), "existing": True}
            asset = self._new_version(
                existing, key, data, media, etag, params, file.filename, asset_folder
            )
            self.assets[key] = asset
            self.upload_count += 1
            response = self._asset_json(asset)
            if existing is not None:
                response["overwritten"] = True
        # ref §8: the upload payload is the upload response, led by when and which request.
        payload: JSON = {
            "notification_type": "upload",
            "timestamp": datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="seconds"),
            "request_id": getattr(self._call, "request_id", None) or secrets.token_hex(16),
            **_notification_fields(response),
        }
        self._notify(payload, params.get("notification_url", ""))
        return response

    def _media_for(self, requested_type: str, data: bytes) -> MediaInfo:
        media = sniff_media(data)
        if requested_type == "auto" or requested_type == media.resource_type:
            return media
        if requested_type == "image":
            raise ApiError(400, "Invalid image file")
        if requested_type == "video":
            raise ApiError(400, "Unsupported video format or file")
        return MediaInfo("raw")  # anything may be stored as raw

    def _new_version(
        self,
        existing: StoredAsset | None,
        key: AssetKey,
        data: bytes,
        media: MediaInfo,
        etag: str,
        params: Mapping[str, str],
        filename: str | None,
        asset_folder: str,
    ) -> StoredAsset:
        now = self.clock()
        version = int(now)
        if existing is not None:
            version = max(version, existing.version + 1)  # a new version must change the URL
        self._seq += 1
        return StoredAsset(
            resource_type=key[0],
            type=key[1],
            public_id=key[2],
            data=data,
            media=media,
            asset_id=existing.asset_id if existing is not None else secrets.token_hex(16),
            version=version,
            version_id=secrets.token_hex(16),
            created_at=now,
            seq=self._seq,
            etag=etag,
            original_filename=_original_filename(filename),
            tags=_split_tags(params.get("tags", "")),
            context=_parse_context(params.get("context", "")),
            asset_folder=asset_folder,
            display_name=params.get("display_name") or key[2].rsplit("/", 1)[-1],
        )

    def _identity(
        self, params: Mapping[str, str], filename: str | None, resource_type: str
    ) -> tuple[str, str]:
        """The public_id and asset_folder of a new upload (ref §11.3)."""
        public_id = params.get("public_id", "").strip()
        if not public_id:
            public_id = self._generated_public_id(params, filename, resource_type)
        folder = params.get("folder", "").strip("/")
        asset_folder = params.get("asset_folder", "").strip("/")
        if self.folder_mode == "fixed":
            # Fixed folder mode prefixes the folder to the public_id (ref §11.3, §9 `upload_dir`).
            return (f"{folder}/{public_id}" if folder else public_id), folder
        return public_id, asset_folder or folder

    def _generated_public_id(
        self, params: Mapping[str, str], filename: str | None, resource_type: str
    ) -> str:
        base = _filename_base(filename, keep_extension=resource_type == "raw")
        if _truthy(params.get("use_filename"), default=False) and base:
            if _truthy(params.get("unique_filename"), default=True):
                return f"{base}_{_random_id(6)}"
            return base
        return _random_id(20)

    # -- Chunked upload (ref §4, §11.4) ------------------------------------------------------

    def _upload_chunk(
        self,
        resource_type: str,
        params: Mapping[str, str],
        file: FilePart,
        content_range: str,
        upload_id: str,
        auth: _Auth,
    ) -> Response:
        start, end, total = _parse_content_range(content_range, len(file.data))
        if not upload_id:
            if start == 0 and total == len(file.data):
                return _json_response(200, self._store(resource_type, params, file, auth))
            # Without the id the parts are not joined; upstream the 2nd part fails (ref §4).
            raise ApiError(400, "Missing required parameter - public_id")
        is_final = total is not None and end + 1 == total
        if not is_final and len(file.data) < MIN_CHUNK_BYTES:
            raise ApiError(400, "All parts except EOF-chunk must be larger than 5mb")
        with self._lock:
            self.chunk_count += 1
            self._expire_sessions()
            session = self._session(upload_id, resource_type, params, file, start)
            replay = self._replayed_part(session, start, file.data)
            if replay is not None:
                return replay
            _add_part(session, start, file.data, total)
            if not session.is_complete():
                return _json_response(200, self._partial_json(session))
        return self._finish_session(session, auth)

    def _session(
        self,
        upload_id: str,
        resource_type: str,
        params: Mapping[str, str],
        file: FilePart,
        start: int,
    ) -> _ChunkSession:
        session = self._sessions.get(upload_id)
        if session is not None:
            return session
        # The first request fixes the identity; later chunks carry the public_id the first
        # answer returned (Python SDK) or none (Node SDK), so their own params are not reused.
        first = sniff_media(file.data) if start == 0 else MediaInfo("raw")
        detected = first.resource_type if resource_type == "auto" else resource_type
        public_id, asset_folder = self._identity(params, file.filename, detected)
        session = _ChunkSession(
            upload_id,
            resource_type,
            public_id,
            asset_folder,
            dict(params),
            file.filename,
            self.clock(),
        )
        self._sessions[upload_id] = session
        return session

    def _replayed_part(self, session: _ChunkSession, start: int, data: bytes) -> Response | None:
        """A finished session still answers retries of its parts (the reply may have been lost)."""
        if session.result is None:
            return None
        if session.parts.get(start) != data:
            raise ApiError(400, f"Upload {session.upload_id} is already complete")
        if start == max(session.parts):
            return _json_response(200, session.result)
        return _json_response(200, self._partial_json(session))

    def _partial_json(self, session: _ChunkSession) -> JSON:
        # ref §4 (spec non_final_chunk_upload_response) and §11.4: always with public_id.
        detected = session.resource_type
        if detected == "auto":
            detected = sniff_media(session.parts[0]).resource_type if 0 in session.parts else "raw"
        return {
            "done": False,
            "bytes": session.received,
            "kind": "upload",
            "resource_type": detected,
            "public_id": session.public_id,
        }

    def _finish_session(self, session: _ChunkSession, auth: _Auth) -> Response:
        file = FilePart(session.filename, session.assemble())
        identity = (session.public_id, session.asset_folder)
        result = self._store(session.resource_type, session.params, file, auth, identity)
        with self._lock:
            session.result = result
        return _json_response(200, result)

    def _expire_sessions(self) -> None:
        cutoff = self.clock() - CHUNK_SESSION_TTL_SECONDS
        for upload_id in [k for k, s in self._sessions.items() if s.started_at < cutoff]:
            del self._sessions[upload_id]

    # -- Destroy and rename (ref §7) ----------------------------------------------------------

    def _destroy(self, request: Request, resource_type: str) -> Response:
        form = parse_form(request)
        self._authenticate(request, form, allow_unsigned=False)
        public_id = _required(form, "public_id")
        key = (_stored_type(resource_type), form.get("type") or "upload", public_id)
        with self._lock:
            asset = self.assets.pop(key, None)
            if asset is not None:
                self.destroy_count += 1
        if asset is None:
            return _json_response(200, {"result": "not found"})  # 200, not 404 (ref §7)
        self._notify(
            {"notification_type": "delete", "resources": [self._resource_ref(asset)]},
            form.get("notification_url"),
        )
        return _json_response(200, {"result": "ok"})

    def _rename(self, request: Request, resource_type: str) -> Response:
        form = parse_form(request)
        self._authenticate(request, form, allow_unsigned=False)
        source, target = _required(form, "from_public_id"), _required(form, "to_public_id")
        rt = _stored_type(resource_type)
        from_key = (rt, form.get("type") or "upload", source)
        to_key = (rt, form.get("to_type") or from_key[1], target)
        with self._lock:
            asset = self.assets.get(from_key)
            if asset is None:
                raise ApiError(404, f"Resource not found - {source}")
            if (
                to_key in self.assets
                and to_key != from_key
                and not _truthy(form.get("overwrite"), default=False)
            ):
                raise ApiError(400, f"Resource already exists - {target}")
            del self.assets[from_key]
            asset.type, asset.public_id = to_key[1], target
            self.assets[to_key] = asset
            response = self._asset_json(asset)
        self._notify(
            {
                "notification_type": "rename",
                "from_public_id": source,
                "to_public_id": target,
                **_notification_fields(response),
            },
            form.get("notification_url"),
        )
        return _json_response(200, response)

    # -- Admin API (ref §7) --------------------------------------------------------------------

    def _admin(self, request: Request, rest: list[str]) -> Response:
        self._authenticate_admin(request)
        headers = self._rate_limit_headers()
        query = dict(parse_qsl(request.query, keep_blank_values=True))
        method = request.method
        if rest == ["ping"] and method == "GET":
            return _json_response(200, {"status": "ok"}, headers)
        if rest == ["config"] and method == "GET":
            return _json_response(200, self._config_json(query), headers)
        if len(rest) >= 2 and rest[1] in STORED_RESOURCE_TYPES:
            rt = rest[1]
            if method == "GET" and len(rest) <= 3:
                delivery_type = rest[2] if len(rest) == 3 else query.get("type") or None
                return _json_response(200, self._list(request, rt, delivery_type), headers)
            if method == "GET":
                return _json_response(200, self._resource(rt, rest[2], "/".join(rest[3:])), headers)
            if method == "DELETE" and len(rest) == 3:
                return _json_response(200, self._bulk_delete(request, rt, rest[2]), headers)
        raise ApiError(404, f"Unknown API endpoint {method} {request.path}")

    def _authenticate_admin(self, request: Request) -> None:
        # ref §7 and §11.2: Basic auth (or OAuth), otherwise 401 "Invalid credentials".
        header = request.headers.get("authorization", "")
        if not header:
            raise ApiError(401, "Invalid credentials")
        self._authenticate_header(header)

    def _rate_limit_headers(self) -> list[tuple[str, str]]:
        """ref §6: X-FeatureRateLimit-* on Admin answers; 420 once the hour's budget is spent."""
        now = self.clock()
        with self._lock:
            window_end, calls = self._admin_window
            if now >= window_end:
                window_end, calls = (now // 3600 + 1) * 3600, 0
            if calls >= self.admin_rate_limit:
                raise ApiError(420, "Rate Limit Exceeded")
            self._admin_window = (window_end, calls + 1)
        return [
            ("X-FeatureRateLimit-Limit", str(self.admin_rate_limit)),
            ("X-FeatureRateLimit-Remaining", str(self.admin_rate_limit - calls - 1)),
            ("X-FeatureRateLimit-Reset", formatdate(window_end, usegmt=True)),
        ]

    def _config_json(self, query: Mapping[str, str]) -> JSON:
        payload: JSON = {"cloud_name": self.cloud_name}
        if query.get("settings") == "true":
            payload["settings"] = {"folder_mode": self.folder_mode}
        return payload

    def _list(self, request: Request, resource_type: str, delivery_type: str | None) -> JSON:
        query = _query_lists(request.query)
        max_results = _max_results(_first(query, "max_results"))
        prefix = _first(query, "prefix")
        public_ids = set(query.get("public_ids", []))
        descending = _first(query, "direction").lower() not in ("asc", "1")
        with self._lock:
            after = self._cursor_position(_first(query, "next_cursor"), descending)
            matches = [
                a
                for a in self.assets.values()
                if a.resource_type == resource_type
                and (delivery_type is None or a.type == delivery_type)
                and a.public_id.startswith(prefix)
                and (not public_ids or a.public_id in public_ids)
                and (after is None or (a.seq < after if descending else a.seq > after))
            ]
            matches.sort(key=lambda a: a.seq, reverse=descending)
            page = matches[:max_results]
            payload: JSON = {"resources": [self._info_json(a, query) for a in page]}
            if len(matches) > max_results:
                # ref §7: an opaque cursor, absent on the last page.
                payload["next_cursor"] = self._new_cursor(page[-1].seq, descending)
        return payload

    def _cursor_position(self, cursor: str, descending: bool) -> int | None:
        if not cursor:
            return None
        position = self._cursors.get(cursor)
        if position is None or (position[0] == "desc") != descending:
            raise ApiError(400, f"Invalid next_cursor {cursor}")
        return position[1]

    def _new_cursor(self, seq: int, descending: bool) -> str:
        cursor = secrets.token_hex(32)
        self._cursors[cursor] = ("desc" if descending else "asc", seq)
        return cursor

    def _resource(self, resource_type: str, delivery_type: str, public_id: str) -> JSON:
        with self._lock:
            asset = self.assets.get((resource_type, delivery_type, public_id))
            if asset is None:
                raise ApiError(404, f"Resource not found - {public_id}")
            return {
                **self._info_json(asset, {"tags": ["true"], "context": ["true"]}),
                "derived": [],
            }

    def _bulk_delete(self, request: Request, resource_type: str, delivery_type: str) -> JSON:
        spec = _bulk_delete_spec(request)
        public_ids = spec.get("public_ids")
        prefix = spec.get("prefix")
        delete_all = spec.get("all") in (True, "true", "1")
        if not public_ids and prefix is None and not delete_all:
            raise ApiError(400, "Must specify public_ids, prefix or all")
        deleted: dict[str, str] = {}
        counts: dict[str, JSON] = {}
        with self._lock:
            if public_ids:
                targets = [
                    str(p) for p in (public_ids if isinstance(public_ids, list) else [public_ids])
                ]
            else:
                targets = sorted(
                    a.public_id
                    for a in self.assets.values()
                    if a.resource_type == resource_type
                    and a.type == delivery_type
                    and (delete_all or a.public_id.startswith(str(prefix)))
                )
            for public_id in targets[:BULK_DELETE_MAX]:
                asset = self.assets.pop((resource_type, delivery_type, public_id), None)
                deleted[public_id] = "deleted" if asset is not None else "not_found"
                if asset is not None:
                    counts[public_id] = {"original": 1, "derived": 0}
                    self.destroy_count += 1
        payload: JSON = {
            "deleted": deleted,
            "deleted_counts": counts,
            "partial": len(targets) > BULK_DELETE_MAX,
        }
        if payload["partial"]:
            payload["next_cursor"] = secrets.token_hex(16)  # the next call simply deletes the rest
        return payload

    # -- Delivery (res.cloudinary.com layout) ---------------------------------------------------

    def _deliver(self, resource_type: str, delivery_type: str, rest: list[str]) -> Response:
        asset, transforms, extension = self._locate(resource_type, delivery_type, rest)
        transformation = parse_transformation(transforms)
        if asset.resource_type == "raw":
            return _media_response(asset.data, "", asset.etag)
        target = _delivery_format(asset, transformation, extension)
        if asset.resource_type == "video":
            if target in _PIL_SAVE_FORMATS:
                return self._video_poster(asset, transformation, target)
            return _media_response(asset.data, target, asset.etag)  # no transcoding
        if target == asset.format and not transforms:
            return _media_response(asset.data, target, asset.etag)
        return self._rendered_image(asset, transformation, target)

    def _locate(
        self, resource_type: str, delivery_type: str, rest: list[str]
    ) -> tuple[StoredAsset, list[str], str]:
        """Split `[transformations/][v<version>/]<public_id>[.<ext>]` into its parts.

        The version number is only a cache key upstream, so any version serves the asset.
        """
        with self._lock:
            for split in range(len(rest)):
                head, tail = rest[:split], rest[split:]
                if not all(is_transformation_segment(s) for s in head):
                    break
                if tail and _VERSION_RE.match(tail[0]) and len(tail) > 1:
                    tail = tail[1:]
                found = self._find_delivered(resource_type, delivery_type, "/".join(tail))
                if found is not None:
                    return found[0], head, found[1]
        raise DeliveryError(404, f"Resource not found - {'/'.join(rest)}")

    def _find_delivered(
        self, resource_type: str, delivery_type: str, path: str
    ) -> tuple[StoredAsset, str] | None:
        exact = self.assets.get((resource_type, delivery_type, path))
        if exact is not None:
            return exact, ""
        stem, dot, extension = path.rpartition(".")
        if dot and resource_type != "raw" and "/" not in extension:
            asset = self.assets.get((resource_type, delivery_type, stem))
            if asset is not None:
                return asset, extension.lower()
        return None

    def _rendered_image(
        self, asset: StoredAsset, transformation: Transformation, target: str
    ) -> Response:
        try:
            with Image.open(io.BytesIO(asset.data)) as source:
                source.load()
                rendered = resize_image(source, transformation)
                body = encode_image(rendered, target, transformation.quality)
        except DeliveryError:
            raise
        except Exception as exc:  # PDF/SVG and the like: Pillow cannot render them
            raise DeliveryError(400, f"Cannot transform {asset.format} to {target}") from exc
        return _media_response(body, target, hashlib.md5(body).hexdigest())

    def _video_poster(
        self, asset: StoredAsset, transformation: Transformation, target: str
    ) -> Response:
        """A video delivered as an image (e.g. `so_auto/...jpg`): a generated still frame."""
        size = (asset.media.width or 640, asset.media.height or 360)
        colour = tuple(bytes.fromhex(asset.etag[:6]))  # stable per asset, distinct between assets
        frame = resize_image(Image.new("RGB", size, colour), transformation)
        body = encode_image(frame, target, transformation.quality)
        return _media_response(body, target, hashlib.md5(body).hexdigest())

    # -- JSON shapes --------------------------------------------------------------------------

    def delivery_url(self, asset: StoredAsset) -> str:
        suffix = f".{asset.format}" if asset.format else ""
        path = quote(asset.public_id, safe="/!$&'()*+,;=:@-._~")
        return f"{self.url}/{self.cloud_name}/{asset.resource_type}/{asset.type}/v{asset.version}/{path}{suffix}"

    def _asset_json(self, asset: StoredAsset) -> JSON:
        """The upload response of ref §5 (also returned by rename and `existing`)."""
        url = self.delivery_url(asset)
        payload: JSON = {
            "asset_id": asset.asset_id,
            "public_id": asset.public_id,
            "version": asset.version,
            "version_id": asset.version_id,
            # ref §5: sha1("public_id=..&version=.." + secret), v1 string (no %26).
            "signature": hex_digest(
                f"public_id={asset.public_id}&version={asset.version}{self.api_secret}",
                self.signature_algorithm,
            ),
        }
        payload |= _dimensions(asset.media)
        if asset.format:
            payload["format"] = asset.format
        payload |= {
            "resource_type": asset.resource_type,
            "created_at": _iso(asset.created_at),
            "tags": list(asset.tags),
        }
        if asset.media.pages is not None:
            payload["pages"] = asset.media.pages
        payload |= {
            "bytes": len(asset.data),
            "type": asset.type,
            "etag": asset.etag,
            "placeholder": False,
            "url": url,
            "secure_url": url,  # no TLS on loopback: both point at the emulator over http
        }
        payload |= self._folder_fields(asset)
        if asset.context:
            payload["context"] = {"custom": dict(asset.context)}
        payload |= _video_fields(asset.media)
        payload |= {"original_filename": asset.original_filename, "api_key": self.api_key}
        return payload

    def _folder_fields(self, asset: StoredAsset) -> JSON:
        # ref §5: fixed-folder accounts report `folder`, dynamic ones `asset_folder`/`display_name`.
        if self.folder_mode == "fixed":
            return {"folder": asset.public_id.rpartition("/")[0], "access_mode": "public"}
        return {"asset_folder": asset.asset_folder, "display_name": asset.display_name}

    def _info_json(self, asset: StoredAsset, query: Mapping[str, list[str]]) -> JSON:
        """An Admin API resource: ref §7 `info` fields; tags/context only when asked for."""
        url = self.delivery_url(asset)
        payload: JSON = {"asset_id": asset.asset_id, "public_id": asset.public_id}
        if asset.format:
            payload["format"] = asset.format
        payload |= {
            "version": asset.version,
            "resource_type": asset.resource_type,
            "type": asset.type,
            "created_at": _iso(asset.created_at),
            "bytes": len(asset.data),
        }
        payload |= _dimensions(asset.media)
        payload |= self._folder_fields(asset)
        payload |= {"url": url, "secure_url": url, "etag": asset.etag, "status": "active"}
        payload |= _video_fields(asset.media)
        if _first(query, "tags") == "true":
            payload["tags"] = list(asset.tags)
        if _first(query, "context") == "true" and asset.context:
            payload["context"] = {"custom": dict(asset.context)}
        return payload

    def _resource_ref(self, asset: StoredAsset) -> JSON:
        return {
            "resource_type": asset.resource_type,
            "type": asset.type,
            "asset_id": asset.asset_id,
            "public_id": asset.public_id,
            "version": asset.version,
        }

    # -- Webhook notifications (ref §8, §11.6) -------------------------------------------------

    def wait_for_deliveries(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until at least `count` deliveries are finished (delivered or given up).

        Returns False if that did not happen within `timeout` seconds.
        """
        with self._deliveries_changed:
            return self._deliveries_changed.wait_for(
                lambda: self.deliveries_finished >= count, timeout
            )

    def wait_for_attempts(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until at least `count` attempts (over all deliveries) have an outcome."""
        with self._deliveries_changed:
            return self._deliveries_changed.wait_for(
                lambda: sum(d.attempts for d in self.deliveries) >= count, timeout
            )

    def _notify(self, payload: JSON, notification_url: str | None = None) -> None:
        """Record a notification and queue its signed delivery (ref §8, §11.6).

        It goes to the call's own `notification_url`, else the global `self.notification_url`;
        with neither it is only recorded. Signed now, sent later by the delivery thread, so the
        API answer never waits for the receiver.
        """
        url = notification_url or self.notification_url
        with self._lock:
            self.notifications.append(payload)
        if not url:
            return
        body = json.dumps(payload, separators=(",", ":"))  # ref §8: compact, like the real one
        timestamp = str(int(self.clock()))  # an integer string: "1549533514.0" hashes otherwise
        signature = sign_notification(body, timestamp, self.api_secret, self.notification_algorithm)
        delivery = Delivery(url, body, timestamp, signature, payload)
        with self._deliveries_changed:
            self.deliveries.append(delivery)
        if self._delivery_thread is None or self._stopping.is_set():
            self._finish_delivery(delivery, delivered=False)
            return
        self._delivery_queue.put(delivery)

    def _deliver_notifications(self, deliveries: queue.SimpleQueue[Delivery | None]) -> None:
        """The delivery thread: one notification at a time, in the order they were made."""
        while (delivery := deliveries.get()) is not None:
            try:
                self._send_notification(delivery)
            except Exception:
                self.record_internal_error(traceback.format_exc())
                self._finish_delivery(delivery, delivered=False)

    def _send_notification(self, delivery: Delivery) -> None:
        """The first attempt, then one retry per entry of `notification_retry_delays`."""
        delays = tuple(self.notification_retry_delays)
        for attempt in range(len(delays) + 1):
            if attempt:
                self.sleep(delays[attempt - 1])  # returns early when the emulator stops
            if self._stopping.is_set():
                break  # stopping: give up instead of holding `stop` up
            status = self._attempt(delivery)
            if status is None and self._stopping.is_set():
                break  # cut short by `stop`: not an answer from the receiver, so not recorded
            with self._deliveries_changed:
                delivery.statuses.append(status)
                self._deliveries_changed.notify_all()
            # ref §8: redelivered "when the endpoint does not return 200", so a 204 is retried too.
            if status == 200:
                self._finish_delivery(delivery, delivered=True)
                return
        self._finish_delivery(delivery, delivered=False)

    def _attempt(self, delivery: Delivery) -> int | None:
        """POST once; the answer's status, or None when the receiver could not be reached."""
        parts = urlsplit(delivery.url)
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None  # unreachable by definition; an empty host would mean localhost:80
        try:
            connection = connection_class(
                parts.hostname, parts.port, timeout=self.notification_timeout
            )
            connection.connect()
        except (OSError, ValueError, http.client.HTTPException):
            return None
        try:
            with self._lock:
                # Registered under the lock `stop` aborts under: either `stop` sees this
                # connection and shuts it, or this sees `_stopping` and does not send.
                if self._stopping.is_set():
                    return None
                self._delivery_connection = connection
            connection.request(
                "POST",
                path,
                body=delivery.body.encode(),
                headers={
                    "Content-Type": "application/json",
                    "X-Cld-Timestamp": delivery.timestamp,
                    "X-Cld-Signature": delivery.signature,
                },
            )
            response = connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            return None
        finally:
            with self._lock:
                self._delivery_connection = None
            connection.close()

    def _abort_delivery_attempt(self) -> None:
        """Unblock an attempt waiting on a slow receiver, so `stop` does not wait for it."""
        with self._lock:
            connection = self._delivery_connection
            sock = connection.sock if connection is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):  # the attempt just ended on its own
                    sock.shutdown(socket.SHUT_RDWR)

    def _finish_delivery(self, delivery: Delivery, *, delivered: bool) -> None:
        with self._deliveries_changed:
            delivery.delivered = delivered
            delivery.finished = True
            self.deliveries_finished += 1
            self._deliveries_changed.notify_all()


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _notification_fields(response: JSON) -> JSON:
    """The asset fields of a notification: the upload response minus what only it carries."""
    return {key: value for key, value in response.items() if key not in _RESPONSE_ONLY_FIELDS}


def _random_id(length: int) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _truthy(value: str | None, *, default: bool) -> bool:
    if not value:
        return default
    return value.strip().lower() in ("1", "true", "yes")


def _required(form: Form, name: str) -> str:
    value = form.get(name)
    if not value:
        raise ApiError(400, f"Missing required parameter - {name}")
    return value


def _stored_type(resource_type: str) -> str:
    if resource_type not in STORED_RESOURCE_TYPES:
        raise ApiError(400, f"Invalid resource type {resource_type}")
    return resource_type


def _filename_base(filename: str | None, *, keep_extension: bool) -> str:
    if not filename:
        return ""
    base = re.split(r"[\\/]", filename)[-1]
    if not keep_extension and "." in base.strip("."):
        base = base.rsplit(".", 1)[0]
    return base.strip()


def _original_filename(filename: str | None) -> str:
    # The SDK names bytes "file" and streams "stream"; a data URI has no name at all.
    return _filename_base(filename, keep_extension=False) or "file"


def _split_tags(raw: str) -> list[str]:
    return [tag.strip() for tag in raw.split(",") if tag.strip()]


def _parse_context(raw: str) -> dict[str, str]:
    """`k=v|k2=v2` with `\\|` and `\\=` escapes (SDK `encode_context`)."""
    context: dict[str, str] = {}
    for pair in re.split(r"(?<!\\)\|", raw):
        key, _, value = pair.partition("=") if "\\=" not in pair else _split_escaped(pair)
        if key:
            context[_unescape_context(key)] = _unescape_context(value)
    return context


def _split_escaped(pair: str) -> tuple[str, str, str]:
    parts = re.split(r"(?<!\\)=", pair, maxsplit=1)
    return (parts[0], "=", parts[1]) if len(parts) == 2 else (parts[0], "", "")


def _unescape_context(text: str) -> str:
    return text.replace("\\|", "|").replace("\\=", "=")


def _parse_content_range(header: str, length: int) -> tuple[int, int, int | None]:
    match = _CONTENT_RANGE_RE.match(header.strip())
    if match is None:
        raise ApiError(400, f"Invalid Content-Range header: {header}")
    start, end = int(match.group(1)), int(match.group(2))
    total = None if match.group(3) in ("-1", "*") else int(match.group(3))  # Node sends -1 (ref §4)
    if end < start or (total is not None and end >= total):
        raise ApiError(400, f"Invalid Content-Range header: {header}")
    if end - start + 1 != length:
        raise ApiError(400, f"Content-Range {header} does not match the {length} bytes sent")
    return start, end, total


def _add_part(session: _ChunkSession, start: int, data: bytes, total: int | None) -> None:
    """Store a part; the same range again replaces it (a retry), other overlaps are refused."""
    if total is not None:
        if session.total is not None and session.total != total:
            raise ApiError(400, f"Inconsistent total size {total}, expected {session.total}")
        session.total = total
    end = start + len(data)
    for other_start, other in session.parts.items():
        if other_start == start and len(other) == len(data):
            continue
        if other_start < end and start < other_start + len(other):
            raise ApiError(400, f"Chunk bytes {start}-{end - 1} overlaps an earlier chunk")
    session.parts[start] = data


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dimensions(media: MediaInfo) -> JSON:
    if media.width is None or media.height is None:
        return {}
    return {"width": media.width, "height": media.height}


def _video_fields(media: MediaInfo) -> JSON:
    fields: JSON = {}
    if media.duration is not None:
        fields["duration"] = media.duration
    if media.is_audio:
        fields["is_audio"] = True
    return fields


def _first(query: Mapping[str, list[str]], name: str) -> str:
    values = query.get(name)
    return values[0] if values else ""


def _query_lists(query: str) -> dict[str, list[str]]:
    lists: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        lists.setdefault(name.removesuffix("[]"), []).append(value)
    return lists


def _max_results(raw: str) -> int:
    if not raw:
        return LIST_DEFAULT
    if not raw.isdigit() or not 1 <= int(raw) <= LIST_MAX:
        raise ApiError(400, f"max_results must be between 1 and {LIST_MAX}, got {raw}")
    return int(raw)


def _bulk_delete_spec(request: Request) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for name, values in _query_lists(request.query).items():
        spec[name] = values if name == "public_ids" else values[0]
    if request.body:
        form = parse_form(Request(request.method, request.path, "", request.headers, request.body))
        for name, value in form.fields.items():
            spec[name] = value
    return spec


def _delivery_format(asset: StoredAsset, transformation: Transformation, extension: str) -> str:
    if transformation.format and transformation.format != "auto":
        return transformation.format
    return {"jpeg": "jpg"}.get(extension, extension) or asset.format or ""


def _media_response(body: bytes, fmt: str, etag: str) -> Response:
    content_type = _CONTENT_TYPES.get(fmt, "application/octet-stream")
    return Response(
        200,
        body,
        content_type,
        (("ETag", f'"{etag}"'), ("Cache-Control", "public, max-age=2592000")),
    )


# --------------------------------------------------------------------------------------------
# HTTP layer: a threaded HTTP/1.1 server that tracks its connections so `stop` can close them
# --------------------------------------------------------------------------------------------


class _EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # `cld upload_dir` opens 30 connections at once (ref §9)

    def __init__(self, address: tuple[str, int], emulator: CloudinaryEmulator) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._handler_threads: set[threading.Thread] = set()
        self._track = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a DNS lookup that can take seconds.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = (
            str(self.server_address[0]),
            int(self.server_address[1]),
        )

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"cloudinary-emulator-{self.server_port}-conn",
            daemon=True,
        )
        with self._track:
            self._connections.add(request)
            self._handler_threads.add(thread)
            self.emulator.connections_accepted += 1
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._track:
                self._connections.discard(request)
                self._handler_threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client going away mid-request is normal (and what drop faults cause); anything
        # else is an emulator bug worth a test failure.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)) or self.emulator._stopping.is_set():
            return
        self.emulator.record_internal_error(traceback.format_exc())

    def close_connections(self) -> None:
        with self._track:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def join_handlers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.live_threads():
            thread.join(max(0.0, deadline - time.monotonic()))

    def live_threads(self) -> list[threading.Thread]:
        with self._track:
            return [t for t in self._handler_threads if t.is_alive()]


class _BodyError(Exception):
    """The request body could not be read (client gone or bad framing)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: httpx and urllib3 reuse pooled connections
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: _EmulatorHTTPServer

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # `emulator.requests` is the log

    def _serve(self) -> None:
        emulator = self.server.emulator
        try:
            body, oversized = self._read_body(emulator)
        except _BodyError:
            self.close_connection = True
            return
        path, _, query = self.path.partition("?")
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Request(self.command, path, query, headers, body, oversized)
        response = emulator.handle(request)
        if response is None:
            self.close_connection = True  # the drop fault: no status line at all
            return
        self._write(response)

    def _write(self, response: Response) -> None:
        self.send_response(response.status, _REASON_PHRASES.get(response.status))
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _read_body(self, emulator: CloudinaryEmulator) -> tuple[bytes, int]:
        path = self.path.partition("?")[0]
        throttle = _Throttle(emulator, emulator.faults.applies_to(self.command, path))
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = self._read_chunked(throttle)
        else:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError as exc:
                raise _BodyError from exc
            if length > emulator.max_request_bytes:
                self._discard(length, throttle)
                return b"", length
            body = self._read_exact(length, throttle)
        if len(body) > emulator.max_request_bytes:
            return b"", len(body)
        return body, 0

    def _read_exact(self, length: int, throttle: _Throttle) -> bytes:
        blocks: list[bytes] = []
        remaining = length
        while remaining > 0:
            block = self.rfile.read(min(remaining, throttle.block_size()))
            if not block:
                raise _BodyError("client closed the connection mid-body")
            blocks.append(block)
            remaining -= len(block)
            throttle.consumed(len(block))
        return b"".join(blocks)

    def _discard(self, length: int, throttle: _Throttle) -> None:
        while length > 0:
            block = self.rfile.read(min(length, _READ_BLOCK))
            if not block:
                raise _BodyError("client closed the connection mid-body")
            length -= len(block)
            throttle.consumed(len(block))

    def _read_chunked(self, throttle: _Throttle) -> bytes:
        blocks: list[bytes] = []
        while True:
            size_line = self.rfile.readline(1024)
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError as exc:
                raise _BodyError("bad chunk size") from exc
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(blocks)
            blocks.append(self._read_exact(size, throttle))
            self.rfile.readline(1024)  # the CRLF after the chunk


class _Throttle:
    """Paces body reads to `faults.bandwidth` bytes/s, re-read on each block so tests can change it."""

    def __init__(self, emulator: CloudinaryEmulator, applies: bool) -> None:
        self._emulator = emulator
        self._applies = applies
        self._started = time.monotonic()
        self._bytes = 0
        self._counted = False

    def _bandwidth(self) -> float | None:
        return self._emulator.faults.bandwidth if self._applies else None

    def block_size(self) -> int:
        bandwidth = self._bandwidth()
        if not bandwidth:
            return _READ_BLOCK
        return max(1024, min(_READ_BLOCK, int(bandwidth / 20)))  # ~20 progress steps a second

    def consumed(self, count: int) -> None:
        bandwidth = self._bandwidth()
        if not bandwidth:
            return
        if not self._counted:
            self._counted = True
            self._emulator.faults.note_throttled()
        self._bytes += count
        ahead = self._bytes / bandwidth - (time.monotonic() - self._started)
        self._emulator.sleep(ahead)
