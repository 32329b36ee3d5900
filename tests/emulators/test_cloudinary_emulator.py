"""The Cloudinary emulator, driven by the real `cloudinary` SDK and by hand-built httpx requests.

Each test checks one behaviour of `shared/reference/cloudinary.md` (cited as "ref §n"), so the
emulator stays as strict as Cloudinary itself (DESIGN.md §4).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import cloudinary
import cloudinary.api
import cloudinary.exceptions
import cloudinary.uploader
import cloudinary.utils
import httpx
import pytest
from PIL import Image

from tests.emulators.cloudinary import (
    MIN_CHUNK_BYTES,
    CloudinaryEmulator,
    hex_digest,
    sign_notification,
    sniff_media,
    string_to_sign,
)
from tests.emulators.webhook_receiver import ReceivedRequest, WebhookReceiver

# The keys of the ref §5 upload response that every image upload must carry.
UPLOAD_RESPONSE_KEYS = {
    "asset_id",
    "public_id",
    "version",
    "version_id",
    "signature",
    "width",
    "height",
    "format",
    "resource_type",
    "created_at",
    "tags",
    "pages",
    "bytes",
    "type",
    "etag",
    "placeholder",
    "url",
    "secure_url",
    "original_filename",
    "api_key",
}


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def png_bytes(width: int = 40, height: int = 30, colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def mp4_bytes(width: int = 320, height: int = 240, seconds: float = 2.5) -> bytes:
    """A minimal ISO-BMFF file: ftyp, moov (mvhd + one tkhd) and an mdat."""
    mvhd = struct.pack(">B3xIIII", 0, 0, 0, 1000, int(seconds * 1000)) + bytes(80)
    tkhd = (
        struct.pack(">B3xIIIII", 0, 0, 0, 1, 0, int(seconds * 1000))
        + bytes(8 + 2 + 2 + 2 + 2 + 36)
        + struct.pack(">II", width << 16, height << 16)
    )
    moov = _box(b"moov", _box(b"mvhd", mvhd) + _box(b"trak", _box(b"tkhd", tkhd)))
    return _box(b"ftyp", b"isom\x00\x00\x02\x00isommp41") + moov + _box(b"mdat", bytes(64))


def wav_bytes(seconds: float = 1.0, rate: int = 8000) -> bytes:
    samples = bytes(int(seconds * rate))
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate, 1, 8)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(samples))
    body = b"WAVE" + chunks + samples
    return b"RIFF" + struct.pack("<I", len(body)) + body


def signed_fields(
    emulator: CloudinaryEmulator,
    params: dict[str, str],
    *,
    timestamp: int | None = None,
    signature_version: int = 2,
) -> dict[str, str]:
    """Sign like the SDK does (its own `api_sign_request`), for requests built by hand."""
    fields = {**params, "timestamp": str(timestamp if timestamp is not None else int(time.time()))}
    fields["signature"] = cloudinary.utils.api_sign_request(
        fields, emulator.api_secret, signature_version=signature_version
    )
    fields["api_key"] = emulator.api_key
    return fields


def api_url(emulator: CloudinaryEmulator, path: str) -> str:
    return f"{emulator.url}/v1_1/{emulator.cloud_name}/{path}"


def post_chunk(
    client: httpx.Client,
    emulator: CloudinaryEmulator,
    data: bytes,
    content_range: str,
    upload_id: str,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    return client.post(
        api_url(emulator, "raw/upload"),
        data=signed_fields(emulator, params or {}),
        files={"file": ("big.bin", data, "application/octet-stream")},
        headers={"Content-Range": content_range, "X-Unique-Upload-Id": upload_id},
    )


def assert_error(response: httpx.Response, status: int, message_start: str) -> None:
    """ref §6: every failure is JSON `{"error": {"message": ...}}` with the right status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["message"].startswith(message_start), response.text


