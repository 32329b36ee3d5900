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

        if isinstance(self.catalog, LocalCatalog):
            return LocalChangeFeed(self.catalog)
        raise ConfigError(
            f"no change feed for the {self.catalog.name} catalogue yet; use --catalog local."
        )

    async def aclose(self) -> None:
        await self.storage.aclose()
        await self.catalog.aclose()


def open_backends(settings: Settings) -> Backends:
    """Open the configured backends; one not built yet is a clear configuration error."""
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
    if settings.catalog != "local":
        raise ConfigError(
            f"the {settings.catalog} catalogue is not available in this version yet; use --catalog local."
        )
    return Backends(settings=settings, storage=storage, catalog=LocalCatalog(settings.library))
