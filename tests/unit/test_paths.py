"""paths: splitting every terminal's drag-and-drop text, expanding inputs, sniffing content."""

from __future__ import annotations

import os
import re
import stat
import urllib.parse
from pathlib import Path

import pytest
from PIL import Image

from media_tui import paths
from media_tui.model import ResourceType
from media_tui.paths import (
    REASON_EMPTY,
    REASON_EMPTY_DIR,
    REASON_MISSING,
    REASON_NO_MATCH,
    REASON_NOT_LOCAL_URI,
    REASON_NOT_MEDIA,
    REASON_NOT_REGULAR,
    REASON_PERMISSION,
    REASON_TOO_LONG,
    ExpandResult,
    MediaFile,
    Rejected,
    expand,
    sniff,
    sniff_bytes,
    split_pasted,
)

IMAGE, VIDEO = ResourceType.IMAGE, ResourceType.VIDEO

# Minimal but real-looking headers for the formats that Pillow cannot write.
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 40
MOV = b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  " + b"\x00" * 40
M4A = b"\x00\x00\x00\x1cftypM4A \x00\x00\x00\x00M4A mp42isom" + b"\x00" * 40
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 40
AVIF = b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf" + b"\x00" * 40
_EBML = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08"
WEBM = _EBML + b"\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02" + b"\x00" * 16
MKV = _EBML + b"\x42\x82\x88matroska\x42\x87\x81\x04\x42\x85\x81\x02" + b"\x00" * 16
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + b"\x00" * 60
MP3_NO_TAG = b"\xff\xfb\x90\x64" + b"\x00" * 60
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00" + b"\x00" * 40
OGG = b"OggS\x00\x02" + b"\x00" * 40
FLAC = b"fLaC\x00\x00\x00\x22" + b"\x00" * 40
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>\n'


def write_png(path: Path) -> Path:
    Image.new("RGB", (4, 4), (200, 30, 30)).save(path, format="PNG")
    return path


def write_jpeg(path: Path) -> Path:
    Image.new("RGB", (4, 4), (30, 200, 30)).save(path, format="JPEG")
    return path


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def media(tmp_path: Path) -> dict[str, Path]:
    """One real file per common format, in tmp_path/media."""
    folder = tmp_path / "media"
    folder.mkdir()
    return {
        "png": write_png(folder / "photo.png"),
        "jpg": write_jpeg(folder / "photo.jpg"),
        "mp4": write(folder / "clip.mp4", MP4),
        "webm": write(folder / "clip.webm", WEBM),
        "mp3": write(folder / "song.mp3", MP3),
        "wav": write(folder / "sound.wav", WAV),
        "pdf": write(folder / "doc.pdf", PDF),
        "svg": write(folder / "drawing.svg", SVG),
    }


def backslash_escaped(path: Path | str) -> str:
    """How iTerm2 and Terminal.app paste a dropped path: shell characters backslashed."""
    return re.sub(r"([^A-Za-z0-9_./-])", r"\\\1", str(path))


def gnome_quoted(path: Path | str) -> str:
    """How GNOME Terminal/VTE pastes a dropped path: g_shell_quote."""
    return "'" + str(path).replace("'", "'\\''") + "'"


def names(result: ExpandResult) -> list[str]:
    return [f.path.name for f in result.files]


# --- split_pasted: one test per terminal -------------------------------------------------------


def test_iterm2_backslash_escaped_paths(tmp_path: Path) -> None:
    a = write_jpeg(tmp_path / "my photo (1).jpg")
    b = write_png(tmp_path / "b&c.png")
    pasted = f"{backslash_escaped(a)} {backslash_escaped(b)}"
    assert split_pasted(pasted) == [str(a), str(b)]
    assert names(expand(split_pasted(pasted))) == ["my photo (1).jpg", "b&c.png"]


def test_iterm2_escaped_newline_in_a_name_survives(tmp_path: Path) -> None:
    a = write_png(tmp_path / "two\nlines.png")
    b = write_png(tmp_path / "b.png")
    pasted = f"{backslash_escaped(a)} {backslash_escaped(b)}"
    assert "\\\n" in pasted
    assert split_pasted(pasted) == [str(a), str(b)]


