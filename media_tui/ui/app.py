"""MediaApp: the TUI. It renders the MediaStore and turns keys into actions.

The App owns everything long-lived — the backends, the upload queue and its workers, the change
feed — so no widget ever calls a backend and nothing dies with a screen. Store changes are
merged and applied to the screen at most `FPS` times a second, however many uploads or remote
events arrive. Every background task runs with `exit_on_error=False`: a failure becomes a
message or a badge, never a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from media_tui.backends.base import ChangeFeed
from media_tui.backends.factory import Backends, open_backends
from media_tui.config import Settings, load_settings
from media_tui.consistency import INTERVAL as CONSISTENCY_INTERVAL
from media_tui.consistency import ConsistencyProbe
from media_tui.errors import MediaError
from media_tui.journal import Journal
from media_tui.model import ConnectionState, MediaAsset, utcnow
from media_tui.operations import delete_asset
from media_tui.paths import MediaFile
from media_tui.safe_text import safe_text
from media_tui.store import ChangeSet, MediaStore
from media_tui.sync import SyncProgress, reconcile
from media_tui.ui.detail import AssetDetail
from media_tui.ui.dialogs import ConfirmDialog, HelpScreen
from media_tui.ui.grid import AssetGrid
from media_tui.ui.header import TopBar
from media_tui.ui.library_view import LibraryView
from media_tui.ui.prompt import SafeInput, UploadPlan, UploadPrompt
from media_tui.ui.remote_thumbs import RemoteThumbnails
from media_tui.ui.sync_card import SyncStatus
from media_tui.ui.tasks import TasksScreen
from media_tui.ui.thumbs import ThumbnailCache
from media_tui.ui.upload_cards import UploadTray, summary_text
from media_tui.uploads import UploadQueue

log = logging.getLogger(__name__)

FPS = 30  # screen refreshes from store changes, at most
FEED_RETRY_DELAYS = (0.5, 1, 2, 5, 10, 30)


class MediaApp(App[int]):
    """The media manager. `MediaApp()` reads the same settings as the CLI."""

    CSS_PATH = "app.tcss"
    TITLE = "media-tui"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("u", "upload", "Upload"),
        Binding("y", "copy_url", "Copy URL"),
        Binding("o", "open_url", "Open", show=False),
        Binding("d", "delete", "Delete"),
        Binding("slash", "filter", "Filter"),
        Binding("s", "cycle_sort", "Sort"),
        Binding("w", "tasks", "Tasks"),
        Binding("p", "toggle_pause", "Pause", show=False),
        Binding("question_mark", "help", "Keys"),
        Binding("q", "quit", "Quit"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        backends_factory: Callable[[Settings], Backends] = open_backends,
        now: Callable[[], datetime] = utcnow,
        thumbnails: bool | None = None,
        consistency_interval: float = CONSISTENCY_INTERVAL,
    ) -> None:
        super().__init__()
        self.settings = settings if settings is not None else load_settings({})
        self.store = MediaStore()
        self.view = LibraryView(self.store)
        self.remote_thumbs = RemoteThumbnails(self.settings.library / "thumb-cache")
        self.thumbs = ThumbnailCache(enabled=thumbnails, fetch=self.remote_thumbs.fetch)
        self.now = now
        self.backends: Backends | None = None
        self.queue: UploadQueue | None = None
        self.ready = asyncio.Event()  # set once backends, queue and feed are up
        self._started = asyncio.Event()  # set once startup ended, well or not
        self._startup_error: str | None = None
        self._backends_factory = backends_factory
        self._consistency_interval = consistency_interval
        self.probe: ConsistencyProbe | None = None  # compares the store with the catalogue
        self._feed: ChangeFeed | None = None  # the feed being followed, for the probe's resyncs
        self._pending = ChangeSet()
        self._dirty = False
        self.sync_status: SyncStatus | None = None  # the latest "Sync now", while it shows
        self._unsubscribe = self.store.subscribe(self._on_store_change)

    # ----------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        yield TopBar(self.store, self.settings, now=self.now, id="topbar")
        yield SafeInput(
            placeholder="Filter: words, tag:x, type:video, folder:a/b — Enter keeps, Esc clears",
            id="filter",
        )
        yield AssetGrid(self.view, self.thumbs, id="grid")
        yield Static(id="status-line")
        yield Footer()
        yield UploadTray(
            self.store, now=self.now, sync_status=lambda: self.sync_status, id="upload-tray"
        )

    @property
    def grid(self) -> AssetGrid:
        return self.query_one("#grid", AssetGrid)

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.grid.set_loading(True)
        self.grid.focus()
        self.set_interval(1 / FPS, self._apply_store_changes)
        self.set_interval(1.0, self._tick)  # "since" badges and cards that linger after finishing
        self._start()

    # ----------------------------------------------------------- background

    @work(group="backends", exit_on_error=False)
    async def _start(self) -> None:
        try:
            self.backends = await asyncio.to_thread(self._backends_factory, self.settings)
            self.queue = UploadQueue(
                self.store,
                self.backends.storage,
                self.backends.catalog,
                Journal(self.settings.journal_dir),
                concurrency=self.settings.concurrency,
            )
            resumed = await self.queue.start()
        except MediaError as exc:
            self.queue = None  # half-started services must not be used
            self._startup_error = str(exc)
            self.grid.set_loading(False)
            self.store.connection_changed(ConnectionState.OFFLINE, str(exc))
            self.notify(
                safe_text(str(exc)), title="Cannot open the library", severity="error", markup=False
            )
            return
        finally:
            self._started.set()
        if resumed:
            self.notify(
                f"Resuming {len(resumed)} unfinished upload(s) from last time.", markup=False
            )
        self.probe = ConsistencyProbe(
            self.store,
            self.backends.catalog,
            self._request_resync,
            backlog=self._feed_backlog,
            interval=self._consistency_interval,
        )
        self._follow_feed()
        self._run_probe()
        self.ready.set()

    async def _services(self) -> tuple[Backends, UploadQueue] | None:
        """Wait for startup; None, after telling the operator why, if the library did not open."""
        await self._started.wait()
        if self.backends is None or self.queue is None:
            self.notify(
                safe_text(f"Not possible while the library is not open: {self._startup_error}"),
                severity="error",
                markup=False,
            )
            return None
        return self.backends, self.queue

    @work(group="feed", exit_on_error=False)
    async def _follow_feed(self) -> None:
        """Apply every catalogue change to the store; reconnect with backoff if the feed dies."""
        assert self.backends is not None
        failures = 0
        while True:
            self.store.connection_changed(
                ConnectionState.CONNECTING if failures == 0 else ConnectionState.RECONNECTING
            )
            self._feed = feed = self.backends.change_feed()
            try:
                async for event in feed.events():
                    self.store.apply(event)
                    if self.probe is not None:
                        self.probe.saw(event)
                    failures = 0
            except Exception as exc:  # the feed must never take the app down
                log.warning("change feed failed: %s", exc)
                self.store.connection_changed(ConnectionState.RECONNECTING, f"feed error: {exc}")
            finally:
                await feed.aclose()
            delay = FEED_RETRY_DELAYS[min(failures, len(FEED_RETRY_DELAYS) - 1)]
            failures += 1
            await asyncio.sleep(delay)

    @work(group="consistency", exit_on_error=False)
    async def _run_probe(self) -> None:
        """Heal drift between the grid and the catalogue (see `ConsistencyProbe`)."""
        if self.probe is not None:
            await self.probe.run()

    def _request_resync(self) -> None:
        if self._feed is not None:
            self._feed.request_resync()

    def _feed_backlog(self) -> int:
        return self._feed.backlog if self._feed is not None else 0

    async def on_unmount(self) -> None:
        self._unsubscribe()
        # Before the backends close: a round must not read a catalogue that is going away.
        if self.probe is not None:
            self.probe.stop()
        self.workers.cancel_group(self, "consistency")
        # Unfinished uploads stay in the journal and resume the next time media-tui starts.
        if self.queue is not None:
            await self.queue.aclose()
        if self.backends is not None:
            await self.backends.aclose()
        self.thumbs.close()
        self.remote_thumbs.close()

    # ------------------------------------------------------- store -> screen

    def _on_store_change(self, changes: ChangeSet) -> None:
        pending = self._pending
        pending.assets |= changes.assets
        pending.jobs |= changes.jobs
        pending.connection |= changes.connection
        pending.reset |= changes.reset
        self._dirty = True

    def _apply_store_changes(self) -> None:
        """Apply the merged changes since the last frame, in one repaint."""
        if not self._dirty:
            return
        changes, self._pending, self._dirty = self._pending, ChangeSet(), False
        # Like `_tick`: a remote event or a resync can land while the app shuts down, and the
        # frame timer then fires once more with the widgets already gone.
        with self.batch_update(), contextlib.suppress(NoMatches):
            if changes.reset or self.store.connection is ConnectionState.OFFLINE:
                self.grid.set_loading(False)
            if changes.assets or changes.reset:
                self.grid.apply_changes(changes)
            if changes.jobs or self._sync_running():
                self._refresh_tray()
                self._refresh_tasks_screen(changes.jobs)
            if changes.connection:
                self.query_one(TopBar).refresh_badges()
            self._refresh_status_line()

    def _sync_running(self) -> bool:
        return self.sync_status is not None and self.sync_status.running

    def _tick(self) -> None:
        # The timer can still fire while the app shuts down and its widgets are gone.
        with contextlib.suppress(NoMatches):
            self.query_one(TopBar).refresh_badges()
            self._refresh_tray()

    def _refresh_status_line(self) -> None:
        view = self.view
        text = Text(no_wrap=True, overflow="ellipsis")
        shown, total = len(view), view.total
        text.append(f"{total:,} assets" if shown == total else f"{shown:,} of {total:,} assets")
        text.append(
            f" · {view.sort.value} first"
            if view.sort.value == "newest"
            else f" · by {view.sort.value}"
        )
        if view.filter_text:
            text.append(" · filter: ")
            text.append(safe_text(view.filter_text), style="bold")
        uploads = summary_text(self.store, self.queue.paused if self.queue else False)
        if uploads:
            text.append("   ")
            text.append_text(uploads)
        self.query_one("#status-line", Static).update(text)

    def _refresh_tasks_screen(self, job_ids: set[str]) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, TasksScreen):
                screen.refresh_jobs(job_ids)

    # --------------------------------------------------------------- actions

    def selected_asset(self) -> MediaAsset | None:
        public_id = self.grid.cursor_public_id
        return self.store.assets.get(public_id) if public_id else None

    def action_upload(self, initial_text: str = "") -> None:
        self.push_screen(UploadPrompt(initial_text), callback=self._queue_plan)

    def on_paste(self, event: events.Paste) -> None:
        """Files dropped on the main screen arrive as a paste: open the prompt with them."""
        if (
            isinstance(self.screen, Screen)
            and self.screen is self.screen_stack[0]
            and event.text.strip()
        ):
            event.stop()
            self.action_upload(event.text)

    def _queue_plan(self, plan: UploadPlan | None) -> None:
        if plan is None or not plan.files:
            return
        self.enqueue(plan.files, folder=plan.folder, tags=plan.tags)

    @work(group="enqueue", exit_on_error=False)
    async def enqueue(
        self, files: Sequence[MediaFile], *, folder: str = "", tags: Iterable[str] = ()
    ) -> None:
        """Queue files for upload (the prompt's plan, or a test's). Waits for startup first."""
        services = await self._services()
        if services is None:
            return
        _, queue = services
        try:
            jobs = await queue.enqueue(files, folder=folder, tags=tags)
        except MediaError as exc:
            self.notify(safe_text(str(exc)), severity="error", markup=False)
            return
        if jobs:
            self.notify(f"Queued {len(jobs)} file(s).", markup=False, timeout=2)

    def on_asset_grid_activated(self, message: AssetGrid.Activated) -> None:
        asset = self.store.assets.get(message.public_id)
        if asset is not None:
            self.push_screen(AssetDetail(asset, self.thumbs))

    def action_copy_url(self) -> None:
        asset = self.selected_asset()
        if asset is None or not asset.url:
            self.bell()
            return
        # The clipboard escape sequence carries UTF-8: a lone surrogate in a remote URL (JSON
        # allows one as an escape) raised UnicodeEncodeError here and took the app down.
        self.copy_to_clipboard(asset.url.encode("utf-8", "replace").decode("utf-8"))
        self.notify(f"Copied {safe_text(asset.url)}", markup=False, timeout=3)

    def action_open_url(self) -> None:
        asset = self.selected_asset()
        if asset is None or not asset.url:
            self.bell()
            return
        self.open_url(asset.url)

    def action_delete(self) -> None:
        asset = self.selected_asset()
        if asset is None:
            self.bell()
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.delete(asset.public_id)

        question = Text.assemble("Delete ", (safe_text(asset.name), "bold"), "?")
        detail = "It is removed from storage and from the catalogue."
        self.push_screen(ConfirmDialog(question, detail), callback=confirmed)

    @work(group="delete", exit_on_error=False)
    async def delete(self, public_id: str) -> None:
        """Delete optimistically; the store restores the card if it fails."""
        services = await self._services()
        if services is None:
            return
        backends, _ = services
        try:
            await delete_asset(self.store, backends.storage, backends.catalog, public_id)
        except MediaError as exc:
            self.notify(safe_text(str(exc)), title="Delete failed", severity="error", markup=False)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.value = self.view.filter_text
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.grid.set_filter(event.value)
        self._refresh_status_line()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = bool(box.value)
        self.grid.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if not box.display and not self.view.filter_text:
            return
        box.value = ""
        box.display = False
        self.grid.set_filter("")
        self.grid.focus()
        self._refresh_status_line()

    def action_cycle_sort(self) -> None:
        mode = self.grid.cycle_sort()
        self._refresh_status_line()
        self.notify(f"Sorted by {mode.value}.", markup=False, timeout=2)

    def action_tasks(self) -> None:
        if not isinstance(self.screen, TasksScreen):
            self.push_screen(TasksScreen())

    def action_toggle_pause(self) -> None:
        if self.queue is None:
            return
        if self.queue.paused:
            self.queue.resume()
            self.notify("Uploads resumed.", markup=False, timeout=2)
        else:
            self.queue.pause()
            self.notify(
                "Uploads paused: transfers under way finish, no new ones start.", markup=False
            )
        self._refresh_status_line()

    def cancel_job(self, job_id: str) -> None:
        if self.queue is not None:
            self.queue.cancel(job_id)

    @work(group="retry", exit_on_error=False)
    async def retry_job(self, job_id: str | None = None) -> None:
        """Retry one failed job, or every failed job when `job_id` is None."""
        if self.queue is None:
            return
        if job_id is None:
            count = await self.queue.retry_failed()
            self.notify(f"Retrying {count} failed upload(s).", markup=False, timeout=2)
        else:
            await self.queue.retry(job_id)

    def action_sync(self, prune: bool = False) -> None:
        """Reconcile storage into the catalogue; the card shows how it goes."""
        if self.sync_status is not None and self.sync_status.running:
            self.notify("A sync is already running.", markup=False, timeout=3)
            return
        if not prune:
            self.sync_now(prune=False)
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.sync_now(prune=True)

        question = Text("Sync, and remove catalogue rows whose asset is gone from storage?")
        detail = "Assets missing from the catalogue are added either way."
        self.push_screen(ConfirmDialog(question, detail), callback=confirmed)

    @work(group="sync", exit_on_error=False)
    async def sync_now(self, prune: bool = False) -> None:
        """Run one reconciliation; its catalogue changes reach the grid through the feed."""
        status = SyncStatus(prune=prune, started_at=self.now())
        self.sync_status = status
        self._refresh_tray()
        services = await self._services()
        if services is None:
            status.finish(self.now(), None, self._startup_error or "the library is not open")
            self._refresh_tray()
            return
        backends, _ = services

        def advanced(progress: SyncProgress) -> None:
            status.advance(progress)
            self._dirty = True  # the card is redrawn with the next frame, not on every row

        try:
            report = await reconcile(
                backends.storage, backends.catalog, prune=prune, progress=advanced
            )
        except MediaError as exc:
            status.finish(self.now(), None, str(exc))
            self.notify(safe_text(str(exc)), title="Sync failed", severity="error", markup=False)
        else:
            status.finish(self.now(), report)
            self.notify(
                report.summary(prune_hint="“Sync and prune” removes them"),
                title="Sync done",
                severity="warning" if report.failed else "information",
                markup=False,
            )
        self._refresh_tray()

    def _refresh_tray(self) -> None:
        self.query_one(UploadTray).refresh_cards()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Upload files", "Open the drop-path prompt (u)", self.action_upload)
        yield SystemCommand(
            "Filter the library", "By name, tag:, type: or folder: (/)", self.action_filter
        )
        yield SystemCommand("Clear the filter", "Show every asset (Esc)", self.action_clear_filter)
        yield SystemCommand("Cycle sort order", "Newest, name, size (s)", self.action_cycle_sort)
        yield SystemCommand(
            "Show upload tasks", "Every job, with cancel and retry (w)", self.action_tasks
        )
        yield SystemCommand(
            "Pause or resume uploads", "Stop starting new uploads (p)", self.action_toggle_pause
        )
        yield SystemCommand(
            "Retry failed uploads", "Queue every failed upload again", lambda: self.retry_job(None)
        )
        yield SystemCommand(
            "Cancel all uploads", "Stop every queued and running upload", self._cancel_all
        )
        yield SystemCommand("Copy URL", "Copy the selected asset's URL (y)", self.action_copy_url)
        yield SystemCommand(
            "Open in browser", "Open the selected asset's URL (o)", self.action_open_url
        )
        yield SystemCommand(
            "Delete asset", "Delete the selected asset after confirming (d)", self.action_delete
        )
        yield SystemCommand(
            "Sync now",
            "Add what storage holds and the catalogue lacks; report rows of deleted assets",
            self.action_sync,
        )
        yield SystemCommand(
            "Sync and prune",
            "Sync, then remove catalogue rows whose asset is gone (asks first)",
            lambda: self.action_sync(prune=True),
        )
        yield SystemCommand("Keys", "Show every key (?)", self.action_help)

    def _cancel_all(self) -> None:
        if self.queue is not None:
            self.queue.cancel_all()


def run_app(settings: Settings) -> int:
    """Run the TUI (the CLI's default command)."""
    app = MediaApp(settings)
    with contextlib.suppress(KeyboardInterrupt):
        app.run()
    return app.return_code or 0
