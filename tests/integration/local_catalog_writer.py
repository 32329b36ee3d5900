"""Write to a local library's catalogue from a separate process (for cross-process tests).

Usage: python local_catalog_writer.py LIBRARY_DIR PUBLIC_ID upsert|delete

After committing it prints the wall-clock time of the commit (time.time()) on stdout, so a
test or a measurement can see how long the other process's feed took to notice.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from media_tui.backends.local import LocalCatalog
from media_tui.model import MediaAsset


async def write(library: Path, public_id: str, action: str) -> None:
    catalog = LocalCatalog(library)
    try:
        if action == "delete":
            await catalog.delete(public_id)
        else:
            await catalog.upsert(MediaAsset(public_id=public_id, folder="elsewhere", bytes=42))
        print(time.time(), flush=True)
    finally:
        await catalog.aclose()


if __name__ == "__main__":
    asyncio.run(write(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