def test_terminal_app_backslash_escaped_with_trailing_space(tmp_path: Path) -> None:
    a = write_jpeg(tmp_path / "my photo.jpg")
    b = write_png(tmp_path / "b.png")
    pasted = f"{backslash_escaped(a)} {backslash_escaped(b)} "
    assert split_pasted(pasted) == [str(a), str(b)]


def test_gnome_single_quoted_with_escaped_quote(tmp_path: Path) -> None:
    a = write_jpeg(tmp_path / "it's.jpg")
    b = write_png(tmp_path / "b c.png")
    pasted = f"{gnome_quoted(a)} {gnome_quoted(b)} "
    assert "'\\''" in pasted
    assert split_pasted(pasted) == [str(a), str(b)]
    assert names(expand(split_pasted(pasted))) == ["it's.jpg", "b c.png"]


def test_gnome_quoted_newline_in_a_name_survives(tmp_path: Path) -> None:
    a = write_png(tmp_path / "two\nlines.png")
    pasted = f"{gnome_quoted(a)} {gnome_quoted(tmp_path / 'other.png')} "
    assert split_pasted(pasted) == [str(a), str(tmp_path / "other.png")]


def test_kitty_raw_paths_one_per_line(tmp_path: Path) -> None:
    a = write_jpeg(tmp_path / "a b.jpg")
    b = write_png(tmp_path / "c.png")
    pasted = f"{a}\n{b}"
    assert split_pasted(pasted) == [str(a), str(b)]


def test_kitty_raw_names_with_quotes_and_backslashes_are_taken_whole(tmp_path: Path) -> None:
    a = write_jpeg(tmp_path / 'it\'s "quoted".jpg')
    b = write_png(tmp_path / "back\\slash  two spaces.png")
    assert split_pasted(f"{a}\n{b}\n") == [str(a), str(b)]


def test_an_existing_line_is_taken_as_is_next_to_other_formats(tmp_path: Path) -> None:
    a = write_jpeg(tmp_path / "it's here.jpg")
    b = write_png(tmp_path / "b c.png")
    pasted = f"{a}\n{gnome_quoted(b)} "
    assert split_pasted(pasted) == [str(a), str(b)]


def test_wezterm_spaces_only_escaping(tmp_path: Path) -> None:
    # WezTerm's default on Unix backslashes spaces only, so a quote stays raw and shlex fails.
    a = write_jpeg(tmp_path / "my photo.jpg")
    b = write_png(tmp_path / "it's.png")
    pasted = str(a).replace(" ", "\\ ") + f" {b}"
    assert split_pasted(pasted) == [str(a), str(b)]


def test_wezterm_spaces_only_single_file(tmp_path: Path) -> None:
    a = write_jpeg(tmp_path / "my holiday photo.jpg")
    assert split_pasted(str(a).replace(" ", "\\ ")) == [str(a)]


def test_windows_terminal_double_quoted_paths_keep_backslashes() -> None:
    pasted = '"C:\\Users\\me\\a b.jpg" C:\\Users\\me\\c.png\r\n"D:\\x y\\z.mp4"\r\n'
    assert split_pasted(pasted) == [
        "C:\\Users\\me\\a b.jpg",
        "C:\\Users\\me\\c.png",
        "D:\\x y\\z.mp4",
    ]


def test_windows_terminal_wsl_profile_single_quotes() -> None:
    assert split_pasted("'/mnt/c/Users/me/a b.jpg' ") == ["/mnt/c/Users/me/a b.jpg"]


def test_file_uris_one_per_line_as_uri_list(media: dict[str, Path], tmp_path: Path) -> None:
    spaced = write_png(tmp_path / "a b.png")
    uris = [spaced.as_uri(), "file://localhost" + urllib.parse.quote(str(media["jpg"]))]
    pasted = "# dropped from Files\r\n" + "\r\n".join(uris) + "\r\n"
    assert split_pasted(pasted) == uris
    result = expand(split_pasted(pasted))
    assert [f.path for f in result.files] == [spaced, media["jpg"]]
    assert result.rejected == ()


def test_file_uris_space_separated(tmp_path: Path) -> None:
    a = write_png(tmp_path / "a b.png")
    b = write_png(tmp_path / "it's.png")
    pasted = f"{a.as_uri()} file://{tmp_path}/it's.png"
    assert split_pasted(pasted) == [a.as_uri(), f"file://{tmp_path}/it's.png"]
    assert [f.path for f in expand(split_pasted(pasted)).files] == [a, b]


