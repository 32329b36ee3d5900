"""Operations over the backends shared by the CLI, the TUI and sync: delete, read the catalogue."""

from __future__ import annotations

from collections.abc import AsyncIterator

from media_tui.backends.base import Catalog, Storage
from media_tui.errors import MediaError, PermanentError
from media_tui.model import MediaAsset
from media_tui.store import MediaStore
from media_tui.uploads import as_transfer_error


async def delete_asset(
    store: MediaStore, storage: Storage, catalog: Catalog, public_id: str
) -> MediaAsset:
    """Delete optimistically: hide it at once, remove bytes then row, restore it if either fails.

    Storage goes first so that a failure leaves the catalogue still describing stored bytes.
    Content-addressed bytes shared with another row (a local library can hold two rows with
    the same checksum) stay where they are.
    """
    asset = store.assets.get(public_id) or await catalog.get(public_id)
    if asset is None:
        raise PermanentError(
            f"there is no asset {public_id!r} in the catalogue; check the id with `media-tui ls`."
        )
    if public_id in store.assets:
        store.delete_requested(public_id)
    try:
        sharer = await catalog.find_by_checksum(asset.checksum) if asset.checksum else None
        if sharer is None or sharer.public_id == public_id:
            await storage.delete(asset)
        await catalog.delete(public_id)
    except Exception as exc:  # reported as one message, the store rolled back
        error = exc if isinstance(exc, MediaError) else as_transfer_error(exc)
        store.delete_failed(public_id, str(error))
        raise error from exc
    store.delete_succeeded(public_id)
    return asset


async def catalogue_rows(
    catalog: Catalog, *, folder: str | None = None, limit: int | None = None, page_size: int = 1000
) -> AsyncIterator[MediaAsset]:
    """The catalogue's rows newest first, a page at a time: all of them, or the first `limit`."""
    offset = 0
    while limit is None or offset < limit:
        size = page_size if limit is None else min(page_size, limit - offset)
        page = await catalog.page(offset=offset, limit=size, folder=folder)
        for asset in page.assets:
            yield asset
        offset += len(page.assets)
        if len(page.assets) < size:
            return
