"""LibraryView: the ordered, filtered list of entries the asset grid shows.

Pure Python (no Textual), so it can be tested and benchmarked on its own. It reads a
`MediaStore` and keeps one `GridEntry` per public id: every confirmed asset plus every
optimistic upload that has no confirmed asset yet.

It must stay fast at 100,000 assets, so the order is a sorted list of unique sort keys
(`(primary, public_id)` tuples). A change to one asset is a `bisect` plus one list
insert/delete (a memmove), never a full sort; `rebuild()` sorts everything, and runs only on
a reset, a new sort mode or a new filter.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from media_tui.model import MediaAsset, ResourceType, UploadJob
from media_tui.store import ChangeSet, MediaStore

__all__ = [
    "FilterTerm",
    "GridEntry",
    "LibraryView",
    "SortMode",
    "matches",
    "parse_filter",
    "sort_key",
]

# A move that shifts more entries than this is reported as "redraw everything": a set of
# many thousand indices would cost more to build and walk than a full repaint of the screen.
_MAX_CHANGED_SPAN = 2_000

# Entries without a creation time sort after everything else under NEWEST.
_NO_TIME = float("-inf")


class SortMode(StrEnum):
    """The grid's orders, in the order the sort key cycles through them."""

    NEWEST = "newest"
    NAME = "name"
    SIZE = "size"

    def next(self) -> SortMode:
        """The mode after this one (newest -> name -> size -> newest)."""
        modes = list(SortMode)
        return modes[(modes.index(self) + 1) % len(modes)]


@dataclass(frozen=True, slots=True)
class GridEntry:
    """One card: a confirmed asset, an optimistic upload, or an asset being re-uploaded."""

    public_id: str
    asset: MediaAsset | None  # None for an optimistic entry (upload not confirmed yet)
    job: UploadJob | None  # the active job writing this id, if any (badge/progress)
    # The view never sets this: the store removes an asset from the grid the moment its
    # delete starts (optimistic delete) and restores it if the delete fails. It is here for
    # views that choose to show pending deletes.
    deleting: bool = False

    @property
    def optimistic(self) -> bool:
        return self.asset is None

    @property
    def name(self) -> str:
        if self.asset is not None:
            return self.asset.name
        if self.job is not None:
            return self.job.name
        return self.public_id

    @property
    def resource_type(self) -> ResourceType:
        if self.asset is not None:
            return self.asset.resource_type
        if self.job is not None:
            return self.job.resource_type
        return ResourceType.RAW

    @property
    def size(self) -> int:
        """Bytes: the stored size, or the file's size while it is being uploaded."""
        if self.asset is not None:
            return self.asset.bytes
        return self.job.size if self.job is not None else 0

    @property
    def format(self) -> str:
        """The file format (`jpg`, `mp4`…), or "" when unknown."""
        if self.asset is not None:
            return self.asset.format or ""
        if self.job is not None:
            return self.job.path.suffix.lstrip(".").lower()
        return ""

    @property
    def folder(self) -> str:
        if self.asset is not None:
            return self.asset.folder
        return self.job.folder if self.job is not None else ""

    @property
    def tags(self) -> tuple[str, ...]:
        if self.asset is not None:
            return self.asset.tags
        return self.job.tags if self.job is not None else ()

    @property
    def thumbnail(self) -> str | None:
        """The asset's thumbnail source (a local path or a URL), if it has one."""
        return self.asset.thumbnail if self.asset is not None else None

    @property
    def sort_time(self) -> datetime | None:
        """When the entry appeared: the asset's creation, or the job's queueing for an optimistic one."""
        if self.asset is not None:
            return self.asset.created_at
        return self.job.queued_at if self.job is not None else None


# --------------------------------------------------------------------------- filtering

# Field prefixes a filter term may carry (`tag:cats`). Anything else with a colon in it is
# an ordinary search term, because file names may contain colons.
_FIELD_ALIASES = {
    "tag": "tag",
    "tags": "tag",
    "type": "type",
    "folder": "folder",
    "name": "name",
    "format": "format",
    "fmt": "format",
    "ext": "format",
    "id": "id",
}


@dataclass(frozen=True, slots=True)
class FilterTerm:
    """One space-separated part of the filter; `scope` None means "any field"."""

    scope: str | None
    value: str  # casefolded


def parse_filter(text: str) -> tuple[FilterTerm, ...]:
    """Split filter text into terms that must all match (case-insensitive substrings)."""
    terms: list[FilterTerm] = []
    for word in text.split():
        prefix, colon, rest = word.partition(":")
        scope = _FIELD_ALIASES.get(prefix.casefold()) if colon else None
        if scope is None:
            terms.append(FilterTerm(None, word.casefold()))
        elif rest:
            terms.append(FilterTerm(scope, rest.casefold()))
        # `tag:` with nothing after it narrows nothing: the operator is still typing.
    return tuple(terms)


