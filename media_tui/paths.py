"""Turning what a terminal pastes, or what an operator types, into media files to upload.

A drag-and-drop onto a terminal is not an event: the terminal pastes the dropped paths as
text, and every terminal quotes them its own way (backslashes, single quotes, double quotes,
raw lines, `file://` URIs). `split_pasted` undoes all of those; `expand` turns the resulting
strings into files — following `~`, URIs, globs and directories — and says, one sentence per
input, why anything it could not use was refused. `sniff` decides what a file is from its
first bytes, never from its name.

Everything here is synchronous and touches the file system (stat, scandir, a short read);
callers on the event loop run it in a thread. Nothing here blocks on a FIFO or device.
File names are kept exactly as the file system has them; display code sanitises them with
`media_tui.safe_text`.
"""

from __future__ import annotations

import errno
import glob
import os
import re
import shlex
import stat
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from media_tui.model import ResourceType

__all__ = [
    "SNIFF_BYTES",
    "ExpandResult",
    "MediaFile",
    "NotRegularFileError",
    "Rejected",
    "expand",
    "read_head",
    "sniff",
    "sniff_bytes",
    "split_pasted",
]

# Every binary signature below fits in the first 64 bytes; the rest of the KiB is for text
# formats (an SVG's <svg> tag may follow an XML prolog and comments) and for the brand list
# of an ISO-BMFF `ftyp` box. One read of a KiB costs the same as one of 64 bytes.
SNIFF_BYTES = 1024