@pytest.fixture
def sdk(
    cloudinary_emulator: CloudinaryEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[CloudinaryEmulator]:
    """The real SDK configured against a fresh emulator; the global config is reset around it."""
    for name in list(os.environ):
        if name.startswith("CLOUDINARY_"):
            monkeypatch.delenv(name)
    cloudinary.reset_config()
    configure_sdk(cloudinary_emulator)
    yield cloudinary_emulator
    cloudinary.reset_config()


def configure_sdk(emulator: CloudinaryEmulator, **overrides: Any) -> None:
    settings: dict[str, Any] = {
        "cloud_name": emulator.cloud_name,
        "api_key": emulator.api_key,
        "api_secret": emulator.api_secret,
        "upload_prefix": emulator.url,
        "signature_algorithm": "sha1",
    }
    cloudinary.config(**(settings | overrides))


# --------------------------------------------------------------------------------------------
# Upload (ref §2, §5)
# --------------------------------------------------------------------------------------------


def test_upload_returns_the_reference_response_and_stores_identical_bytes(
    sdk: CloudinaryEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(png_bytes(40, 30))

    result = cloudinary.uploader.upload(
        str(path),
        public_id="cat",
        folder="media/2026",
        tags=["pets", "cute"],
        context={"alt": "a cat"},
    )

    assert result.keys() >= UPLOAD_RESPONSE_KEYS
    assert result["public_id"] == "media/2026/cat"  # fixed folder mode prefixes the folder
    assert (result["width"], result["height"], result["format"]) == (40, 30, "png")
    assert result["resource_type"] == "image" and result["type"] == "upload"
    assert result["tags"] == ["pets", "cute"]
    assert result["context"] == {"custom": {"alt": "a cat"}}
    assert result["folder"] == "media/2026"
    assert result["original_filename"] == "cat"
    assert result["bytes"] == path.stat().st_size
    assert result["etag"] == hashlib.md5(path.read_bytes()).hexdigest()
    assert isinstance(result["version"], int)
    assert len(result["asset_id"]) == len(result["version_id"]) == 32
    assert result["created_at"].endswith("Z")
    assert result["secure_url"] == (
        f"{sdk.url}/demo/image/upload/v{result['version']}/media/2026/cat.png"
    )
    assert cloudinary.utils.verify_api_response_signature(
        result["public_id"], result["version"], result["signature"]
    )
    assert result["request_id"]  # the SDK copies our X-Request-Id header (ref §5)
    assert sdk.asset("media/2026/cat").data == path.read_bytes()
    assert sdk.upload_count == 1


def test_generated_and_filename_based_public_ids(sdk: CloudinaryEmulator, tmp_path: Path) -> None:
    path = tmp_path / "holiday photo.png"
    path.write_bytes(png_bytes())

    generated = cloudinary.uploader.upload(str(path))
    unique = cloudinary.uploader.upload(str(path), use_filename=True)
    exact = cloudinary.uploader.upload(str(path), use_filename=True, unique_filename=False)

    assert len(generated["public_id"]) == 20 and generated["public_id"].isalnum()
    assert unique["public_id"].startswith("holiday photo_") and len(unique["public_id"]) == 20
    assert exact["public_id"] == "holiday photo"


def test_overwrite_false_returns_the_existing_asset(sdk: CloudinaryEmulator) -> None:
    first = cloudinary.uploader.upload(png_bytes(colour="red"), public_id="dup")

    again = cloudinary.uploader.upload(png_bytes(colour="blue"), public_id="dup", overwrite=False)

    assert again["existing"] is True
    assert again["version"] == first["version"] and again["etag"] == first["etag"]
    assert sdk.asset("dup").data == png_bytes(colour="red")
    assert sdk.upload_count == 1


def test_overwrite_replaces_the_bytes_with_a_new_version(sdk: CloudinaryEmulator) -> None:
    first = cloudinary.uploader.upload(png_bytes(colour="red"), public_id="pic")

    second = cloudinary.uploader.upload(png_bytes(colour="blue"), public_id="pic")

    assert second["overwritten"] is True
    assert second["version"] > first["version"]
    assert second["asset_id"] == first["asset_id"]
    assert sdk.asset("pic").data == png_bytes(colour="blue")


def test_auto_detects_image_video_audio_and_raw(sdk: CloudinaryEmulator) -> None:
    image = cloudinary.uploader.upload(png_bytes(), resource_type="auto")
    video = cloudinary.uploader.upload(mp4_bytes(320, 240, 2.5), resource_type="auto")
    audio = cloudinary.uploader.upload(wav_bytes(1.0), resource_type="auto")
    raw = cloudinary.uploader.upload(b"just some notes", resource_type="auto")

    assert (image["resource_type"], image["format"]) == ("image", "png")
    assert (video["resource_type"], video["format"]) == ("video", "mp4")
    assert (video["width"], video["height"], video["duration"]) == (320, 240, 2.5)
    assert (audio["resource_type"], audio["format"], audio["is_audio"]) == ("video", "wav", True)
    assert audio["duration"] == 1.0
    assert raw["resource_type"] == "raw" and "format" not in raw  # raw assets have no format


def test_typed_endpoints_refuse_bytes_of_another_kind(sdk: CloudinaryEmulator) -> None:
    with pytest.raises(cloudinary.exceptions.BadRequest, match="Invalid image file"):
        cloudinary.uploader.upload(b"not an image", resource_type="image")
    with pytest.raises(cloudinary.exceptions.BadRequest, match="Unsupported video format"):
        cloudinary.uploader.upload(png_bytes(), resource_type="video")
    assert sdk.assets == {}


def test_raw_upload_keeps_the_extension_in_the_public_id(
    sdk: CloudinaryEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello")

    result = cloudinary.uploader.upload(
        str(path), resource_type="raw", use_filename=True, unique_filename=False
    )

    assert result["public_id"] == "notes.txt"
    assert result["secure_url"].endswith(f"/raw/upload/v{result['version']}/notes.txt")


def test_dynamic_folder_mode_records_asset_folder() -> None:
    with CloudinaryEmulator(folder_mode="dynamic") as emulator:
        response = httpx.post(
            api_url(emulator, "image/upload"),
            data=signed_fields(emulator, {"public_id": "cat", "folder": "media"}),
            files={"file": ("cat.png", png_bytes())},
        )
    result = response.json()
    assert result["public_id"] == "cat"
    assert (result["asset_folder"], result["display_name"]) == ("media", "cat")
    assert "folder" not in result


def test_missing_file_and_empty_values(sdk: CloudinaryEmulator) -> None:
    response = httpx.post(api_url(sdk, "image/upload"), data=signed_fields(sdk, {"public_id": "x"}))
    assert_error(response, 400, "Missing required parameter - file")

    # ref §3.1 rule 2: an empty value is sent but not signed.
    fields = signed_fields(sdk, {"public_id": "x"}) | {"tags": ""}
    response = httpx.post(
        api_url(sdk, "image/upload"), data=fields, files={"file": ("x.png", png_bytes())}
    )
    assert response.status_code == 200, response.text


def test_data_uri_upload(sdk: CloudinaryEmulator) -> None:
    import base64

    uri = "data:image/png;base64," + base64.b64encode(png_bytes(12, 8)).decode()

    result = cloudinary.uploader.upload(uri, public_id="inline")

    assert (result["width"], result["height"]) == (12, 8)
    assert sdk.asset("inline").data == png_bytes(12, 8)


def test_request_over_the_size_cap_gets_413() -> None:
    with CloudinaryEmulator(max_request_bytes=10_000) as emulator:
        response = httpx.post(
            api_url(emulator, "raw/upload"),
            data=signed_fields(emulator, {}),
            files={"file": ("big.bin", bytes(20_000))},
        )
        assert_error(response, 413, "File size too large")
        assert emulator.assets == {}


def test_plan_file_size_limit_gets_400() -> None:
    with CloudinaryEmulator(max_file_bytes=100) as emulator:
        response = httpx.post(
            api_url(emulator, "raw/upload"),
            data=signed_fields(emulator, {}),
            files={"file": ("big.bin", bytes(101))},
        )
    assert_error(response, 400, "File size too large. Got 101. Maximum is 100.")


# --------------------------------------------------------------------------------------------
# Chunked upload (ref §4)
# --------------------------------------------------------------------------------------------


def test_upload_large_arrives_byte_identical_through_several_chunks(
    sdk: CloudinaryEmulator, tmp_path: Path
) -> None:
    data = os.urandom(12_000_000)
    path = tmp_path / "big.bin"
    path.write_bytes(data)

    result = cloudinary.uploader.upload_large(str(path), chunk_size=MIN_CHUNK_BYTES, tags="big")

    assert result["resource_type"] == "raw"  # upload_large's default type (ref §4)
    assert result["bytes"] == len(data) and result["tags"] == ["big"]
    assert sdk.chunk_count == 3  # 5 MiB + 5 MiB + 1,514,240 bytes (ref §4 worked example)
    assert sdk.upload_count == 1
    assert sdk.asset(result["public_id"], "raw").data == data
    assert sdk.requests == [("POST", "/v1_1/demo/raw/upload", 200)] * 3


def test_non_final_chunk_under_5_mib_is_refused(sdk: CloudinaryEmulator) -> None:
    with httpx.Client() as client:
        response = post_chunk(client, sdk, bytes(1000), "bytes 0-999/5000", "smallchunkupload")
    assert_error(response, 400, "All parts except EOF-chunk must be larger than 5mb")
    # one byte short of 5 MiB is still too small: the minimum is 5,242,880, not 5,000,000
    with httpx.Client() as client:
        short = MIN_CHUNK_BYTES - 1
        response = post_chunk(
            client, sdk, bytes(short), f"bytes 0-{short - 1}/9999999", "shortchunkupload"
        )
    assert_error(response, 400, "All parts except EOF-chunk must be larger than 5mb")


def test_retried_chunks_are_idempotent(sdk: CloudinaryEmulator) -> None:
    first, last = os.urandom(MIN_CHUNK_BYTES), os.urandom(1234)
    total = len(first) + len(last)
    first_range = f"bytes 0-{len(first) - 1}/{total}"
    last_range = f"bytes {len(first)}-{total - 1}/{total}"
    with httpx.Client() as client:
        partial = post_chunk(client, sdk, first, first_range, "retryupload00001").json()
        again = post_chunk(client, sdk, first, first_range, "retryupload00001").json()
        public_id = partial["public_id"]
        done = post_chunk(
            client, sdk, last, last_range, "retryupload00001", {"public_id": public_id}
        )
        # the final answer was "lost": the client sends the last chunk once more
        replay = post_chunk(
            client, sdk, last, last_range, "retryupload00001", {"public_id": public_id}
        )

    assert partial == {
        "done": False,
        "bytes": len(first),
        "kind": "upload",
        "resource_type": "raw",
        "public_id": public_id,
    }
    assert again["bytes"] == len(first)  # not doubled
    assert done.json()["bytes"] == total and replay.json() == done.json()
    assert sdk.asset(public_id, "raw").data == first + last
    assert sdk.upload_count == 1


def test_node_style_unknown_total_and_overlap_errors(sdk: CloudinaryEmulator) -> None:
    first, last = os.urandom(MIN_CHUNK_BYTES), b"tail"
    total = len(first) + len(last)
    with httpx.Client() as client:
        # the Node SDK sends `/-1` until the last chunk (ref §4)
        partial = post_chunk(client, sdk, first, f"bytes 0-{len(first) - 1}/-1", "nodestyleupload1")
        tail_start = len(first) - 2  # a final chunk that overlaps the first by two bytes
        overlap = post_chunk(
            client, sdk, b"xx" + last, f"bytes {tail_start}-{total - 1}/{total}", "nodestyleupload1"
        )
        bad_range = post_chunk(client, sdk, last, "bytes 9-2/10", "nodestyleupload1")
        done = post_chunk(
            client, sdk, last, f"bytes {len(first)}-{total - 1}/{total}", "nodestyleupload1"
        )

    assert partial.json()["done"] is False
    assert_error(overlap, 400, f"Chunk bytes {len(first) - 2}-{total - 1} overlaps")
    assert_error(bad_range, 400, "Invalid Content-Range header")
    assert done.status_code == 200 and done.json()["bytes"] == total
    assert sdk.asset(done.json()["public_id"], "raw").data == first + last


def test_every_chunk_is_signature_checked(sdk: CloudinaryEmulator) -> None:
    first = bytes(MIN_CHUNK_BYTES)
    fields = signed_fields(sdk, {}) | {"signature": "0" * 40}
    response = httpx.post(
        api_url(sdk, "raw/upload"),
        data=fields,
        files={"file": ("big.bin", first)},
        headers={
            "Content-Range": f"bytes 0-{len(first) - 1}/{len(first) + 1}",
            "X-Unique-Upload-Id": "u1",
        },
    )
    assert_error(response, 401, "Invalid Signature")
    assert sdk.chunk_count == 0


# --------------------------------------------------------------------------------------------
# Signing and authentication (ref §3)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "secret", "algorithm", "digest"),
    [
        (
            {
                "public_id": "a&b",
                "folder": "f",
                "overwrite": "0",
                "timestamp": "1795550365",
                "tags": "x,y",
                "context": "alt=c",
            },
            "abcdsecret",
            "sha1",
            "b8bb2a1385e7616b8b47d9b67af293bddf885c38",
        ),
        (
            {
                "folder": "media/2026",
                "tags": "cat,dog",
                "overwrite": "1",
                "use_filename": "1",
                "timestamp": "1700000000",
            },
            "test-secret",
            "sha256",
            "20e0c9d16f83ed63533c9f1e28105489bf844a35c42162fe852cd88cbf50f162",
        ),
        (
            {
                "invalidate": "1",
                "public_id": "a/b",
                "timestamp": "1795550365",
                "api_key": "123",
                "file": "x",
            },
            "abcdsecret",
            "sha1",
            "ccf51a71505a78d57ee9c9af7e7515e6b6203c00",
        ),
    ],
)
def test_signing_matches_the_reference_worked_examples(
    fields: dict[str, str], secret: str, algorithm: str, digest: str
) -> None:
    assert hex_digest(string_to_sign(fields) + secret, algorithm) == digest


def test_wrong_secret_is_an_invalid_signature(sdk: CloudinaryEmulator) -> None:
    configure_sdk(sdk, api_secret="not-the-secret")

    with pytest.raises(cloudinary.exceptions.AuthorizationRequired) as caught:
        cloudinary.uploader.upload(png_bytes(), public_id="x", tags=["a"])

    message = str(caught.value)
    assert message.startswith("Invalid Signature ")
    assert "String to sign - 'public_id=x&tags=a&timestamp=" in message and message.endswith("'.")
    assert sdk.assets == {}


def test_unknown_api_key_is_refused(sdk: CloudinaryEmulator) -> None:
    configure_sdk(sdk, api_key="999")
    with pytest.raises(cloudinary.exceptions.AuthorizationRequired, match="Unknown API key 999"):
        cloudinary.uploader.upload(png_bytes())


def test_timestamp_window_is_one_hour(sdk: CloudinaryEmulator) -> None:
    files = {"file": ("x.png", png_bytes())}
    old = int(time.time()) - 2 * 3600
    stale = httpx.post(
        api_url(sdk, "image/upload"), data=signed_fields(sdk, {}, timestamp=old), files=files
    )
    recent = int(time.time()) - 59 * 60
    fresh = httpx.post(
        api_url(sdk, "image/upload"), data=signed_fields(sdk, {}, timestamp=recent), files=files
    )
    unstamped = signed_fields(sdk, {})
    del unstamped["timestamp"]
    missing = httpx.post(api_url(sdk, "image/upload"), data=unstamped, files=files)

    assert_error(stale, 401, "Stale request - reported time is ")
    assert stale.json()["error"]["message"].endswith("+0000 which is more than 1 hour ago")
    assert fresh.status_code == 200
    assert_error(missing, 400, "Missing required parameter - timestamp")


def test_ampersand_needs_the_v2_escape(sdk: CloudinaryEmulator) -> None:
    result = cloudinary.uploader.upload(png_bytes(), public_id="tom&jerry")
    assert result["public_id"] == "tom&jerry"

    v1 = signed_fields(sdk, {"public_id": "a&b"}, signature_version=1)
    response = httpx.post(
        api_url(sdk, "image/upload"), data=v1, files={"file": ("x.png", png_bytes())}
    )
    assert_error(response, 401, "Invalid Signature")
    assert "public_id=a%26b" in response.json()["error"]["message"]


def test_sha256_signatures(sdk: CloudinaryEmulator) -> None:
    configure_sdk(sdk, signature_algorithm="sha256")
    assert cloudinary.uploader.upload(png_bytes(), public_id="s256")["public_id"] == "s256"

    with CloudinaryEmulator(enforce_sha256=True) as strict:
        configure_sdk(strict, signature_algorithm="sha1")
        with pytest.raises(cloudinary.exceptions.AuthorizationRequired, match="Invalid Signature"):
            cloudinary.uploader.upload(png_bytes())
        configure_sdk(strict, signature_algorithm="sha256")
        assert cloudinary.uploader.upload(png_bytes(), public_id="ok")["public_id"] == "ok"


def test_basic_auth_uploads_need_no_signature(sdk: CloudinaryEmulator) -> None:
    files = {"file": ("x.png", png_bytes())}
    good = httpx.post(
        api_url(sdk, "image/upload"),
        data={"public_id": "b"},
        files=files,
        auth=(sdk.api_key, sdk.api_secret),
    )
    bad = httpx.post(
        api_url(sdk, "image/upload"),
        data={"public_id": "c"},
        files=files,
        auth=(sdk.api_key, "nope"),
    )

    assert good.status_code == 200 and good.json()["public_id"] == "b"
    assert_error(bad, 401, "Invalid credentials")


def test_unsigned_uploads_need_a_whitelisted_preset(sdk: CloudinaryEmulator) -> None:
    sdk.unsigned_presets["open"] = {"folder": "inbox", "tags": "unsigned"}

    result = cloudinary.uploader.unsigned_upload(png_bytes(), "open", public_id="u")
    with pytest.raises(cloudinary.exceptions.BadRequest, match="must be whitelisted"):
        cloudinary.uploader.unsigned_upload(png_bytes(), "closed")
    bare = httpx.post(
        api_url(sdk, "image/upload"),
        data={"timestamp": "1"},
        files={"file": ("x.png", png_bytes())},
    )

    assert result["public_id"] == "inbox/u" and result["tags"] == ["unsigned"]
    assert_error(bare, 400, "Upload preset must be specified when using unsigned upload")


def test_unknown_cloud_and_unknown_route(sdk: CloudinaryEmulator) -> None:
    other = httpx.post(f"{sdk.url}/v1_1/elsewhere/image/upload", data={})
    unknown = httpx.post(api_url(sdk, "image/explode"), data={})

    assert_error(other, 401, "Invalid cloud_name elsewhere")
    assert_error(unknown, 404, "Unknown API endpoint")


# --------------------------------------------------------------------------------------------
# Destroy, rename, Admin API (ref §7)
# --------------------------------------------------------------------------------------------


def test_destroy_then_not_found(sdk: CloudinaryEmulator) -> None:
    cloudinary.uploader.upload(png_bytes(), public_id="gone/soon")

    assert cloudinary.uploader.destroy("gone/soon", invalidate=True)["result"] == "ok"
    assert cloudinary.uploader.destroy("gone/soon")["result"] == "not found"
    assert sdk.assets == {} and sdk.destroy_count == 1
    assert [n["notification_type"] for n in sdk.notifications] == ["upload", "delete"]


def test_rename(sdk: CloudinaryEmulator) -> None:
    cloudinary.uploader.upload(png_bytes(), public_id="old")
    cloudinary.uploader.upload(png_bytes(), public_id="taken")

    renamed = cloudinary.uploader.rename("old", "new")
    with pytest.raises(cloudinary.exceptions.BadRequest, match="already exists"):
        cloudinary.uploader.rename("new", "taken")
    with pytest.raises(cloudinary.exceptions.NotFound):
        cloudinary.uploader.rename("old", "other")

    assert renamed["public_id"] == "new"
    assert ("image", "upload", "new") in sdk.assets and ("image", "upload", "old") not in sdk.assets


def test_admin_resources_page_with_next_cursor(sdk: CloudinaryEmulator) -> None:
    for index in range(5):
        cloudinary.uploader.upload(png_bytes(), public_id=f"p/{index}", tags=[f"t{index}"])
    cloudinary.uploader.upload(png_bytes(), public_id="q/other")

    pages: list[list[str]] = []
    cursor = None
    while True:
        page = cloudinary.api.resources(
            type="upload", prefix="p/", max_results=2, next_cursor=cursor, tags=True
        )
        pages.append([r["public_id"] for r in page["resources"]])
        cursor = page.get("next_cursor")
        if cursor is None:
            break

    assert pages == [["p/4", "p/3"], ["p/2", "p/1"], ["p/0"]]  # newest first (direction desc)
    assert page["resources"][0]["tags"] == ["t0"]
    assert page.rate_limit_allowed == 2000 and page.rate_limit_remaining == 1997
    assert len(cloudinary.api.resources()["resources"]) == 6


def test_admin_tags_only_when_asked_and_bad_max_results(sdk: CloudinaryEmulator) -> None:
    cloudinary.uploader.upload(png_bytes(), public_id="t", tags=["x"])

    assert "tags" not in cloudinary.api.resources()["resources"][0]
    with pytest.raises(cloudinary.exceptions.BadRequest, match="max_results"):
        cloudinary.api.resources(max_results=501)


def test_admin_single_resource_and_bulk_delete(sdk: CloudinaryEmulator) -> None:
    cloudinary.uploader.upload(png_bytes(), public_id="one", tags=["x"])
    cloudinary.uploader.upload(png_bytes(), public_id="two")

    one = cloudinary.api.resource("one")
    with pytest.raises(cloudinary.exceptions.NotFound, match="Resource not found - nope"):
        cloudinary.api.resource("nope")
    deleted = cloudinary.api.delete_resources(["one", "two", "three"])

    assert one["public_id"] == "one" and one["tags"] == ["x"]
    assert deleted["deleted"] == {"one": "deleted", "two": "deleted", "three": "not_found"}
    assert deleted["partial"] is False
    assert sdk.assets == {}


def test_admin_wrong_secret_is_401(sdk: CloudinaryEmulator) -> None:
    configure_sdk(sdk, api_secret="wrong")
    with pytest.raises(
        cloudinary.exceptions.AuthorizationRequired, match="Error 401 - Invalid credentials"
    ):
        cloudinary.api.resources()
    configure_sdk(sdk)
    assert cloudinary.api.ping()["status"] == "ok"


def test_admin_rate_limit_exhausted_gets_420() -> None:
    with CloudinaryEmulator(admin_rate_limit=1) as emulator:
        auth = (emulator.api_key, emulator.api_secret)
        first = httpx.get(api_url(emulator, "ping"), auth=auth)
        second = httpx.get(api_url(emulator, "ping"), auth=auth)
    assert first.headers["X-FeatureRateLimit-Remaining"] == "0"
    assert first.headers["X-FeatureRateLimit-Reset"].endswith("GMT")
    assert_error(second, 420, "Rate Limit Exceeded")


# --------------------------------------------------------------------------------------------
# Webhook notifications (ref §8, §11.6)
# --------------------------------------------------------------------------------------------

# ref §8 worked example (SDK test `test_verify_notification_signature`, recomputed).
REFERENCE_NOTIFICATION_BODY = (
    '{"notification_type":"eager","eager":[{"transformation":"sp_full_hd/mp4","bytes":1055,'
    '"url":"http://res.cloudinary.com/demo/video/upload/sp_full_hd/v1533125278/dog.mp4",'
    '"secure_url":"https://res.cloudinary.com/demo/video/upload/sp_full_hd/v1533125278/dog.mp4"}],'
    '"public_id":"dog","batch_id":"9b11fa058c61fa577f4ec516bf6ee756ac2aefef095af99aef1302142cc1694a"}'
)

# The asset fields of the real upload notification in ref §8 (besides type/timestamp/request_id).
UPLOAD_NOTIFICATION_KEYS = {
    "asset_id",
    "public_id",
    "version",
    "version_id",
    "width",
    "height",
    "format",
    "resource_type",
    "created_at",
    "tags",
    "bytes",
    "type",
    "etag",
    "placeholder",
    "url",
    "secure_url",
    "access_mode",
    "original_filename",
}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


def verifies(received: ReceivedRequest, algorithm: str | None = None) -> bool:
    """The real SDK's check, on the raw body and the header timestamp string (ref §8)."""
    return bool(
        cloudinary.utils.verify_notification_signature(
            received.body,
            received.headers["x-cld-timestamp"],
            received.headers["x-cld-signature"],
            valid_for=7200,
            algorithm=algorithm,
        )
    )


def test_upload_notification_is_signed_compact_json(
    sdk: CloudinaryEmulator, receiver: WebhookReceiver
) -> None:
    result = cloudinary.uploader.upload(
        png_bytes(40, 30),
        public_id="hooked",
        tags=["pets"],
        context={"alt": "a cat"},
        notification_url=receiver.url,
    )

    assert sdk.wait_for_deliveries(1) and receiver.wait_for_requests(1)
    received = receiver.requests[0]
    assert received.path == "/hooks/cloudinary"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["x-cld-timestamp"].isdigit()  # integer seconds, not 1549533514.0
    assert verifies(received)
    tampered = received.body.replace('"hooked"', '"h00ked"')
    assert tampered != received.body
    assert not verifies(ReceivedRequest(received.path, received.headers, tampered))

    payload = received.json()
    assert received.body == json.dumps(payload, separators=(",", ":"))  # compact, as sent upstream
    assert list(payload)[:3] == ["notification_type", "timestamp", "request_id"]
    assert payload["notification_type"] == "upload" and payload["public_id"] == "hooked"
    assert payload.keys() >= UPLOAD_NOTIFICATION_KEYS
    assert "signature" not in payload and "api_key" not in payload  # response-only fields
    assert datetime.fromisoformat(payload["timestamp"]).utcoffset() == timedelta(0)
    assert payload["request_id"] == result["request_id"]  # the answer's X-Request-Id
    assert payload["tags"] == ["pets"] and payload["context"] == {"custom": {"alt": "a cat"}}
    for key in ("asset_id", "version", "bytes", "width", "height", "secure_url", "created_at"):
        assert payload[key] == result[key]

    delivery = sdk.deliveries[0]
    assert (delivery.url, delivery.body, delivery.statuses) == (receiver.url, received.body, [200])
    assert delivery.delivered and delivery.finished and delivery.payload == payload
    assert delivery.timestamp == received.headers["x-cld-timestamp"]
    assert delivery.signature == received.headers["x-cld-signature"]
    assert sdk.notifications == [payload]


def test_global_url_carries_upload_rename_and_delete_in_order(
    sdk: CloudinaryEmulator, receiver: WebhookReceiver
) -> None:
    sdk.notification_url = receiver.url

    uploaded = cloudinary.uploader.upload(png_bytes(), public_id="first")
    cloudinary.uploader.rename("first", "second")
    cloudinary.uploader.destroy("second")

    assert sdk.wait_for_deliveries(3) and receiver.wait_for_requests(3)
    assert all(verifies(received) for received in receiver.requests)
    upload, rename, delete = (received.json() for received in receiver.requests)
    assert upload["notification_type"] == "upload" and upload["public_id"] == "first"
    assert rename["notification_type"] == "rename"
    assert (rename["from_public_id"], rename["to_public_id"]) == ("first", "second")
    assert rename["public_id"] == "second" and rename["asset_id"] == uploaded["asset_id"]
    assert (rename["resource_type"], rename["type"]) == ("image", "upload")
    assert rename["version"] == uploaded["version"]
    assert "signature" not in rename and "api_key" not in rename
    assert delete == {
        "notification_type": "delete",
        "resources": [
            {
                "resource_type": "image",
                "type": "upload",
                "asset_id": uploaded["asset_id"],
                "public_id": "second",
                "version": uploaded["version"],
            }
        ],
    }
    assert [d.delivered for d in sdk.deliveries] == [True, True, True]


def test_a_calls_own_notification_url_wins_over_the_global_one(
    sdk: CloudinaryEmulator, receiver: WebhookReceiver
) -> None:
    with WebhookReceiver() as own:
        sdk.notification_url = receiver.url
        cloudinary.uploader.upload(png_bytes(), public_id="a", notification_url=own.url)
        cloudinary.uploader.destroy("a", notification_url=own.url)
        cloudinary.uploader.upload(png_bytes(), public_id="b")

        assert sdk.wait_for_deliveries(3)
        assert [r.json()["notification_type"] for r in own.requests] == ["upload", "delete"]
        assert [r.json()["public_id"] for r in receiver.requests] == ["b"]


def test_no_url_means_recorded_but_not_delivered(sdk: CloudinaryEmulator) -> None:
    cloudinary.uploader.upload(png_bytes(), public_id="quiet")
    cloudinary.uploader.destroy("quiet")

    assert [n["notification_type"] for n in sdk.notifications] == ["upload", "delete"]
    assert sdk.deliveries == [] and sdk.deliveries_finished == 0


def test_chunked_upload_notifies_once_after_the_last_chunk(
    sdk: CloudinaryEmulator, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(MIN_CHUNK_BYTES + 1000))

    result = cloudinary.uploader.upload_large(
        str(path), chunk_size=MIN_CHUNK_BYTES, notification_url=receiver.url
    )

    assert sdk.chunk_count == 2
    assert sdk.wait_for_deliveries(1) and receiver.wait_for_requests(1)
    payload = receiver.requests[0].json()
    assert payload["notification_type"] == "upload"
    assert (payload["public_id"], payload["bytes"]) == (result["public_id"], result["bytes"])
    assert len(sdk.deliveries) == 1


def test_sha256_notification_signature(sdk: CloudinaryEmulator, receiver: WebhookReceiver) -> None:
    sdk.notification_algorithm = "sha256"

    cloudinary.uploader.upload(png_bytes(), public_id="x", notification_url=receiver.url)

    assert receiver.wait_for_requests(1)
    received = receiver.requests[0]
    assert len(received.headers["x-cld-signature"]) == 64
    assert verifies(received, algorithm="sha256")
    assert not verifies(received, algorithm="sha1")


def test_notification_signature_matches_the_reference_worked_example(
    sdk: CloudinaryEmulator,
) -> None:
    secret, timestamp = "X7qLTrsES31MzxxkxPPA-pAGGfU", "1549533514"

    signature = sign_notification(REFERENCE_NOTIFICATION_BODY, timestamp, secret)

    assert signature == "dfe82de1d9083fe0b7ea68070649f9a15b8874da"
    # ref §8: a float timestamp string hashes differently.
    assert sign_notification(REFERENCE_NOTIFICATION_BODY, f"{timestamp}.0", secret) != signature
    configure_sdk(sdk, api_secret=secret)  # the `sdk` fixture resets the config afterwards
    assert cloudinary.utils.verify_notification_signature(
        REFERENCE_NOTIFICATION_BODY, timestamp, signature, valid_for=10**10
    )


def test_non_200_answers_are_retried_until_a_200(sdk: CloudinaryEmulator) -> None:
    sdk.notification_retry_delays = (0.01, 0.01, 0.01)
    with WebhookReceiver(statuses=[500, 500]) as receiver:
        cloudinary.uploader.upload(png_bytes(), public_id="x", notification_url=receiver.url)

        assert sdk.wait_for_deliveries(1)
        delivery = sdk.deliveries[0]
        assert delivery.statuses == [500, 500, 200] and delivery.delivered
        assert len(receiver.requests) == 3
        # Every attempt sends the same signed request.
        assert {(r.body, r.headers["x-cld-signature"]) for r in receiver.requests} == {
            (delivery.body, delivery.signature)
        }
        assert all(verifies(r) for r in receiver.requests)


def test_delivery_gives_up_after_three_retries(sdk: CloudinaryEmulator) -> None:
    sdk.notification_retry_delays = (0.01, 0.01, 0.01)
    with WebhookReceiver(default_status=500) as receiver:
        cloudinary.uploader.upload(png_bytes(), public_id="x", notification_url=receiver.url)

        assert sdk.wait_for_deliveries(1)
        delivery = sdk.deliveries[0]
        assert delivery.statuses == [500] * 4 and delivery.finished and not delivery.delivered
        assert len(receiver.requests) == 4


def test_a_closed_port_counts_as_connection_errors(sdk: CloudinaryEmulator) -> None:
    sdk.notification_retry_delays = (0.01, 0.01, 0.01)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    sdk.notification_url = f"http://127.0.0.1:{closed_port}/hook"

    result = cloudinary.uploader.upload(png_bytes(), public_id="x")

    assert result["public_id"] == "x"  # the upload itself is unaffected
    assert sdk.wait_for_deliveries(1)
    delivery = sdk.deliveries[0]
    assert delivery.statuses == [None] * 4 and not delivery.delivered


def test_a_slow_receiver_does_not_delay_the_api_answer(sdk: CloudinaryEmulator) -> None:
    release = threading.Event()
    with WebhookReceiver(hold=release) as receiver:
        sdk.notification_url = receiver.url

        first = cloudinary.uploader.upload(png_bytes(), public_id="first")
        assert receiver.wait_for_requests(1)  # the receiver holds it, unanswered
        second = cloudinary.uploader.upload(png_bytes(), public_id="second")

        # Both answers came while the first notification was still waiting for its answer.
        assert (first["public_id"], second["public_id"]) == ("first", "second")
        assert sdk.deliveries_finished == 0 and sdk.deliveries[0].statuses == []
        release.set()
        assert sdk.wait_for_deliveries(2)
        assert [r.json()["public_id"] for r in receiver.requests] == ["first", "second"]
        assert [d.delivered for d in sdk.deliveries] == [True, True]


def upload_by_hand(emulator: CloudinaryEmulator, public_id: str, **params: str) -> None:
    with httpx.Client() as client:
        response = client.post(
            api_url(emulator, "image/upload"),
            data=signed_fields(emulator, {"public_id": public_id, **params}),
            files={"file": ("x.png", png_bytes(), "image/png")},
        )
    assert response.status_code == 200, response.text


def test_stop_gives_up_a_waiting_retry_and_the_queue_behind_it() -> None:
    with (
        WebhookReceiver(default_status=500) as failing,
        WebhookReceiver() as later,
        CloudinaryEmulator() as emulator,
    ):
        emulator.notification_retry_delays = (3600.0,)  # a retry `stop` must not wait for
        upload_by_hand(emulator, "retrying", notification_url=failing.url)
        upload_by_hand(emulator, "queued", notification_url=later.url)
        assert emulator.wait_for_attempts(1)
        # The first delivery now waits an hour to retry; the second is queued behind it.

        emulator.stop()

        assert emulator.leaked_threads == [] and emulator.internal_errors == []
        assert emulator.wait_for_deliveries(2, timeout=0)
        assert [d.statuses for d in emulator.deliveries] == [[500], []]
        assert not any(d.delivered for d in emulator.deliveries)
        assert later.requests == []


def test_stop_cuts_an_attempt_held_by_the_receiver_short() -> None:
    with WebhookReceiver(hold=threading.Event()) as held, CloudinaryEmulator() as emulator:
        emulator.notification_url = held.url
        emulator.notification_timeout = 3600.0  # without the abort, `stop` would leak the thread
        upload_by_hand(emulator, "x")
        assert held.wait_for_requests(1)  # the receiver holds it, unanswered

        emulator.stop()

        assert emulator.leaked_threads == [] and emulator.internal_errors == []
        delivery = emulator.deliveries[0]
        assert delivery.finished and not delivery.delivered
        assert delivery.statuses == []  # cut short by `stop`, so not the receiver's answer


# --------------------------------------------------------------------------------------------
# Delivery
# --------------------------------------------------------------------------------------------


def test_delivery_serves_the_stored_bytes(sdk: CloudinaryEmulator) -> None:
    result = cloudinary.uploader.upload(png_bytes(), public_id="folder/id")

    response = httpx.get(result["secure_url"])

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content == png_bytes()
    assert (
        httpx.get(f"{sdk.url}/demo/image/upload/folder/id.png").content == png_bytes()
    )  # no version


def test_delivery_resizes_with_transformations(sdk: CloudinaryEmulator) -> None:
    result = cloudinary.uploader.upload(png_bytes(200, 100), public_id="wide")
    base = f"{sdk.url}/demo/image/upload"

    fill = httpx.get(f"{base}/c_fill,w_64,h_64/v{result['version']}/wide.png")
    limit = httpx.get(f"{base}/c_limit,w_256,h_256/wide.jpg")
    fit = httpx.get(f"{base}/c_fit,w_50,h_50/wide.webp")
    bad = httpx.get(f"{base}/c_fill,w_abc/wide.png")

    assert Image.open(io.BytesIO(fill.content)).size == (64, 64)
    assert Image.open(io.BytesIO(limit.content)).size == (200, 100)  # limit never enlarges
    assert limit.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(fit.content)).size == (50, 25)
    assert (
        bad.status_code == 400
        and bad.headers["x-cld-error"] == "Invalid width in transformation: abc"
    )


def test_delivery_video_poster_and_raw_and_404(sdk: CloudinaryEmulator) -> None:
    video = cloudinary.uploader.upload(mp4_bytes(320, 240), public_id="clip", resource_type="video")
    cloudinary.uploader.upload(b"plain", public_id="doc.txt", resource_type="raw")
    base = f"{sdk.url}/demo"

    poster = httpx.get(f"{base}/video/upload/so_auto,c_limit,w_160/v{video['version']}/clip.jpg")
    original = httpx.get(video["secure_url"])
    raw = httpx.get(f"{base}/raw/upload/doc.txt")
    missing = httpx.get(f"{base}/image/upload/v1/nothing.png")

    assert poster.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(poster.content)).size == (160, 120)
    assert (
        original.content == mp4_bytes(320, 240) and original.headers["content-type"] == "video/mp4"
    )
    assert raw.content == b"plain"
    assert missing.status_code == 404 and missing.headers["x-cld-error"].startswith(
        "Resource not found"
    )


