"""How long `media-tui sync` takes to reconcile N assets that reached Cloudinary behind its back.

`python -m benchmarks.sync_catalogue [--assets 1000]` uploads N small images straight to the
Cloudinary emulator with the SDK (8 threads), then times the real `media-tui sync --json` on an
empty local catalogue (everything is added) and again (everything is unchanged). Both times
include starting the interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cloudinary
import cloudinary.uploader

from tests.emulators.cloudinary import CloudinaryEmulator
from tests.integration.media_factory import make_png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=1000)
    args = parser.parse_args()
    with CloudinaryEmulator() as emulator, tempfile.TemporaryDirectory() as tmp:
        cloudinary.config(
            cloud_name=emulator.cloud_name,
            api_key=emulator.api_key,
            api_secret=emulator.api_secret,
            upload_prefix=emulator.url,
        )
        picture = make_png(Path(tmp) / "p.png", seed=1)
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda i: cloudinary.uploader.upload(str(picture), public_id=f"bulk/{i:05d}"),
                    range(args.assets),
                )
            )
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CLOUDINARY_", "SUPABASE_", "MEDIA_TUI_"))
        }
        env |= {"CLOUDINARY_URL": emulator.cloudinary_url, "MEDIA_TUI_CONFIG": os.devnull}
        command = [sys.executable, "-m", "media_tui", "sync", "--json", "--library", f"{tmp}/lib"]
        for label in ("first sync (all added)", "second sync (all unchanged)"):
            started = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
            elapsed = time.perf_counter() - started
            summary = json.loads(result.stdout.splitlines()[-1])
            counts = {
                k: v
                for k, v in summary.items()
                if isinstance(v, int) and not isinstance(v, bool) and v
            }
            print(f"{label}: {elapsed:.2f} s  {counts}")


if __name__ == "__main__":
    main()