def test_tilde_paths_expand_to_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    photo = write_jpeg(home / "x.jpg")
    monkeypatch.setenv("HOME", str(home))
    assert split_pasted("~/x.jpg") == ["~/x.jpg"]
    result = expand(split_pasted("~/x.jpg"), cwd=tmp_path)
    assert [f.path for f in result.files] == [photo]


def test_tilde_line_with_spaces_is_taken_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    write_jpeg(home / "my photo.jpg")
    monkeypatch.setenv("HOME", str(home))
    assert split_pasted("~/my photo.jpg") == ["~/my photo.jpg"]


def test_glob_pattern_expands_in_sorted_order(tmp_path: Path) -> None:
    write_png(tmp_path / "b.png")
    write_png(tmp_path / "a.png")
    write_jpeg(tmp_path / "c.jpg")
    assert split_pasted("*.png") == ["*.png"]
    assert names(expand(split_pasted("*.png"), cwd=tmp_path)) == ["a.png", "b.png"]


def test_glob_in_a_directory_whose_name_has_brackets(tmp_path: Path) -> None:
    odd = tmp_path / "[x]"
    odd.mkdir()
    write_png(odd / "a.png")
    assert names(expand(["*.png"], cwd=odd)) == ["a.png"]


def test_blank_lines_and_crlf_are_tolerated(tmp_path: Path) -> None:
    a = write_png(tmp_path / "a.png")
    b = write_png(tmp_path / "b.png")
    assert split_pasted(f"\r\n{a}\r\n\r\n   \r\n{b}\r\n") == [str(a), str(b)]
    assert split_pasted("\n \n") == []


def test_unbalanced_quote_falls_back_to_whitespace_split(tmp_path: Path) -> None:
    assert split_pasted("/nope/it's a.jpg /nope/b.png", cwd=tmp_path) == [
        "/nope/it's",
        "a.jpg",
        "/nope/b.png",
    ]


def test_relative_lines_are_checked_against_cwd(tmp_path: Path) -> None:
    write_png(tmp_path / "a b.png")
    assert split_pasted("a b.png", cwd=tmp_path) == ["a b.png"]
    assert split_pasted("a b.png", cwd=tmp_path / "elsewhere") == ["a", "b.png"]


# --- expand: what comes through ----------------------------------------------------------------


def test_expand_sniffs_each_format(media: dict[str, Path]) -> None:
    result = expand([str(p) for p in media.values()])
    assert result.rejected == ()
    kinds = {f.path.name: (f.resource_type, f.format) for f in result.files}
    assert kinds == {
        "photo.png": (IMAGE, "png"),
        "photo.jpg": (IMAGE, "jpg"),
        "clip.mp4": (VIDEO, "mp4"),
        "clip.webm": (VIDEO, "webm"),
        "song.mp3": (VIDEO, "mp3"),
        "sound.wav": (VIDEO, "wav"),
        "doc.pdf": (IMAGE, "pdf"),
        "drawing.svg": (IMAGE, "svg"),
    }
    assert result.total_bytes == sum(p.stat().st_size for p in media.values())


def test_media_file_path_is_absolute_and_resolved(tmp_path: Path) -> None:
    write_png(tmp_path / "real.png")
    (tmp_path / "link.png").symlink_to(tmp_path / "real.png")
    (tmp_path / "sub").mkdir()
    result = expand(["sub/../link.png"], cwd=tmp_path)
    assert result.files == (
        MediaFile(tmp_path / "real.png", (tmp_path / "real.png").stat().st_size, IMAGE, "png"),
    )


def test_duplicates_are_kept_once_in_first_seen_order(tmp_path: Path) -> None:
    a = write_png(tmp_path / "a.png")
    b = write_png(tmp_path / "b.png")
    (tmp_path / "alias.png").symlink_to(a)
    inputs = [str(b), "a.png", str(a), "alias.png", a.as_uri(), "*.png", str(tmp_path)]
    result = expand(inputs, cwd=tmp_path)
    assert [f.path for f in result.files] == [b, a]
    assert result.rejected == ()