# --------------------------------------------------------------------------------------------
# Fault switch
# --------------------------------------------------------------------------------------------


def test_failure_rate_answers_the_status_before_processing(sdk: CloudinaryEmulator) -> None:
    sdk.faults.failure_rate = 1.0
    sdk.faults.failure_status = 503

    with pytest.raises(cloudinary.exceptions.GeneralError, match="Service Unavailable"):
        cloudinary.uploader.upload(png_bytes(), public_id="never")

    assert sdk.assets == {} and sdk.upload_count == 0
    assert sdk.faults.failures_injected == 1
    assert sdk.requests[-1] == ("POST", "/v1_1/demo/image/upload", 503)


def test_drop_closes_the_connection_without_a_response(sdk: CloudinaryEmulator) -> None:
    sdk.faults.drop_rate = 1.0
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        httpx.post(
            api_url(sdk, "image/upload"),
            data=signed_fields(sdk, {}),
            files={"file": ("x.png", png_bytes())},
        )
    with pytest.raises(cloudinary.exceptions.Error):
        cloudinary.uploader.upload(png_bytes())

    assert sdk.faults.drops_injected == 2 and sdk.faults.injected == 2
    assert sdk.assets == {}
    assert sdk.requests[-1].status == 0


def test_scripted_faults_and_match_filter(sdk: CloudinaryEmulator) -> None:
    sdk.faults.match = r"^POST .*/upload$"
    sdk.faults.fail_next(2, status=429)

    assert cloudinary.api.ping()["status"] == "ok"  # not matched: no fault consumed
    with pytest.raises(cloudinary.exceptions.RateLimited):
        cloudinary.uploader.upload(png_bytes())
    with pytest.raises(cloudinary.exceptions.RateLimited):
        cloudinary.uploader.upload(png_bytes())
    assert cloudinary.uploader.upload(png_bytes(), public_id="third")["public_id"] == "third"
    assert sdk.faults.failures_injected == 2


