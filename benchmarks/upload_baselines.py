"""The baselines of `benchmarks.upload_cpu`, each run as its own plain Python process.

    python -m benchmarks.upload_baselines copy DEST FILE...      # cp-like copy + sha256 + fsync
    python -m benchmarks.upload_baselines sdk UPLOAD_PREFIX FILE...  # Cloudinary SDK, sequential

Only the standard library is imported up front, so the copy baseline's process does the work and
little else: `shutil.copyfile` (what `cp` does: copy_file_range/sendfile in the kernel), the
sha256 that identifies the bytes (`hashlib.file_digest`), and an fsync so the copy is as durable
as media-tui's. The SDK baseline imports `cloudinary` and uploads each file with `upload_large`
(20 MB chunks, what the SDK and `cld` do above 20 MB) or `upload`, one after another.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

CLOUD, API_KEY, API_SECRET = "demo", "123456789012345", "bench-secret"
SDK_CHUNK = 20_000_000


def copy_and_hash(dest: Path, files: list[Path]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for src in files:
        target = dest / src.name
        shutil.copyfile(src, target)
        with open(src, "rb") as handle:
            hashlib.file_digest(handle, "sha256").hexdigest()
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sdk_upload(upload_prefix: str, files: list[Path]) -> None:
    import cloudinary
    import cloudinary.uploader

    cloudinary.config(
        cloud_name=CLOUD, api_key=API_KEY, api_secret=API_SECRET, upload_prefix=upload_prefix
    )
    for path in files:
        kind = "video" if path.suffix == ".mp4" else "image"
        if path.stat().st_size > SDK_CHUNK:
            cloudinary.uploader.upload_large(
                str(path), public_id=path.stem, resource_type=kind, chunk_size=SDK_CHUNK
            )
        else:
            cloudinary.uploader.upload(str(path), public_id=path.stem, resource_type=kind)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] not in ("copy", "sdk"):
        sys.stderr.write(__doc__ or "")
        return 2
    command, where, *names = argv
    files = [Path(name) for name in names]
    if command == "copy":
        copy_and_hash(Path(where), files)
    else:
        sdk_upload(where, files)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
