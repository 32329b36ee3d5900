"""`schema_sql`'s table-name validation and the `media-tui schema` command (offline, no keys)."""

from __future__ import annotations

import os

import pytest

from media_tui.cli import main
from media_tui.errors import UsageError
from media_tui.schema import MAX_TABLE_NAME, schema_sql, validate_table_name


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer settings or credentials leak in: the command must need none."""
    for name in list(os.environ):
        if name.startswith(("CLOUDINARY_", "SUPABASE_", "MEDIA_TUI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MEDIA_TUI_CONFIG", os.devnull)


@pytest.mark.parametrize("table", ["media_assets", "Assets2", "_x", "a" * MAX_TABLE_NAME])
def test_safe_names_are_accepted_and_quoted(table: str) -> None:
    assert validate_table_name(table) == table
    sql = schema_sql(table)
    assert f'create table if not exists public."{table}" (' in sql
    assert f"tablename = '{table}'" in sql


@pytest.mark.parametrize(
    "table",
    [
        "bad;name",
        'x"; drop table users; --',
        "",
        "1abc",
        "has space",
        "public.media_assets",
        "tåble",
        "a" * (MAX_TABLE_NAME + 1),
    ],
)
def test_unsafe_names_are_refused_with_one_sentence(table: str) -> None:
    with pytest.raises(UsageError) as caught:
        schema_sql(table)
    message = str(caught.value)
    assert repr(table) in message
    assert message.endswith(".") and "\n" not in message


def test_default_table_and_every_part_present() -> None:
    sql = schema_sql()
    for part in (
        'create table if not exists public."media_assets"',
        "public_id         text not null unique",
        "before insert or update on",
        "greatest(now(), old.updated_at + interval '1 microsecond')",
        "using gin (tags)",
        "enable row level security",
        "alter publication supabase_realtime add table",
        "replica identity full",
        "to anon, authenticated",
    ):
        assert part in sql, part


def test_cli_prints_the_sql(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    out, err = capsys.readouterr()
    assert out == schema_sql()
    assert 'create table if not exists public."media_assets"' in out and "supabase_realtime" in out
    assert err == ""


def test_cli_table_option_and_configured_table(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["schema", "--table", "photos"]) == 0
    assert 'public."photos"' in capsys.readouterr().out
    # Without --table the configured name is used, even when the configured catalogue is
    # Supabase and no keys are set: printing SQL needs none.
    monkeypatch.setenv("MEDIA_TUI_TABLE", "clips")
    monkeypatch.setenv("MEDIA_TUI_CATALOG", "supabase")
    monkeypatch.setenv("MEDIA_TUI_STORAGE", "cloudinary")
    assert main(["schema"]) == 0
    assert 'public."clips"' in capsys.readouterr().out


def test_cli_bad_table_exits_2_with_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--table", "bad;name"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("media-tui: the table name 'bad;name' is not a plain SQL identifier")
    assert err.count("\n") == 1 and err.rstrip().endswith(".")
    assert "Traceback" not in err