def test_random_faults_are_reproducible_with_a_seed() -> None:
    def statuses(seed: int) -> list[int]:
        with CloudinaryEmulator(seed=seed) as emulator:
            emulator.faults.failure_rate = 0.5
            with httpx.Client() as client:
                return [
                    client.get(
                        api_url(emulator, "ping"), auth=(emulator.api_key, emulator.api_secret)
                    ).status_code
                    for _ in range(20)
                ]

    first, second = statuses(7), statuses(7)
    assert first == second
    assert set(first) == {200, 500}


def test_latency_and_bandwidth_slow_requests_down(sdk: CloudinaryEmulator) -> None:
    sdk.faults.latency = 0.2
    started = time.monotonic()
    httpx.get(api_url(sdk, "ping"), auth=(sdk.api_key, sdk.api_secret))
    assert time.monotonic() - started >= 0.19
    assert sdk.faults.delays_injected == 1

    sdk.faults.latency = 0.0
    sdk.faults.bandwidth = 1_000_000  # 1 MB/s: a 300 kB body takes at least ~0.3 s
    started = time.monotonic()
    response = httpx.post(
        api_url(sdk, "raw/upload"),
        data=signed_fields(sdk, {}),
        files={"file": ("x.bin", bytes(300_000))},
    )
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.25
    assert sdk.faults.throttled_requests == 1


