"""CloudinaryStorage: the Upload and Admin APIs over an async, pooled httpx client.

The `cloudinary` SDK is synchronous, reads whole files into memory and reports no progress
(reference/cloudinary.md §9), so requests are made here: signed with the SDK's own
`api_sign_request` (SHA-1 or SHA-256, signature v2), bodies streamed from disk, large files sent
in chunks that are each a complete signed request with one `X-Unique-Upload-Id` and their own
`Content-Range` (§4). A chunk that fails transiently is sent again with the same id and range,
so a 4 GB video never restarts from byte 0.

Errors follow Cloudinary's `{"error": {"message": …}}` (§6): 401 is a credentials or clock
problem and is not retried; 420/429 and 5xx are transient; other 4xx fail with Cloudinary's
message. A success is a 2xx whose JSON holds an asset.
"""

from __future__ import annotations

import asyncio
import html
import random
import re
import string
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Literal

import httpx
from cloudinary.utils import api_sign_request

from media_tui.backends.base import ProgressCallback, UploadRequest
from media_tui.backends.multipart import FileRegion, MultipartBody
from media_tui.config import CloudinarySettings
from media_tui.content import StreamVerifier, check_stored, read_error
from media_tui.errors import NameTaken, PermanentError, TransferError, TransientError
from media_tui.model import MediaAsset, ResourceType, parse_timestamp
from media_tui.naming import storable_name
from media_tui.safe_text import safe_text

MIN_CHUNK = 5 * 1024 * 1024  # every chunk but the last must be at least 5 MiB (§4)
DEFAULT_CHUNK = 20_000_000  # the SDK's and CLI's chunk size
CHUNK_ATTEMPTS = 5
THUMBNAIL_TRANSFORM = "c_limit,w_256,h_256"
CHECKSUM_CONTEXT_KEY = "media_tui_sha256"  # lets `sync` rebuild a row's checksum for dedupe
MAX_MESSAGE = 300