def _field_values(entry: GridEntry, scope: str) -> Iterable[str]:
    if scope == "tag":
        return entry.tags
    if scope == "type":
        return (entry.resource_type.value,)
    if scope == "folder":
        return (entry.folder,)
    if scope == "name":
        return (entry.name,)
    if scope == "format":
        return (entry.format,)
    return (entry.public_id,)


def _haystack(entry: GridEntry) -> str:
    # NUL never occurs in a term (terms are split on whitespace and typed), so a term cannot
    # match across two fields.
    parts = (
        entry.name,
        entry.public_id,
        entry.folder,
        entry.format,
        entry.resource_type.value,
        *entry.tags,
    )
    return "\x00".join(parts).casefold()


def matches(entry: GridEntry, terms: tuple[FilterTerm, ...], haystack: str | None = None) -> bool:
    """Whether every term matches the entry (`haystack`: its precomputed search text)."""
    for term in terms:
        if term.scope is None:
            if haystack is None:
                haystack = _haystack(entry)
            if term.value not in haystack:
                return False
        elif not any(term.value in value.casefold() for value in _field_values(entry, term.scope)):
            return False
    return True


# ------------------------------------------------------------------------------ sorting

SortKey = tuple[float | str, str]


def sort_key(entry: GridEntry, mode: SortMode) -> SortKey:
    """The entry's unique position key: ascending order is display order."""
    if mode is SortMode.NEWEST:
        # Inlined (this runs 100,000 times per rebuild), same as `entry.sort_time`.
        asset = entry.asset
        when = asset.created_at if asset is not None else entry.sort_time
        return (-(when.timestamp() if when is not None else _NO_TIME), entry.public_id)
    if mode is SortMode.NAME:
        return (entry.name.casefold(), entry.public_id)
    return (float(-entry.size), entry.public_id)


# --------------------------------------------------------------------------------- view