# --------------------------------------------------------------------------------------------
# HTTP behaviour: keep-alive, Connection: close, chunked request bodies, lifecycle
# --------------------------------------------------------------------------------------------


def test_fifty_uploads_over_one_keep_alive_connection(sdk: CloudinaryEmulator) -> None:
    image = png_bytes()
    with httpx.Client() as client:
        for index in range(50):
            response = client.post(
                api_url(sdk, "image/upload"),
                data=signed_fields(sdk, {"public_id": f"k/{index}"}),
                files={"file": ("k.png", image)},
            )
            assert response.status_code == 200, response.text
    assert len(sdk.assets) == 50
    assert sdk.connections_accepted == 1


def test_connection_close_is_honoured(sdk: CloudinaryEmulator) -> None:
    auth = (sdk.api_key, sdk.api_secret)
    with httpx.Client() as client:
        first = client.get(api_url(sdk, "ping"), auth=auth, headers={"Connection": "close"})
        second = client.get(api_url(sdk, "ping"), auth=auth)
    assert first.headers["connection"] == "close"
    assert second.status_code == 200
    assert sdk.connections_accepted == 2


def test_chunked_transfer_encoding_request_body(sdk: CloudinaryEmulator) -> None:
    fields = signed_fields(sdk, {"public_id": "streamed"})
    request = httpx.Request(
        "POST", api_url(sdk, "image/upload"), data=fields, files={"file": ("s.png", png_bytes())}
    )
    body = request.read()

    def stream() -> Iterator[bytes]:
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    headers = {"Content-Type": request.headers["Content-Type"]}
    response = httpx.post(api_url(sdk, "image/upload"), content=stream(), headers=headers)

    assert response.status_code == 200, response.text
    assert sdk.asset("streamed").data == png_bytes()


