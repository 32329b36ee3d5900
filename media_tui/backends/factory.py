"""Build the storage, catalogue and change feed the settings ask for."""

from __future__ import annotations

from dataclasses import dataclass

from media_tui.backends.base import Catalog, ChangeFeed, Storage
from media_tui.config import Settings
from media_tui.errors import ConfigError


@dataclass(slots=True)
class Backends:
    """The open backends of one process; `aclose()` releases them all."""

    settings: Settings
    storage: Storage
    catalog: Catalog

    def change_feed(self) -> ChangeFeed:
        """A new feed of the catalogue's changes (one per subscriber)."""
        from media_tui.backends.local import LocalCatalog, LocalChangeFeed
        from media_tui.backends.supabase_catalog import SupabaseCatalog
        from media_tui.backends.supabase_feed import SupabaseChangeFeed

        if isinstance(self.catalog, LocalCatalog):
            return LocalChangeFeed(self.catalog)
        if isinstance(self.catalog, SupabaseCatalog):
            return SupabaseChangeFeed(self.catalog)
        raise ConfigError(
            f"no change feed for the {self.catalog.name} catalogue yet; use --catalog local."
        )

    async def aclose(self) -> None:
        await self.storage.aclose()
        await self.catalog.aclose()


def open_backends(settings: Settings) -> Backends:
    """Open the configured storage and catalogue (clients connect on first use)."""
    from media_tui.backends.local import LocalCatalog, LocalStorage

    storage: Storage
    if settings.storage == "cloudinary" and settings.cloudinary is not None:
        from media_tui.backends.cloudinary import CloudinaryStorage

        storage = CloudinaryStorage(
            settings.cloudinary,
            concurrency=settings.concurrency,
            chunk_threshold=settings.chunk_threshold,
        )
    else:
        storage = LocalStorage(settings.library)
    catalog: Catalog
    if settings.catalog == "supabase" and settings.supabase is not None:
        from media_tui.backends.supabase_catalog import SupabaseCatalog

        catalog = SupabaseCatalog(settings.supabase)
    else:
        catalog = LocalCatalog(settings.library)
    return Backends(settings=settings, storage=storage, catalog=catalog)