def test_directory_recursion_order_hidden_and_non_media(tmp_path: Path) -> None:
    top = tmp_path / "shoot"
    (top / "b_sub").mkdir(parents=True)
    (top / "a_sub" / "deeper").mkdir(parents=True)
    (top / ".cache").mkdir()
    write_png(top / "z.png")
    write_png(top / "c.png")
    write_png(top / ".hidden.png")
    write_png(top / ".cache" / "thumb.png")
    write_png(top / "b_sub" / "b1.png")
    write_png(top / "a_sub" / "a2.png")
    write_png(top / "a_sub" / "deeper" / "d.png")
    (top / "notes.txt").write_text("shot list\n")
    (top / "c.xmp").write_text("<x:xmpmeta/>")
    result = expand([str(top)])
    relative = [str(f.path.relative_to(top)) for f in result.files]
    # Each directory's files in name order, then its subdirectories in name order.
    assert relative == ["c.png", "z.png", "a_sub/a2.png", "a_sub/deeper/d.png", "b_sub/b1.png"]
    assert result.rejected == ()


def test_directory_symlink_loops_are_walked_once(tmp_path: Path) -> None:
    top = tmp_path / "top"
    (top / "sub").mkdir(parents=True)
    write_png(top / "sub" / "a.png")
    (top / "sub" / "up").symlink_to(top)
    (top / "self").symlink_to(top, target_is_directory=True)
    result = expand([str(top)])
    assert [f.path for f in result.files] == [top / "sub" / "a.png"]


def test_literal_name_wins_over_glob_meaning(tmp_path: Path) -> None:
    star = write_png(tmp_path / "*.png")
    write_png(tmp_path / "other.png")
    bracket = write_png(tmp_path / "[1].png")
    write_png(tmp_path / "1.png")
    result = expand(["*.png", "[1].png"], cwd=tmp_path)
    assert [f.path for f in result.files] == [star, bracket]


def test_valid_inputs_come_through_next_to_rejected_ones(
    media: dict[str, Path], tmp_path: Path
) -> None:
    result = expand([str(media["png"]), str(tmp_path / "missing.jpg"), str(media["mp4"])])
    assert [f.path for f in result.files] == [media["png"], media["mp4"]]
    assert result.rejected == (Rejected(str(tmp_path / "missing.jpg"), REASON_MISSING),)


# --- expand: one test per rejection ----------------------------------------------------------


def test_reject_missing_path(tmp_path: Path) -> None:
    result = expand(["nope.jpg"], cwd=tmp_path)
    assert result.files == ()
    assert result.rejected == (Rejected("nope.jpg", REASON_MISSING),)
    assert result.rejected[0].reason == "no such file or directory; check the path"


def test_reject_broken_symlink(tmp_path: Path) -> None:
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    [rejected] = expand(["dangling.jpg"], cwd=tmp_path).rejected
    assert "symbolic link" in rejected.reason


