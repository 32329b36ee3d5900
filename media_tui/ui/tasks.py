"""The tasks view (`w`): every upload job, with cancel, retry, pause and clear.

It reads jobs from the store and asks the App to act (the App owns the queue), so closing the
view never stops an upload.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static
from textual.widgets.data_table import CellDoesNotExist

from media_tui.console import human_size
from media_tui.model import JobState, UploadJob
from media_tui.safe_text import safe_text, truncate
from media_tui.store import MediaStore
from media_tui.ui.bars import percent_text
from media_tui.ui.upload_cards import STATE_LABEL, format_speed

COLUMNS = ("state", "name", "progress", "size", "speed", "info")


class UploadControls(Protocol):
    """What the tasks view needs from the App."""

    store: MediaStore

    def cancel_job(self, job_id: str) -> None: ...
    def retry_job(self, job_id: str | None = None) -> Any: ...
    def action_toggle_pause(self) -> None: ...


def job_cells(job: UploadJob) -> tuple[Text, ...]:
    info = job.error or (job.public_id if job.state in (JobState.DONE, JobState.DUPLICATE) else "")
    return (
        Text(STATE_LABEL[job.state]),
        Text(truncate(safe_text(job.name), 40)),
        Text(percent_text(job.fraction)),
        Text(human_size(job.size)),
        Text(format_speed(job.bytes_per_second) if job.state is JobState.UPLOADING else ""),
        Text(truncate(safe_text(info), 60)),
    )


class TasksScreen(ModalScreen[None]):
    """All upload jobs, newest last."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,w,q", "close", "Close"),
        Binding("x", "cancel", "Cancel"),
        Binding("r", "retry", "Retry"),
        Binding("R", "retry_all", "Retry all failed"),
        Binding("p", "pause", "Pause/resume"),
        Binding("c", "clear", "Clear finished"),
    ]

    @property
    def controls(self) -> UploadControls:
        return cast(UploadControls, self.app)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="tasks"):
            yield Static(Text("Upload tasks"), classes="dialog-title")
            yield DataTable(id="jobs", cursor_type="row", zebra_stripes=True)
            yield Static(
                Text(
                    "x cancel · r retry · R retry all failed · p pause/resume · c clear finished · Esc close"
                ),
                classes="dialog-hint",
            )

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        self.refresh_jobs()
        table.focus()

    def refresh_jobs(self, job_ids: set[str] | None = None) -> None:
        """Bring the table in line with the store (only `job_ids` when given)."""
        table = self.query_one(DataTable)
        jobs = self.controls.store.jobs
        for key in list(table.rows):
            if key.value not in jobs:
                table.remove_row(key)
        for job_id in job_ids if job_ids is not None else list(jobs):
            job = jobs.get(job_id)
            if job is None:
                continue
            cells = job_cells(job)
            try:
                for column, cell in zip(COLUMNS, cells, strict=True):
                    table.update_cell(job_id, column, cell)
            except CellDoesNotExist:
                table.add_row(*cells, key=job_id)

    def _selected(self) -> UploadJob | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return self.controls.store.jobs.get(str(key.value))

    def action_close(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        job = self._selected()
        if job is not None and job.state.active:
            self.controls.cancel_job(job.job_id)

    def action_retry(self) -> None:
        job = self._selected()
        if job is not None and job.state in (JobState.FAILED, JobState.CANCELLED):
            self.controls.retry_job(job.job_id)

    def action_retry_all(self) -> None:
        self.controls.retry_job(None)

    def action_pause(self) -> None:
        self.controls.action_toggle_pause()

    def action_clear(self) -> None:
        store = self.controls.store
        with store.batch():
            for job in list(store.jobs.values()):
                if not job.state.active:
                    store.job_dismissed(job.job_id)