# --------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True, slots=True)
class MediaFile:
    """A file that can be uploaded: where it is, how big, and what it is by content."""

    path: Path  # absolute, symlinks resolved
    size: int
    resource_type: ResourceType
    format: str  # short lower-case name sniffed from content: "jpg", "mp4", "pdf", ...


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input (or a file found inside a directory) that will not be uploaded, and why.

    `input` is raw, exactly as given or found; sanitise it with `safe_text` before showing it.
    """

    input: str
    reason: str


@dataclass(frozen=True, slots=True)
class ExpandResult:
    files: tuple[MediaFile, ...]
    rejected: tuple[Rejected, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


# One sentence each: what is wrong, what to do. Shown to the operator and printed by the CLI.
REASON_MISSING = "no such file or directory; check the path"
REASON_BROKEN_LINK = "a symbolic link whose target does not exist; check the link"
REASON_PERMISSION = "permission denied; check the file's permissions"
REASON_EMPTY = "empty file (0 bytes); wait until it is fully written, or pick another file"
REASON_NOT_MEDIA = (
    "not a media file (its content is not a known image, video or audio format); "
    "pick an image, video, audio or PDF file"
)
REASON_NOT_REGULAR = (
    "not a regular file (a FIFO, device or socket); only ordinary files can be uploaded"
)
REASON_EMPTY_DIR = "no media files in this directory (hidden files are skipped); check the folder"
REASON_NO_MATCH = "no such file, and no files match it as a pattern; check the path"
REASON_NO_MEDIA_MATCH = "the pattern matches files, but none of them is a media file"
REASON_NOT_LOCAL_URI = "a URI for another computer or protocol; only local files can be uploaded"
REASON_BAD_URI = "a file:// URI without a path; give the file's path instead"
REASON_BLANK = "an empty path; give a file or directory"
REASON_NUL = "the path contains a NUL character, which no file name can hold; check the input"
REASON_TOO_LONG = "the path or a name in it is too long for the file system; check the path"


# --------------------------------------------------------------------------------------------
# Splitting pasted text

_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # some terminals turn pasted newlines into CR
_WINDOWS_START = re.compile(r'^\s*"?(?:[A-Za-z]:[\\/]|\\\\)')
_WINDOWS_TOKEN = re.compile(r'"([^"]*)"|(\S+)')
_UNESCAPED_SPACE = re.compile(r"(?<!\\)\s+")
_URI_START = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
# A quoted or backslash-escaped newline makes one name span lines; give up after this many.
_MAX_JOINED_LINES = 16
# No path is longer than this many characters even fully backslash-escaped (PATH_MAX is 4096
# bytes on Linux, 1024 on macOS). shlex builds a token one character at a time, in quadratic
# time, so a pasted 1 MB run without a space took 15 s to split; longer runs skip shlex.
_MAX_SHELL_TOKEN = 16 * 1024


def split_pasted(text: str, *, cwd: Path | None = None) -> list[str]:
    """Split pasted or dropped text into path strings, whatever terminal produced it.

    1. If every line is an existing path, or every line is a URI (text/uri-list), the lines
       are the paths (kitty pastes raw paths one per line, so names may hold spaces/quotes).
    2. Otherwise each line that is, as a whole, an existing path is taken as it is.
    3. A line starting with a Windows drive letter or UNC prefix is split on double quotes,
       because POSIX shell splitting would eat its backslashes.
    4. A line of only `file:` URIs is split on whitespace (URIs may hold a raw `'`).
    5. Anything else is shell-split (backslash escapes, single and double quotes). A quote or
       escape left open continues onto the next lines, so a quoted newline survives; if the
       text never balances, the line is split on unescaped whitespace instead of failing.

    Blank lines are ignored. The strings are returned unresolved (`~`, globs and URIs are
    `expand`'s job); this function only stats, so it is cheap, but it does touch the disk.
    """
    base = cwd if cwd is not None else Path.cwd()
    lines = _LINE_BREAK.split(text)
    content = [line for line in lines if line.strip()]
    if not content:
        return []
    whole = _whole_lines(content, base)
    if whole is not None:
        return whole
    return list(_split_lines(lines, base))


def _whole_lines(lines: list[str], base: Path) -> list[str] | None:
    """Step 1: the lines as paths, if every line is an existing path or every line is a URI."""
    if all(_exists(line, base) for line in lines):
        return list(lines)
    # text/uri-list allows comment lines starting with '#'.
    uris = [line.strip() for line in lines if not line.lstrip().startswith("#")]
    if uris and all(_URI_START.match(uri) and not any(c.isspace() for c in uri) for uri in uris):
        return uris
    return None


def _split_lines(lines: list[str], base: Path) -> Iterator[str]:
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip():
            continue
        if _exists(line, base):
            yield line
        elif line.strip() != line and _exists(line.strip(), base):
            yield line.strip()
        elif _WINDOWS_START.match(line):
            yield from _split_windows(line)
        elif _is_uri_line(line):
            yield from line.split()
        else:
            tokens, used = _shell_split(lines, index - 1, base)
            index += used - 1
            yield from tokens


def _split_windows(line: str) -> list[str]:
    return [quoted or bare for quoted, bare in _WINDOWS_TOKEN.findall(line) if quoted or bare]


def _is_uri_line(line: str) -> bool:
    tokens = line.split()
    return bool(tokens) and all(token.lower().startswith("file:") for token in tokens)


def _shell_split(lines: list[str], start: int, base: Path) -> tuple[list[str], int]:
    """Shell-split `lines[start]`, joining following lines while a quote or escape is open.

    A line that is an existing path is never joined: a stray quote in pasted junk above it
    would otherwise swallow it, and the file would silently not be uploaded.
    Returns the tokens and how many lines they used.
    """
    limit = min(len(lines), start + _MAX_JOINED_LINES)
    for end in range(start + 1, limit + 1):
        line = lines[end - 1]
        if max(map(len, line.split()), default=0) > _MAX_SHELL_TOKEN:
            break  # junk, not paths: split plainly below and let `expand` refuse the pieces
        if end > start + 1 and (_exists(line, base) or _exists(line.strip(), base)):
            break
        try:
            return shlex.split("\n".join(lines[start:end])), end - start
        except ValueError:  # unbalanced quote or a trailing backslash
            continue
    return _split_unescaped_whitespace(lines[start]), 1


def _split_unescaped_whitespace(line: str) -> list[str]:
    """Last resort for text shlex refuses: WezTerm escapes only spaces, so `it's` stays raw."""
    return [token.replace("\\ ", " ") for token in _UNESCAPED_SPACE.split(line.strip()) if token]


def _exists(text: str, base: Path) -> bool:
    path = _to_path(text, base)
    if path is None:
        return False
    try:
        return os.path.lexists(path)
    except (OSError, ValueError):
        return False


def _to_path(text: str, base: Path) -> Path | None:
    """`text` as an absolute path: `~` expanded, relative to `base`; None if it can't be one."""
    if not text or "\x00" in text:
        return None
    if text.startswith("~"):
        text = os.path.expanduser(text)
    return base / text  # an absolute `text` replaces `base`


# --------------------------------------------------------------------------------------------
# Expanding inputs into files


class NotRegularFileError(OSError):
    """Raised by `read_head` when the path turned out to be a FIFO, device, socket or dir."""


def read_head(path: Path | str, limit: int = SNIFF_BYTES) -> bytes:
    """Read at most `limit` bytes from the start of a regular file, without ever blocking.

    This is the single place this module opens files, and the seam tests replace to make a
    file unreadable even as root (where a mode of 000 does not stop reading). O_NONBLOCK makes
    opening a FIFO that replaced the file since it was stat'ed return at once; the fstat then
    refuses it before any read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFileError(f"not a regular file: {os.fsdecode(path)!r}")
        chunks: list[bytes] = []
        remaining = limit
        while remaining > 0:
            chunk = os.read(fd, remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


@dataclass
class _Collector:
    """Accumulates results across inputs; files keyed by resolved path keep first-seen order."""

    files: dict[Path, MediaFile] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)

    def reject(self, label: str, reason: str) -> None:
        self.rejected.append(Rejected(label, reason))

    def add(self, media: MediaFile) -> None:
        self.files.setdefault(media.path, media)


def expand(inputs: Iterable[str], *, cwd: Path | None = None) -> ExpandResult:
    """Resolve input strings into media files, with one `Rejected` per input that fails.

    Each input may be a path (relative ones against `cwd`), `~`-prefixed, a `file://` URI
    (percent-decoded; host empty or `localhost`), a glob (`*`, `?`, `[...]`, `**`), or a
    directory (walked recursively: each directory's files in name order, then its
    subdirectories; hidden entries skipped, symlink loops walked once, non-media files skipped
    silently). An input that exists as typed is taken literally even
    if it contains glob characters. A file reached twice (same resolved path) is kept once,
    where it was first seen. Files are recognised by content (`sniff`), never by extension.
    """
    base = cwd if cwd is not None else Path.cwd()
    out = _Collector()
    for raw in inputs:
        _expand_one(raw, base, out)
    return ExpandResult(tuple(out.files.values()), tuple(out.rejected))


def _expand_one(raw: str, base: Path, out: _Collector) -> None:
    # Only a blank input is stripped: leading/trailing spaces can be part of a real name.
    if not raw.strip():
        out.reject(raw, REASON_BLANK)
        return
    text = raw
    if "\x00" in text:
        out.reject(raw, REASON_NUL)
        return
    if _URI_START.match(text) or text.lower().startswith("file:"):
        local = _path_from_uri(text)
        if isinstance(local, str):
            _take_input(raw, base / local, out)
        else:
            out.reject(raw, local.reason)
        return
    path = _to_path(text, base)
    assert path is not None  # blank and NUL inputs were refused above
    if os.path.lexists(path) or not glob.has_magic(text):
        _take_input(raw, path, out)
    else:
        _take_glob(raw, text, base, out)


def _path_from_uri(uri: str) -> str | Rejected:
    """The local path a `file://` URI names, or why it names none."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme.lower() != "file" or parts.netloc.lower() not in ("", "localhost"):
        return Rejected(uri, REASON_NOT_LOCAL_URI)
    # Percent-decode to bytes, then fsdecode: a non-UTF-8 name arrives as %FF escapes.
    path = os.fsdecode(urllib.parse.unquote_to_bytes(parts.path))
    if not path or "\x00" in path:
        return Rejected(uri, REASON_BAD_URI if not path else REASON_NUL)
    return path


def _take_input(label: str, path: Path, out: _Collector) -> None:
    """An input the operator named: every problem with it is reported."""
    try:
        st = os.stat(path)
    except OSError as exc:
        out.reject(label, _stat_failure_reason(path, exc))
        return
    if stat.S_ISDIR(st.st_mode):
        _take_directory(label, path, out)
        return
    outcome = _check_file(path, st)
    if isinstance(outcome, MediaFile):
        out.add(outcome)
    else:
        out.reject(label, outcome)


def _stat_failure_reason(path: Path, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return REASON_BROKEN_LINK if os.path.islink(path) else REASON_MISSING
    if isinstance(exc, PermissionError):
        return REASON_PERMISSION
    if exc.errno == errno.ENAMETOOLONG:
        return REASON_TOO_LONG
    return f"cannot read this path ({exc.strerror or 'unknown error'}); check the path"


def _check_file(path: Path, st: os.stat_result) -> MediaFile | str:
    """A MediaFile for a stat'ed non-directory, or the reason it is not one."""
    if not stat.S_ISREG(st.st_mode):
        # Checked before any open: opening a FIFO for reading would wait for a writer.
        return REASON_NOT_REGULAR
    if st.st_size == 0:
        return REASON_EMPTY
    try:
        head = read_head(path)
    except NotRegularFileError:
        return REASON_NOT_REGULAR
    except PermissionError:
        return REASON_PERMISSION
    except OSError as exc:
        return f"cannot read this file ({exc.strerror or 'unknown error'}); check the file"
    kind = sniff_bytes(head, path.name)
    if kind is None:
        return REASON_NOT_MEDIA
    resource_type, fmt = kind
    return MediaFile(Path(os.path.realpath(path)), st.st_size, resource_type, fmt)


def _take_directory(label: str, path: Path, out: _Collector) -> None:
    rejected_before = len(out.rejected)
    found = _walk_directory(path, label, out)
    # A directory whose only content was refused already has its explanation.
    if found == 0 and len(out.rejected) == rejected_before:
        out.reject(label, REASON_EMPTY_DIR)


def _take_glob(label: str, pattern: str, base: Path, out: _Collector) -> None:
    matches = _glob(pattern, base)
    if not matches:
        out.reject(label, REASON_NO_MATCH)
        return
    rejected_before = len(out.rejected)
    found = 0
    for match in matches:
        found += _take_found(match, out)
    if found == 0 and len(out.rejected) == rejected_before:
        out.reject(label, REASON_NO_MEDIA_MATCH)


def _glob(pattern: str, base: Path) -> list[Path]:
    """Sorted matches of `pattern`; the home or cwd prefix is never read as a pattern."""
    if pattern.startswith("~"):
        head, sep, rest = pattern.partition("/")
        home = os.path.expanduser(head)
        if home != head:
            pattern = glob.escape(home) + sep + rest
    if os.path.isabs(pattern):
        matches = glob.glob(pattern, recursive=True)
        return sorted(Path(m) for m in matches)
    # root_dir keeps glob characters in the cwd's own name from being interpreted.
    matches = glob.glob(pattern, root_dir=base, recursive=True)
    return sorted(base / m for m in matches)


def _walk_directory(top: Path, top_label: str, out: _Collector) -> int:
    """Add the media under `top`; return how many were seen (duplicates included).

    Order: a directory's files in name order, then its subdirectories, each walked the same
    way (depth-first), so a folder reads like a sorted listing. Hidden names are skipped; a directory reached twice (a symlink loop, or a link to an
    ancestor) is walked once. Iterative, so deep trees cannot hit the recursion limit.
    """
    seen_dirs: set[tuple[int, int]] = set()
    found = 0
    stack: list[Path] = [top]
    while stack:
        directory = stack.pop()
        try:
            st = os.stat(directory)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        label = top_label if directory == top else str(directory)
        entries = _sorted_entries(directory, label, out)
        if entries is None:
            continue
        subdirs: list[Path] = []
        for entry in entries:
            found += _take_entry(entry, subdirs, out)
        # Reversed so that the first subdirectory is the next one popped.
        stack.extend(reversed(subdirs))
    return found


def _sorted_entries(directory: Path, label: str, out: _Collector) -> list[os.DirEntry[str]] | None:
    try:
        with os.scandir(directory) as it:
            entries = [e for e in it if not e.name.startswith(".")]
    except PermissionError:
        out.reject(label, REASON_PERMISSION)
        return None
    except OSError as exc:
        out.reject(label, f"cannot list this directory ({exc.strerror}); check it")
        return None
    return sorted(entries, key=lambda e: e.name)


def _take_entry(entry: os.DirEntry[str], subdirs: list[Path], out: _Collector) -> int:
    try:
        is_dir = entry.is_dir()  # follows symlinks; loops are caught by inode in the walk
    except OSError:
        return 0
    if is_dir:
        subdirs.append(Path(entry.path))
        return 0
    return _take_found(Path(entry.path), out)


def _take_found(path: Path, out: _Collector) -> int:
    """A path met inside a directory or a glob: report only what the operator can act on.

    Non-media, non-regular and vanished files are skipped silently (a photo folder holds
    sidecar files). An unreadable file is reported because it may be a photo; so is an empty
    one whose name says it should be media (an interrupted copy).
    """
    try:
        st = os.stat(path)
    except OSError:
        return 0
    if stat.S_ISDIR(st.st_mode):
        return _walk_directory(path, str(path), out)
    outcome = _check_file(path, st)
    if isinstance(outcome, MediaFile):
        out.add(outcome)
        return 1
    if outcome == REASON_PERMISSION or (
        outcome == REASON_EMPTY and path.suffix.lower() in _MEDIA_SUFFIXES
    ):
        out.reject(str(path), outcome)
    return 0


# --------------------------------------------------------------------------------------------
# Sniffing


def sniff(path: Path) -> tuple[ResourceType, str] | None:
    """What a file is, from its first bytes: `(resource_type, format)`, or None if not media.

    Reads at most `SNIFF_BYTES` without blocking. A FIFO, device or directory is not media
    (None). A file that cannot be read raises the `OSError` (missing, permission denied), so
    callers can tell "not media" from "could not look".
    """
    try:
        head = read_head(path)
    except NotRegularFileError:
        return None
    return sniff_bytes(head, path.name)


def sniff_bytes(head: bytes, name: str = "") -> tuple[ResourceType, str] | None:
    """Classify the first bytes of a file; `name` only helps for text formats (SVG)."""
    for detect in _DETECTORS:
        result = detect(head)
        if result is not None:
            return result
    return _sniff_svg(head, name)


_IMAGE, _VIDEO = ResourceType.IMAGE, ResourceType.VIDEO

# (offset, signature, resource type, format); checked in order, first match wins.
_SIGNATURES: tuple[tuple[int, bytes, ResourceType, str], ...] = (
    (0, b"\xff\xd8\xff", _IMAGE, "jpg"),
    (0, b"\x89PNG\r\n\x1a\n", _IMAGE, "png"),
    (0, b"GIF87a", _IMAGE, "gif"),
    (0, b"GIF89a", _IMAGE, "gif"),
    (0, b"II*\x00", _IMAGE, "tiff"),
    (0, b"MM\x00*", _IMAGE, "tiff"),
    (0, b"II+\x00", _IMAGE, "tiff"),  # BigTIFF
    (0, b"MM\x00+", _IMAGE, "tiff"),
    (0, b"8BPS", _IMAGE, "psd"),
    (0, b"\xff\x0a", _IMAGE, "jxl"),  # JPEG XL codestream
    (0, b"\x00\x00\x00\x0cJXL \r\n\x87\n", _IMAGE, "jxl"),  # JPEG XL container
    (0, b"\x00\x00\x00\x0cjP  \r\n\x87\n", _IMAGE, "jp2"),
    (0, b"%PDF-", _IMAGE, "pdf"),  # Cloudinary files PDFs as images (pages are frames)
    (0, b"ID3", _VIDEO, "mp3"),  # audio counts as video, as Cloudinary files it
    (0, b"fLaC", _VIDEO, "flac"),
    (0, b"OggS", _VIDEO, "ogg"),
    (0, b"FLV\x01", _VIDEO, "flv"),
    (0, b"0&\xb2u\x8ef\xcf\x11", _VIDEO, "wmv"),  # ASF header GUID
    (0, b"\x00\x00\x01\xba", _VIDEO, "mpeg"),  # MPEG program stream
    (0, b"\x00\x00\x01\xb3", _VIDEO, "mpeg"),  # MPEG-1 video sequence
)

# RIFF and IFF containers: the form type at offset 8 says what is inside.
_RIFF_FORMS = {b"WEBP": (_IMAGE, "webp"), b"WAVE": (_VIDEO, "wav"), b"AVI ": (_VIDEO, "avi")}
_IFF_FORMS = {b"AIFF": (_VIDEO, "aiff"), b"AIFC": (_VIDEO, "aiff")}

# ISO-BMFF brands (the `ftyp` box): HEIF stills and AVIF are images, the rest video/audio.
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_MOV_BRANDS = frozenset({b"qt  "})
_M4A_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "})
_3GP_PREFIXES = (b"3gp", b"3g2")
# Pre-ftyp QuickTime files start straight with one of these atoms (small, so size < 16 MiB).
_QUICKTIME_ATOMS = frozenset({b"moov", b"wide", b"free", b"skip", b"pnot"})

# Extensions only used to decide whether an empty file found in a directory is worth a word.
# fmt: off
_MEDIA_SUFFIXES = frozenset({
    ".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif",
    ".avif", ".svg", ".pdf", ".psd", ".jxl", ".jp2",
    ".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".wmv", ".flv", ".mpg", ".mpeg", ".ts",
    ".3gp", ".ogv",
    ".mp3", ".wav", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".aac", ".aif", ".aiff",
})
# fmt: on


def _sniff_signature(head: bytes) -> tuple[ResourceType, str] | None:
    for offset, signature, resource_type, fmt in _SIGNATURES:
        if head.startswith(signature, offset):
            return resource_type, fmt
    return None


def _sniff_riff(head: bytes) -> tuple[ResourceType, str] | None:
    if head.startswith(b"RIFF"):
        return _RIFF_FORMS.get(head[8:12])
    if head.startswith(b"FORM"):
        return _IFF_FORMS.get(head[8:12])
    return None


def _sniff_iso_bmff(head: bytes) -> tuple[ResourceType, str] | None:
    if head[4:8] != b"ftyp":
        if head[4:8] in _QUICKTIME_ATOMS and head[:1] == b"\x00":
            return _VIDEO, "mov"
        return None
    box_size = int.from_bytes(head[0:4], "big")
    major = head[8:12]
    # Compatible brands follow the major brand and minor version, up to the box's end.
    compatible = {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
    brands = {major} | compatible
    if major in _AVIF_BRANDS or (major in (b"mif1", b"msf1") and brands & _AVIF_BRANDS):
        return _IMAGE, "avif"
    if major in _HEIC_BRANDS or major in (b"mif1", b"msf1"):
        return _IMAGE, "heic"
    if major == b"crx ":
        return _IMAGE, "cr3"  # Canon raw stills use an ISO-BMFF container too
    if major in _MOV_BRANDS:
        return _VIDEO, "mov"
    if major in _M4A_BRANDS:
        return _VIDEO, "m4a"
    if major.startswith(_3GP_PREFIXES):
        return _VIDEO, "3gp"
    return _VIDEO, "mp4"


def _sniff_matroska(head: bytes) -> tuple[ResourceType, str] | None:
    if not head.startswith(b"\x1a\x45\xdf\xa3"):
        return None
    # The EBML header's DocType says which of the two Matroska flavours this is.
    return (_VIDEO, "webm") if b"webm" in head[:64] else (_VIDEO, "mkv")


def _sniff_bmp(head: bytes) -> tuple[ResourceType, str] | None:
    # "BM" alone is too weak (a text file may start with it): also require the reserved
    # words to be zero and a known DIB header size.
    if len(head) < 18 or not head.startswith(b"BM") or head[6:10] != b"\x00\x00\x00\x00":
        return None
    dib_size = int.from_bytes(head[14:18], "little")
    return (_IMAGE, "bmp") if dib_size in (12, 40, 52, 56, 64, 108, 124) else None


def _sniff_mpeg_audio(head: bytes) -> tuple[ResourceType, str] | None:
    """A raw MPEG audio frame (MP3 without an ID3 tag) or an ADTS AAC stream."""
    if len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    layer = (head[1] >> 1) & 0b11
    if layer == 0:
        return (_VIDEO, "aac") if head[1] & 0xF6 == 0xF0 else None
    bitrate_index, rate_index = head[2] >> 4, (head[2] >> 2) & 0b11
    if bitrate_index in (0, 0xF) or rate_index == 0b11 or (head[1] >> 3) & 0b11 == 0b01:
        return None
    return _VIDEO, "mp3"


def _sniff_mpeg_ts(head: bytes) -> tuple[ResourceType, str] | None:
    # A transport stream is 188-byte packets that each start with 0x47.
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return _VIDEO, "ts"
    return None


_SVG_OPENINGS = ("<?xml", "<svg", "<!doctype svg", "<!--")


def _sniff_svg(head: bytes, name: str) -> tuple[ResourceType, str] | None:
    """SVG is text: markup that mentions <svg early, or XML-looking text named .svg.

    The extension is a tie-breaker only: XML whose <svg> tag lies past the sniffed KiB (a long
    prolog or comment) still counts when the file says it is .svg; plain text never does.
    """
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n").lower()
    if not text.startswith(_SVG_OPENINGS):
        return None
    if "<svg" in text or name.lower().endswith(".svg"):
        return _IMAGE, "svg"
    return None


_DETECTORS: tuple[Callable[[bytes], tuple[ResourceType, str] | None], ...] = (
    _sniff_signature,
    _sniff_riff,
    _sniff_iso_bmff,
    _sniff_matroska,
    _sniff_bmp,
    _sniff_mpeg_audio,
    _sniff_mpeg_ts,
)