def test_parallel_sdk_uploads(sdk: CloudinaryEmulator) -> None:
    errors: list[BaseException] = []

    def upload(index: int) -> None:
        try:
            cloudinary.uploader.upload(png_bytes(), public_id=f"par/{index}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == [] and len(sdk.assets) == 16


def test_stop_closes_idle_keep_alive_connections_and_the_port() -> None:
    emulator = CloudinaryEmulator().start()
    port = emulator.port
    client = httpx.Client()
    client.get(api_url(emulator, "ping"), auth=(emulator.api_key, emulator.api_secret))
    assert len(emulator.handler_threads) == 1  # the idle keep-alive connection

    emulator.stop()

    assert emulator.leaked_threads == [] and emulator.handler_threads == []
    assert not any(t.name.startswith(f"cloudinary-emulator-{port}") for t in threading.enumerate())
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", port), timeout=1),
    ):
        pass
    client.close()


def test_fixture_yields_a_running_emulator(cloudinary_emulator: CloudinaryEmulator) -> None:
    assert cloudinary_emulator.running
    assert cloudinary_emulator.cloudinary_url == (
        f"cloudinary://123456789012345:emulator-secret@demo?upload_prefix={cloudinary_emulator.url}"
    )


def test_sniffing_rejects_lookalikes() -> None:
    assert (
        sniff_media(b"\x00\x00\x01\xb3" + bytes(100)).resource_type == "raw"
    )  # MPEG-1, not an image
    assert sniff_media(b"%PDF-1.4 /Type /Page /Type /Pages").format == "pdf"
