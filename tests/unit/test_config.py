"""Settings precedence (flags > env > file > defaults), URL parsing, clear errors, masked secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from media_tui.config import Secret, load_settings, parse_cloudinary_url
from media_tui.errors import ConfigError

SECRET = "s3cr3t-value-never-shown"


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("media_tui.config.default_config_path", lambda: tmp_path / "absent.toml")
    monkeypatch.setattr("media_tui.config.default_library", lambda: tmp_path / "default-lib")


def write_config(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return {"MEDIA_TUI_CONFIG": str(path)}


def test_defaults_are_local(tmp_path: Path) -> None:
    s = load_settings({}, {})
    assert (s.storage, s.catalog, s.library, s.concurrency, s.table) == (
        "local",
        "local",
        tmp_path / "default-lib",
        4,
        "media_assets",
    )


def test_flags_beat_env_beat_file(tmp_path: Path) -> None:
    env = write_config(tmp_path, 'library = "/from/file"\nconcurrency = 3\ntable = "file_table"\n')
    assert load_settings({}, env).library == Path("/from/file")
    assert load_settings({}, env).concurrency == 3
    assert load_settings({}, env).table == "file_table"
    env["MEDIA_TUI_LIBRARY"] = "/from/env"
    env["MEDIA_TUI_TABLE"] = "env_table"
    assert load_settings({}, env).library == Path("/from/env")
    assert load_settings({}, env).table == "env_table"
    s = load_settings({"library": "/from/flag", "concurrency": 9}, env)
    assert s.library == Path("/from/flag") and s.concurrency == 9


def test_cloudinary_url_is_parsed_like_the_sdk() -> None:
    c = parse_cloudinary_url(
        f"cloudinary://123456:{SECRET}@MyCloud?upload_prefix=http://127.0.0.1:9999"
    )
    assert c.cloud_name == "mycloud" and c.api_key == "123456"
    assert c.api_secret.value == SECRET
    assert c.api_base == "http://127.0.0.1:9999"
    assert c.signature_algorithm == "sha1"


def test_cloud_credentials_make_cloud_the_default(tmp_path: Path) -> None:
    env = {
        "CLOUDINARY_URL": f"cloudinary://1:{SECRET}@demo",
        "SUPABASE_URL": "http://127.0.0.1:1",
        "SUPABASE_ANON_KEY": "k" * 20,
    }
    s = load_settings({}, env)
    assert (s.storage, s.catalog) == ("cloudinary", "supabase")
    assert s.supabase is not None and s.supabase.key_source == "SUPABASE_ANON_KEY"
    assert load_settings({"storage": "local", "catalog": "local"}, env).storage == "local"


def test_trio_wins_over_url_as_in_the_sdk() -> None:
    env = {
        "CLOUDINARY_URL": "cloudinary://1:x@fromurl",
        "CLOUDINARY_CLOUD_NAME": "Trio",
        "CLOUDINARY_API_KEY": "2",
        "CLOUDINARY_API_SECRET": SECRET,
    }
    c = load_settings({}, env).cloudinary
    assert c is not None and c.cloud_name == "trio" and c.api_key == "2"


def test_service_role_key_is_preferred_and_next_public_names_work() -> None:
    env = {
        "NEXT_PUBLIC_SUPABASE_URL": "https://x.supabase.co/",
        "NEXT_PUBLIC_SUPABASE_ANON_KEY": "anon",
        "SUPABASE_SERVICE_ROLE_KEY": "service",
    }
    sb = load_settings({}, env).supabase
    assert sb is not None and sb.key.value == "service" and sb.url == "https://x.supabase.co"


@pytest.mark.parametrize(
    "url",
    [
        "https://1:secret-in-url@demo",
        "cloudinary://1@demo",
        f"cloudinary://:{SECRET}@demo",
        f"cloudinary://1:{SECRET}@",
        f"cloudinary://1:{SECRET}@demo?upload_prefix=ftp://x",
        f"cloudinary://1:{SECRET}@demo?signature_algorithm=md5",
    ],
)
def test_malformed_cloudinary_url_is_one_clear_sentence_without_the_secret(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({}, {"CLOUDINARY_URL": url})
    message = str(caught.value)
    assert "CLOUDINARY_URL" in message
    assert SECRET not in message and "secret-in-url" not in message
    assert message.count("\n") == 0


def test_supabase_url_without_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match="SUPABASE_URL is set but no Supabase key"):
        load_settings({}, {"SUPABASE_URL": "https://x.supabase.co"})


def test_unreadable_and_malformed_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({}, {"MEDIA_TUI_CONFIG": str(tmp_path / "missing.toml")})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({}, write_config(tmp_path, "library = \n"))
    directory = tmp_path / "a-directory.toml"
    directory.mkdir()
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_settings({}, {"MEDIA_TUI_CONFIG": str(directory)})
    (tmp_path / "bad.toml").write_bytes(b"\xff\xfe garbage")
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_settings({}, {"MEDIA_TUI_CONFIG": str(tmp_path / "bad.toml")})


def test_config_file_credentials(tmp_path: Path) -> None:
    env = write_config(
        tmp_path,
        f'[cloudinary]\nurl = "cloudinary://k:{SECRET}@demo"\n[supabase]\nurl = "http://127.0.0.1:1"\nkey = "kk"\ntable = "t2"\n',
    )
    s = load_settings({}, env)
    assert s.cloudinary is not None and s.cloudinary.api_secret.value == SECRET
    assert s.supabase is not None and s.supabase.table == "t2" and s.table == "t2"


def test_cloud_storage_without_credentials_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--storage local"):
        load_settings({"storage": "cloudinary"}, {})


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1000"])
def test_bad_concurrency(value: str) -> None:
    with pytest.raises(ConfigError, match="concurrency"):
        load_settings({}, {"MEDIA_TUI_CONCURRENCY": value})


def test_secrets_are_masked_everywhere() -> None:
    env = {
        "CLOUDINARY_URL": f"cloudinary://1:{SECRET}@demo",
        "SUPABASE_URL": "http://127.0.0.1:1",
        "SUPABASE_KEY": SECRET,
    }
    s = load_settings({}, env)
    for text in (
        repr(s),
        str(s),
        f"{s}",
        repr(s.cloudinary),
        str(Secret(SECRET)),
        Secret(SECRET).masked(),
    ):
        assert SECRET not in text


def test_a_relative_library_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Objects are addressed by file:// URLs; a relative library path failed every upload."""
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"library": "lib"}, env={"MEDIA_TUI_CONFIG": os.devnull})
    assert settings.library == tmp_path / "lib"
    assert settings.library.is_absolute()