def _cloudinary_message(response: httpx.Response) -> str:
    try:
        body = response.json()
        message = str(body["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = _text_message(response)
    message = safe_text(message)  # the body is remote text: no ESC or C1 may reach a log
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + "…"


_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


def _text_message(response: httpx.Response) -> str:
    """What a body that is not Cloudinary's JSON says: a proxy's or CDN's HTML page, or nothing.

    Its first line was taken before, so a 502 from nginx read "(502: <html>)". An HTML page
    says what happened in its <title>; without one, or for an empty body, the status's own
    reason phrase ("Bad Gateway") is the clearest thing there is.
    """
    text = response.text.strip()
    if text.startswith("<"):
        title = _HTML_TITLE.search(text)
        text = " ".join(html.unescape(title.group(1)).split()) if title else ""
    if not text:
        return response.reason_phrase or "no message"
    return text.splitlines()[0]


def error_for(response: httpx.Response, what: str) -> TransferError:
    """The operator-facing error for a failed Cloudinary answer."""
    status = response.status_code
    message = _cloudinary_message(response)
    if status == 401:
        return PermanentError(
            f"Cloudinary refused the credentials for {what} ({message}); check the API key and secret "
            "in CLOUDINARY_URL and that this machine's clock is right.",
            status=status,
        )
    if status in (420, 429) or status >= 500:
        return TransientError(
            f"Cloudinary could not take {what} right now ({status}: {message}).", status=status
        )
    return PermanentError(f"Cloudinary refused {what} ({status}: {message}).", status=status)


class CloudinaryStorage:
    """Storage on Cloudinary. One instance per process; `aclose()` closes its connection pool."""

    name = "cloudinary"
    sync_key: Literal["public_id", "checksum"] = "public_id"
    # What the Admin API says about an asset; the checksum is left out because assets uploaded
    # by other tools have none, and the catalogue's is still right for the bytes it names.
    sync_fields: tuple[str, ...] = (
        "resource_type",
        "format",
        "bytes",
        "width",
        "height",
        "duration",
        "url",
        "folder",
        "tags",
        "version",
        "thumbnail",
    )

    def __init__(
        self,
        settings: CloudinarySettings,
        *,
        concurrency: int = 4,
        chunk_threshold: int = DEFAULT_CHUNK,
        chunk_size: int = DEFAULT_CHUNK,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.chunk_threshold = chunk_threshold
        self.chunk_size = max(MIN_CHUNK, chunk_size)
        self._rng = rng or random.Random()
        self._sleep = sleep
        # Enough pooled connections for every worker plus a chunked upload's neighbour, all reused.
        self._client = httpx.AsyncClient(
            base_url=f"{settings.api_base}/v1_1/{settings.cloud_name}/",
            limits=httpx.Limits(
                max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2
            ),
            timeout=httpx.Timeout(connect=10.0, read=120.0, write=120.0, pool=None),
            headers={"User-Agent": "media-tui"},
            transport=transport,
        )

    # ------------------------------------------------------------------ signing

    def signed(self, params: Mapping[str, str]) -> dict[str, str]:
        """The form fields to send: params with a fresh timestamp, the signature and the key."""
        fields = {k: v for k, v in params.items() if v}  # falsy values are neither sent nor signed
        fields["timestamp"] = str(int(time.time()))
        fields["signature"] = api_sign_request(
            dict(fields),
            self.settings.api_secret.value,
            algorithm=self.settings.signature_algorithm,
        )
        fields["api_key"] = self.settings.api_key
        return fields

    # ------------------------------------------------------------------ upload

    async def upload(self, request: UploadRequest, progress: ProgressCallback) -> MediaAsset:
        params = {
            "public_id": request.public_id,
            # Never replace what is there: a name taken by other bytes comes back as
            # `existing: true` with their etag (NameTaken), while our own earlier attempt (a
            # retry, a resumed job) comes back with our etag and counts as stored.
            "overwrite": "0",
            "tags": ",".join(request.tags),
            "context": f"{CHECKSUM_CONTEXT_KEY}={request.checksum}",
        }
        path = f"{request.resource_type.value}/upload"
        verifier = (
            None
            if request.content is not None
            else StreamVerifier(request.path, request.fingerprint)
        )
        if request.size > self.chunk_threshold:
            answer = await self._upload_chunked(path, params, request, progress, verifier)
        else:
            region = self._region(request, 0, request.size, verifier)
            answer = await self._post_file(
                path, params, region, progress, {}, what=request.path.name
            )
        return self._asset(answer, request)

    @staticmethod
    def _region(
        request: UploadRequest, offset: int, length: int, verifier: StreamVerifier | None
    ) -> FileRegion:
        data = request.content
        return FileRegion(
            request.path,
            offset,
            length,
            storable_name(request.path.name),
            data=None if data is None else data[offset : offset + length],
            verifier=verifier,
            last=offset + length == request.size,
        )

    async def _upload_chunked(
        self,
        path: str,
        params: dict[str, str],
        request: UploadRequest,
        progress: ProgressCallback,
        verifier: StreamVerifier | None,
    ) -> dict[str, Any]:
        upload_id = "".join(self._rng.choices(string.ascii_lowercase + string.digits, k=16))
        total, offset = request.size, 0
        answer: dict[str, Any] = {}
        while offset < total:
            length = min(self.chunk_size, total - offset)  # only the last chunk may be short
            region = self._region(request, offset, length, verifier)
            if verifier is not None:
                verifier.checkpoint()  # a resent chunk is hashed again from here
            headers = {
                "X-Unique-Upload-Id": upload_id,
                "Content-Range": f"bytes {offset}-{offset + length - 1}/{total}",
            }
            base = offset

            def chunk_progress(sent: int, base: int = base) -> None:
                progress(base + sent)

            answer = await self._with_chunk_retry(
                path,
                params,
                region,
                chunk_progress,
                headers,
                what=f"{request.path.name} (bytes {offset}–{offset + length})",
            )
            offset += length
        return answer

    async def _with_chunk_retry(
        self,
        path: str,
        params: Mapping[str, str],
        region: FileRegion,
        progress: ProgressCallback,
        headers: Mapping[str, str],
        *,
        what: str,
    ) -> dict[str, Any]:
        attempt = 1
        while True:
            try:
                return await self._post_file(path, params, region, progress, headers, what=what)
            except TransientError:
                if attempt == CHUNK_ATTEMPTS:
                    raise
            if region.verifier is not None:
                region.verifier.rewind()
            backoff = min(10.0, 0.5 * 2.0 ** (attempt - 1))
            await self._sleep(backoff / 2 + self._rng.uniform(0, backoff / 2))
            attempt += 1

    async def _post_file(
        self,
        path: str,
        params: Mapping[str, str],
        region: FileRegion,
        progress: ProgressCallback,
        headers: Mapping[str, str],
        *,
        what: str,
    ) -> dict[str, Any]:
        body = MultipartBody(self.signed(params), region)
        request_headers = {
            **headers,
            "Content-Type": body.content_type,
            "Content-Length": str(body.content_length),
        }
        try:
            response = await self._client.post(
                path, content=body.stream(progress), headers=request_headers
            )
        except httpx.TransportError as exc:
            raise TransientError(
                f"the connection to Cloudinary failed while sending {what} ({type(exc).__name__})."
            ) from exc
        except OSError as exc:
            raise read_error(region.path, exc) from exc
        return self._json_answer(response, what)

    def _json_answer(self, response: httpx.Response, what: str) -> dict[str, Any]:
        if not response.is_success:
            raise error_for(response, what)
        try:
            answer = response.json()
        except ValueError:
            raise TransientError(
                f"Cloudinary sent an unreadable answer for {what} ({response.status_code})."
            ) from None
        if not isinstance(answer, dict):
            raise PermanentError(f"Cloudinary sent an unexpected answer for {what}.")
        if "error" in answer:
            raise error_for(response, what)
        return answer

    def _asset(self, answer: Mapping[str, Any], request: UploadRequest) -> MediaAsset:
        if not answer.get("public_id") or answer.get("done") is False:
            raise PermanentError(
                f"Cloudinary answered the upload of {request.path.name} without an asset."
            )
        etag = answer.get("etag")
        etag = etag if isinstance(etag, str) else None
        if answer.get("existing") and request.md5 and etag and etag.strip('"') != request.md5:
            raise NameTaken(
                f"Cloudinary already holds other bytes under {request.public_id}.",
            )
        if request.md5:
            stored = answer.get("bytes")
            check_stored(
                request.path, request.fingerprint, stored if isinstance(stored, int) else None, etag
            )
        resource_type = ResourceType(answer.get("resource_type") or request.resource_type.value)
        url = answer.get("secure_url") or answer.get("url")
        duration = answer.get("duration")
        return MediaAsset(
            public_id=str(answer["public_id"]),
            resource_type=resource_type,
            format=answer.get("format") or None,
            bytes=int(answer.get("bytes") or request.size),
            width=answer.get("width"),
            height=answer.get("height"),
            duration=float(duration) if duration is not None else None,
            url=url,
            folder=request.folder,
            tags=tuple(answer.get("tags") or request.tags),
            checksum=request.checksum,
            original_filename=storable_name(request.path.name),  # a catalogue needs valid UTF-8
            version=answer.get("version"),
            thumbnail=thumbnail_url(url, resource_type) if url else None,
            created_at=parse_timestamp(answer.get("created_at")),
        )

    # ------------------------------------------------------------ delete, list

    async def delete(self, asset: MediaAsset) -> None:
        params = {"public_id": asset.public_id, "invalidate": "1"}
        try:
            response = await self._client.post(
                f"{asset.resource_type.value}/destroy", data=self.signed(params)
            )
        except httpx.TransportError as exc:
            raise TransientError(
                f"the connection to Cloudinary failed while deleting {asset.public_id}."
            ) from exc
        answer = self._json_answer(response, f"the delete of {asset.public_id}")
        if answer.get("result") not in ("ok", "not found"):  # "not found" means already gone
            raise PermanentError(
                f"Cloudinary did not delete {asset.public_id} ({answer.get('result')})."
            )

    async def list_assets(self) -> AsyncIterator[MediaAsset]:
        """Every uploaded asset, through the Admin API (basic auth), 500 a page."""
        auth = (self.settings.api_key, self.settings.api_secret.value)
        for resource_type in ResourceType:
            cursor: str | None = None
            while True:
                # Without tags/context=true the Admin API leaves them out, and the checksum with them.
                query = {
                    "max_results": "500",
                    "tags": "true",
                    "context": "true",
                    **({"next_cursor": cursor} if cursor else {}),
                }
                try:
                    response = await self._client.get(
                        f"resources/{resource_type.value}/upload", params=query, auth=auth
                    )
                except httpx.TransportError as exc:
                    raise TransientError(
                        f"cannot reach Cloudinary to list assets ({type(exc).__name__}); "
                        "check the network and CLOUDINARY_URL, then try again."
                    ) from exc
                page = self._json_answer(response, "the asset listing")
                for info in page.get("resources", []):
                    yield self.asset_from_info(info)
                cursor = page.get("next_cursor")
                if not cursor:
                    break

    def asset_from_info(self, info: Mapping[str, Any]) -> MediaAsset:
        """An Admin API resource as an asset (what `sync` compares with the catalogue)."""
        resource_type = ResourceType(info.get("resource_type") or "image")
        url = info.get("secure_url") or info.get("url")
        context = info.get("context") or {}
        custom = context.get("custom", context) if isinstance(context, dict) else {}
        public_id = str(info["public_id"])
        return MediaAsset(
            public_id=public_id,
            resource_type=resource_type,
            format=info.get("format") or None,
            bytes=int(info.get("bytes") or 0),
            width=info.get("width"),
            height=info.get("height"),
            duration=info.get("duration"),
            url=url,
            folder=public_id.rsplit("/", 1)[0] if "/" in public_id else "",
            tags=tuple(info.get("tags") or ()),
            checksum=custom.get(CHECKSUM_CONTEXT_KEY) if isinstance(custom, dict) else None,
            version=info.get("version"),
            thumbnail=thumbnail_url(url, resource_type) if url else None,
            created_at=parse_timestamp(info.get("created_at")),
        )

    async def ping(self) -> None:
        """Check the credentials and the host: the Admin API's ping."""
        try:
            response = await self._client.get(
                "ping", auth=(self.settings.api_key, self.settings.api_secret.value)
            )
        except httpx.TransportError as exc:
            raise TransientError(
                f"cannot reach Cloudinary at {self.settings.api_base} ({type(exc).__name__})."
            ) from exc
        self._json_answer(response, "a ping")

    async def aclose(self) -> None:
        await self._client.aclose()


def thumbnail_url(url: str, resource_type: ResourceType) -> str | None:
    """A small derived image for the grid: `c_limit` for images, a JPEG poster frame for video."""
    marker = "/upload/"
    if resource_type is ResourceType.RAW or marker not in url:
        return None
    head, tail = url.split(marker, 1)
    if resource_type is ResourceType.VIDEO:
        stem = tail.rsplit(".", 1)[0]
        return f"{head}{marker}so_auto,{THUMBNAIL_TRANSFORM}/{stem}.jpg"
    return f"{head}{marker}{THUMBNAIL_TRANSFORM}/{tail}"