class LibraryView:
    """The grid's entries in display order, kept up to date from `ChangeSet`s."""

    def __init__(self, store: MediaStore) -> None:
        self._store = store
        self._sort = SortMode.NEWEST
        self._filter_text = ""
        self._terms: tuple[FilterTerm, ...] = ()
        self._all: dict[str, GridEntry] = {}  # every entry, shown or filtered out
        self._job_ids: dict[str, str] = {}  # job id -> public id of the entry it badges
        self._haystacks: dict[str, str] = {}  # public id -> search text, built on demand
        self._keys: list[SortKey] = []  # sorted: the display order of the shown entries
        self._key_of: dict[str, SortKey] = {}  # shown public id -> its key in `_keys`
        self.rebuild()

    # ------------------------------------------------------------------ reading

    @property
    def store(self) -> MediaStore:
        return self._store

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, index: int) -> GridEntry:
        return self._all[self._keys[index][1]]

    def index_of(self, public_id: str) -> int | None:
        """The entry's position, or None when it is not shown (absent or filtered out)."""
        key = self._key_of.get(public_id)
        if key is None:
            return None
        return bisect.bisect_left(self._keys, key)

    def get(self, public_id: str) -> GridEntry | None:
        """The shown entry for a public id, if any."""
        return self._all.get(public_id) if public_id in self._key_of else None

    @property
    def total(self) -> int:
        """How many entries exist before filtering (for "12 of 340" counters)."""
        return len(self._all)

    # ------------------------------------------------------------ sort and filter

    @property
    def sort(self) -> SortMode:
        return self._sort

    @sort.setter
    def sort(self, mode: SortMode) -> None:
        self._sort = SortMode(mode)
        self._reorder()

    @property
    def filter_text(self) -> str:
        return self._filter_text

    @filter_text.setter
    def filter_text(self, text: str) -> None:
        self._filter_text = text
        self._terms = parse_filter(text)
        self._reorder()

    # ---------------------------------------------------------------- building

    def rebuild(self) -> None:
        """Re-read the whole store, then filter and sort from scratch."""
        store = self._store
        jobs = _active_jobs_by_public_id(store.jobs.values())
        entries = {pid: GridEntry(pid, asset, jobs.get(pid)) for pid, asset in store.assets.items()}
        for pid, job in jobs.items():
            if pid not in entries:
                entries[pid] = GridEntry(pid, None, job)
        self._all = entries
        self._job_ids = {job.job_id: pid for pid, job in jobs.items() if pid in entries}
        self._haystacks.clear()
        self._reorder()

    def _reorder(self) -> None:
        """Filter and sort the entries already read (a sort or filter change re-reads nothing)."""
        mode = self._sort
        if self._terms:
            self._key_of = {
                pid: sort_key(entry, mode)
                for pid, entry in self._all.items()
                if self._matches(pid, entry)
            }
        else:
            self._key_of = {pid: sort_key(entry, mode) for pid, entry in self._all.items()}
        self._keys = sorted(self._key_of.values())

    def _matches(self, pid: str, entry: GridEntry) -> bool:
        if not self._terms:
            return True
        haystack = self._haystacks.get(pid)
        if haystack is None:
            # Cached because typing a filter re-runs it over every entry on each keystroke.
            haystack = self._haystacks[pid] = _haystack(entry)
        return matches(entry, self._terms, haystack)

    # ----------------------------------------------------------------- changes

    def apply(self, changes: ChangeSet) -> set[int] | None:
        """Follow one change set; return the indices whose entry changed.

        None means "redraw everything": after a reset, or when entries were inserted or
        removed (every later index shifted). An empty set means nothing visible changed.
        """
        if changes.reset:
            self.rebuild()
            return None
        public_ids = self._touched_public_ids(changes)
        if not public_ids:
            return set()
        jobs = _active_jobs_by_public_id(
            job for job in self._store.jobs.values() if job.public_id in public_ids
        )
        update = _Update()
        for pid in public_ids:
            self._update_one(pid, jobs.get(pid), update)
        if update.structural:
            return None
        changed = set(update.spans)
        for pid in update.changed:
            index = self.index_of(pid)
            if index is not None:
                changed.add(index)
        return changed

    def _touched_public_ids(self, changes: ChangeSet) -> set[str]:
        public_ids = set(changes.assets)
        for job_id in changes.jobs:
            # A job's public id can change (a duplicate names the existing asset), so the
            # entry it used to badge must be looked at again too.
            previous = self._job_ids.get(job_id)
            if previous is not None:
                public_ids.add(previous)
            job = self._store.job(job_id)
            if job is not None:
                public_ids.add(job.public_id)
        return public_ids

    def _update_one(self, pid: str, job: UploadJob | None, update: _Update) -> None:
        asset = self._store.assets.get(pid)
        new = GridEntry(pid, asset, job) if asset is not None or job is not None else None
        old = self._all.get(pid)
        if old == new:
            return
        self._set_entry(pid, old, new)
        old_key = self._key_of.get(pid)
        new_key = None
        if new is not None and self._matches(pid, new):
            new_key = sort_key(new, self._sort)
        if new_key is None:
            if old_key is not None:
                del self._keys[bisect.bisect_left(self._keys, old_key)]
                del self._key_of[pid]
                update.structural = True
        elif old_key is None:
            self._key_of[pid] = new_key
            bisect.insort(self._keys, new_key)
            update.structural = True
        elif old_key == new_key:
            update.changed.add(pid)
        else:
            self._key_of[pid] = new_key
            self._move(old_key, new_key, update)

    def _move(self, old_key: SortKey, new_key: SortKey, update: _Update) -> None:
        """Re-position one entry; every index between its old and new place shows another entry."""
        old_index = bisect.bisect_left(self._keys, old_key)
        del self._keys[old_index]
        new_index = bisect.bisect_left(self._keys, new_key)
        self._keys.insert(new_index, new_key)
        low, high = sorted((old_index, new_index))
        if high - low + len(update.spans) > _MAX_CHANGED_SPAN:
            update.structural = True
        else:
            update.spans.update(range(low, high + 1))

    def _set_entry(self, pid: str, old: GridEntry | None, new: GridEntry | None) -> None:
        self._haystacks.pop(pid, None)
        if old is not None and old.job is not None:
            self._job_ids.pop(old.job.job_id, None)
        if new is None:
            del self._all[pid]
            return
        self._all[pid] = new
        if new.job is not None:
            self._job_ids[new.job.job_id] = pid


@dataclass(slots=True)
class _Update:
    """What one `apply` did, gathered while it walks the touched public ids."""

    structural: bool = False  # entries were inserted or removed: every later index shifted
    spans: set[int] = field(default_factory=set)  # indices passed over by moved entries
    changed: set[str] = field(default_factory=set)  # entries changed in place


def _active_jobs_by_public_id(jobs: Iterable[UploadJob]) -> dict[str, UploadJob]:
    """Active jobs by public id; the newest (last queued) wins, as `MediaStore.job_for` does."""
    return {job.public_id: job for job in jobs if job.state.active}