def test_reject_unreadable_through_the_open_seam(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = write_png(tmp_path / "locked.png")
    other = write_png(tmp_path / "fine.png")

    def deny(path: Path | str, limit: int = paths.SNIFF_BYTES) -> bytes:
        if Path(path).name == "locked.png":
            raise PermissionError(13, "Permission denied", str(path))
        return Path(path).read_bytes()[:limit]

    monkeypatch.setattr(paths, "read_head", deny)
    result = expand([str(photo), str(other)])
    assert result.rejected == (Rejected(str(photo), REASON_PERMISSION),)
    assert [f.path for f in result.files] == [other]


def test_reject_unreadable_by_mode(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can read a file with mode 000; the seam test covers this case")
    photo = write_png(tmp_path / "locked.png")
    photo.chmod(0)
    try:
        assert expand([str(photo)]).rejected == (Rejected(str(photo), REASON_PERMISSION),)
    finally:
        photo.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_unreadable_file_inside_a_directory_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_png(tmp_path / "ok.png")
    write_png(tmp_path / "locked.png")

    def deny(path: Path | str, limit: int = paths.SNIFF_BYTES) -> bytes:
        if Path(path).name == "locked.png":
            raise PermissionError(13, "Permission denied", str(path))
        return Path(path).read_bytes()[:limit]

    monkeypatch.setattr(paths, "read_head", deny)
    result = expand([str(tmp_path)])
    assert names(result) == ["ok.png"]
    assert result.rejected == (Rejected(str(tmp_path / "locked.png"), REASON_PERMISSION),)


def test_reject_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").touch()
    assert expand(["empty.jpg"], cwd=tmp_path).rejected == (Rejected("empty.jpg", REASON_EMPTY),)


def test_reject_text_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a picture\n")
    assert expand(["notes.txt"], cwd=tmp_path).rejected == (
        Rejected("notes.txt", REASON_NOT_MEDIA),
    )


def test_reject_jpg_extension_with_non_image_content(tmp_path: Path) -> None:
    (tmp_path / "fake.jpg").write_text("<html>not an image</html>")
    assert expand(["fake.jpg"], cwd=tmp_path).rejected == (Rejected("fake.jpg", REASON_NOT_MEDIA),)


def test_reject_directory_without_media(tmp_path: Path) -> None:
    empty = tmp_path / "docs"
    empty.mkdir()
    (empty / "readme.txt").write_text("hello")
    write_png(empty / ".hidden.png")
    assert expand([str(empty)]).rejected == (Rejected(str(empty), REASON_EMPTY_DIR),)


def test_reject_glob_matching_only_non_media(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    [rejected] = expand(["*.txt"], cwd=tmp_path).rejected
    assert rejected == Rejected("*.txt", paths.REASON_NO_MEDIA_MATCH)


def test_empty_file_with_a_media_name_inside_a_directory_is_reported(tmp_path: Path) -> None:
    write_png(tmp_path / "a.png")
    (tmp_path / "interrupted.jpg").touch()
    (tmp_path / "lockfile").touch()  # empty but not pretending to be media: skipped silently
    result = expand([str(tmp_path)])
    assert names(result) == ["a.png"]
    assert result.rejected == (Rejected(str(tmp_path / "interrupted.jpg"), REASON_EMPTY),)


def test_reject_glob_matching_nothing(tmp_path: Path) -> None:
    write_png(tmp_path / "a.png")
    assert expand(["*.gif"], cwd=tmp_path).rejected == (Rejected("*.gif", REASON_NO_MATCH),)


@pytest.mark.timeout(10)  # a blocking open would hang here, not fail
def test_reject_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    assert expand([str(fifo)]).rejected == (Rejected(str(fifo), REASON_NOT_REGULAR),)
    assert sniff(fifo) is None  # also must not block: nobody writes to this pipe


def test_reject_device() -> None:
    assert expand(["/dev/null"]).rejected == (Rejected("/dev/null", REASON_NOT_REGULAR),)


def test_reject_remote_uri() -> None:
    inputs = ["file://server/share/a.jpg", "https://example.com/a.jpg"]
    assert expand(inputs).rejected == tuple(Rejected(u, REASON_NOT_LOCAL_URI) for u in inputs)


def test_reasons_are_single_sentences_without_traceback_text(tmp_path: Path) -> None:
    (tmp_path / "empty.png").touch()
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "dir").mkdir()
    inputs = ["missing.png", "empty.png", "notes.txt", "dir", "*.gif", "/dev/null", "x" * 300]
    result = expand(inputs, cwd=tmp_path)
    assert [r.input for r in result.rejected] == inputs
    for rejected in result.rejected:
        assert "Traceback" not in rejected.reason and "Errno" not in rejected.reason
        assert "\n" not in rejected.reason and rejected.reason.count(";") <= 1


# --- hostile file names ----------------------------------------------------------------------


def test_name_with_markup_closing_tag(tmp_path: Path) -> None:
    # "[/].jpg" as a path is the file "].jpg" inside a directory named "[".
    (tmp_path / "[").mkdir()
    photo = write_jpeg(tmp_path / "[" / "].jpg")
    assert names(expand(["[/].jpg"], cwd=tmp_path)) == ["].jpg"]
    assert split_pasted(gnome_quoted(photo) + " ") == [str(photo)]


def test_name_with_unbalanced_bracket(tmp_path: Path) -> None:
    (tmp_path / "a[").mkdir()
    photo = write_png(tmp_path / "a[" / "b.png")
    assert [f.path for f in expand(["a[/b.png"], cwd=tmp_path).files] == [photo]
    assert split_pasted(str(photo)) == [str(photo)]


def test_name_with_escape_sequence(tmp_path: Path) -> None:
    photo = write_png(tmp_path / "a\x1b]52;c;eA==\x07\x1b[2Jb.png")
    assert [f.path for f in expand([str(photo)]).files] == [photo]
    assert split_pasted(backslash_escaped(photo)) == [str(photo)]
    missing = str(tmp_path / "gone\x1b]0;title\x07.png")
    assert expand([missing]).rejected == (Rejected(missing, REASON_MISSING),)  # stored raw


def test_name_with_newline(tmp_path: Path) -> None:
    photo = write_png(tmp_path / "line\nbreak.png")
    assert [f.path for f in expand([str(photo)]).files] == [photo]


def test_name_with_non_utf8_bytes(tmp_path: Path) -> None:
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9 \xff.png")
    write_png(Path(os.fsdecode(raw)))
    [found] = expand([os.fsdecode(raw)]).files
    assert os.fsencode(found.path) == raw
    via_uri = "file://" + urllib.parse.quote_from_bytes(raw)
    assert [f.path for f in expand(split_pasted(via_uri)).files] == [found.path]


def test_name_of_255_bytes(tmp_path: Path) -> None:
    photo = write_png(tmp_path / ("x" * 251 + ".png"))
    assert len(os.fsencode(photo.name)) == 255
    assert [f.path for f in expand([str(photo)]).files] == [photo]
    too_long = str(tmp_path / ("x" * 252 + ".png"))
    assert expand([too_long]).rejected == (Rejected(too_long, REASON_TOO_LONG),)


def test_input_with_nul_is_rejected_not_raised(tmp_path: Path) -> None:
    [rejected] = expand(["a\x00b.png"], cwd=tmp_path).rejected
    assert "NUL" in rejected.reason


# --- sniff -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (MOV, (VIDEO, "mov")),
        (M4A, (VIDEO, "m4a")),
        (HEIC, (IMAGE, "heic")),
        (AVIF, (IMAGE, "avif")),
        (MKV, (VIDEO, "mkv")),
        (MP3_NO_TAG, (VIDEO, "mp3")),
        (OGG, (VIDEO, "ogg")),
        (FLAC, (VIDEO, "flac")),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 20, (IMAGE, "webp")),
        (b"GIF89a" + b"\x00" * 20, (IMAGE, "gif")),
        (b"II*\x00" + b"\x00" * 20, (IMAGE, "tiff")),
        (
            b"BM" + b"\x46\x00\x00\x00" + b"\x00" * 8 + b"\x28\x00\x00\x00" + b"\x00" * 40,
            (IMAGE, "bmp"),
        ),
        (b"BMW service notes\n" * 4, None),
        (b"hello world\n", None),
        (b"\x00" * 64, None),
    ],
)
def test_sniff_bytes(data: bytes, expected: tuple[ResourceType, str] | None) -> None:
    assert sniff_bytes(data) == expected


def test_sniff_real_files(media: dict[str, Path]) -> None:
    assert sniff(media["jpg"]) == (IMAGE, "jpg")
    assert sniff(media["webm"]) == (VIDEO, "webm")


def test_sniff_svg_needs_svg_content_or_an_svg_name_for_xml(tmp_path: Path) -> None:
    long_prolog = b'<?xml version="1.0"?>\n<!-- ' + b"x" * 2000 + b" -->\n<svg/>"
    assert sniff(write(tmp_path / "late.svg", long_prolog)) == (IMAGE, "svg")
    assert sniff(write(tmp_path / "late.xml", long_prolog)) is None
    assert sniff(write(tmp_path / "plain.svg", b"just some text")) is None
    assert sniff(write(tmp_path / "noext", SVG)) == (IMAGE, "svg")


def test_sniff_reads_only_the_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = write(tmp_path / "big.mp4", MP4 + b"\x00" * 100_000)
    limits: list[int] = []
    real = paths.read_head

    def spy(path: Path | str, limit: int = paths.SNIFF_BYTES) -> bytes:
        limits.append(limit)
        data = real(path, limit)
        assert len(data) <= 1024
        return data

    monkeypatch.setattr(paths, "read_head", spy)
    assert sniff(big) == (VIDEO, "mp4")
    assert limits == [paths.SNIFF_BYTES] and paths.SNIFF_BYTES <= 1024


def test_sniff_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        sniff(tmp_path / "nope.png")
