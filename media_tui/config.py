"""Settings: command-line flags over environment over the TOML config file over defaults.

The names are the contract in DESIGN §3. Every problem becomes a `ConfigError` with one sentence
naming the variable or file and what to do — never the secret itself. Secrets are held in
`Secret`, whose repr and str are masked, so a settings object can be logged or shown safely.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import parse_qs, urlsplit

import platformdirs

from media_tui.errors import ConfigError

StorageKind = Literal["local", "cloudinary"]
CatalogKind = Literal["local", "supabase"]

DEFAULT_TABLE = "media_assets"
DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 64
DEFAULT_CHUNK_THRESHOLD = 20_000_000
SUPABASE_KEY_VARIABLES = (
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_KEY",
    "SUPABASE_ANON_KEY",
    "NEXT_PUBLIC_SUPABASE_ANON_KEY",
)


@dataclass(frozen=True, slots=True)
class Secret:
    """A credential that never shows itself in a repr, an f-string or a log line."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def masked(self) -> str:
        """A hint for `doctor`: the length and the last two characters, never more."""
        tail = self.value[-2:] if len(self.value) >= 12 else ""
        return f"***{tail} ({len(self.value)} chars)"


@dataclass(frozen=True, slots=True)
class CloudinarySettings:
    cloud_name: str
    api_key: str
    api_secret: Secret
    upload_prefix: str | None = None
    signature_algorithm: str = "sha1"
    source: str = "CLOUDINARY_URL"

    @property
    def api_base(self) -> str:
        """Where every API call goes; `upload_prefix` moves them all (that is how tests point here)."""
        return (self.upload_prefix or "https://api.cloudinary.com").rstrip("/")


@dataclass(frozen=True, slots=True)
class SupabaseSettings:
    url: str
    key: Secret
    key_source: str
    table: str = DEFAULT_TABLE


@dataclass(frozen=True, slots=True)
class Settings:
    library: Path
    storage: StorageKind
    catalog: CatalogKind
    cloudinary: CloudinarySettings | None = None
    supabase: SupabaseSettings | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    chunk_threshold: int = DEFAULT_CHUNK_THRESHOLD
    table: str = DEFAULT_TABLE
    config_file: Path | None = None  # the file that was read, if any

    @property
    def journal_dir(self) -> Path:
        return self.library / "journal"


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir("media-tui")) / "config.toml"


def default_library() -> Path:
    return Path(platformdirs.user_data_dir("media-tui"))


def load_settings(
    flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Resolve the settings. `flags` holds only options given on the command line (None = unset)."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env = os.environ if env is None else env
    config_file, file_values = _read_config_file(env)

    cloudinary = _cloudinary_from_env(env) or _cloudinary_from_file(file_values, config_file)
    file_table = file_values.get("supabase", {}).get("table") or file_values.get("table")
    table = str(
        _pick(
            flags,
            "table",
            env,
            "MEDIA_TUI_TABLE",
            {"table": file_table} if file_table else {},
            "table",
            DEFAULT_TABLE,
        )
    )
    supabase = _supabase_from_env(env, table) or _supabase_from_file(
        file_values, config_file, table
    )

    library_value = _pick(flags, "library", env, "MEDIA_TUI_LIBRARY", file_values, "library", None)
    # Absolute from here on: objects are addressed by file:// URLs, which a relative path has not.
    library = (Path(library_value).expanduser() if library_value else default_library()).absolute()

    storage = _pick(flags, "storage", env, "MEDIA_TUI_STORAGE", file_values, "storage", None)
    storage = storage or ("cloudinary" if cloudinary else "local")
    catalog = _pick(flags, "catalog", env, "MEDIA_TUI_CATALOG", file_values, "catalog", None)
    catalog = catalog or ("supabase" if supabase else "local")
    if storage not in ("local", "cloudinary"):
        raise ConfigError(
            f"storage must be 'local' or 'cloudinary', not {storage!r}; fix --storage or the config file."
        )
    if catalog not in ("local", "supabase"):
        raise ConfigError(
            f"catalog must be 'local' or 'supabase', not {catalog!r}; fix --catalog or the config file."
        )
    if storage == "cloudinary" and cloudinary is None:
        raise ConfigError(
            "Cloudinary storage needs credentials: set CLOUDINARY_URL=cloudinary://KEY:SECRET@CLOUD "
            "(or CLOUDINARY_CLOUD_NAME, CLOUDINARY_API_KEY and CLOUDINARY_API_SECRET), or use --storage local."
        )
    if catalog == "supabase" and supabase is None:
        raise ConfigError(
            "the Supabase catalogue needs SUPABASE_URL and a key (SUPABASE_SERVICE_ROLE_KEY, SUPABASE_KEY "
            "or SUPABASE_ANON_KEY); set them or use --catalog local."
        )

    concurrency = _positive_int(
        _pick(
            flags,
            "concurrency",
            env,
            "MEDIA_TUI_CONCURRENCY",
            file_values,
            "concurrency",
            DEFAULT_CONCURRENCY,
        ),
        "concurrency",
        MAX_CONCURRENCY,
    )
    chunk_threshold = _positive_int(
        _pick(
            flags,
            "chunk_threshold",
            env,
            "MEDIA_TUI_CHUNK_THRESHOLD",
            file_values,
            "chunk_threshold",
            DEFAULT_CHUNK_THRESHOLD,
        ),
        "chunk_threshold",
        None,
    )
    return Settings(
        library=library,
        storage=cast(StorageKind, storage),
        catalog=cast(CatalogKind, catalog),
        cloudinary=cloudinary,
        supabase=supabase,
        concurrency=concurrency,
        chunk_threshold=chunk_threshold,
        table=table,
        config_file=config_file,
    )


def _pick(
    flags: Mapping[str, Any],
    flag: str,
    env: Mapping[str, str],
    variable: str,
    file_values: Mapping[str, Any],
    key: str,
    default: Any,
) -> Any:
    if flag in flags:
        return flags[flag]
    if env.get(variable):
        return env[variable]
    if key in file_values:
        return file_values[key]
    return default


def _positive_int(value: Any, name: str, maximum: int | None) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name} must be a whole number, not {value!r}; fix the flag, variable or config file."
        ) from None
    if number < 1 or (maximum is not None and number > maximum):
        limit = f"between 1 and {maximum}" if maximum else "at least 1"
        raise ConfigError(f"{name} must be {limit}, not {number}; pick a value in range.")
    return number


def _read_config_file(env: Mapping[str, str]) -> tuple[Path | None, dict[str, Any]]:
    explicit = env.get("MEDIA_TUI_CONFIG")
    path = Path(explicit).expanduser() if explicit else default_config_path()
    if not explicit and not path.exists():
        return None, {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"the config file {path} named by MEDIA_TUI_CONFIG does not exist; create it or unset the variable."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(
            f"cannot read the config file {path} ({reason}); fix its permissions or point MEDIA_TUI_CONFIG elsewhere."
        ) from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"the config file {path} is not valid TOML ({exc}); fix it or move it away."
        ) from None
    for section in ("cloudinary", "supabase"):
        if section in values and not isinstance(values[section], dict):
            raise ConfigError(
                f"in the config file {path}, [{section}] must be a table; fix that entry."
            )
    return path, values


def parse_cloudinary_url(url: str, source: str = "CLOUDINARY_URL") -> CloudinarySettings:
    """Read `cloudinary://KEY:SECRET@CLOUD[?upload_prefix=URL]` as the Cloudinary SDK does.

    As in the SDK the cloud name is lower-cased (it is a URL host) and the secret is taken
    verbatim, not percent-decoded. The message on failure never repeats the URL: it holds a secret.
    """
    problem = f"{source} is malformed: expected cloudinary://API_KEY:API_SECRET@CLOUD_NAME; check the value."
    try:
        parts = urlsplit(url.strip())
        cloud_name = parts.hostname
        api_key, api_secret = parts.username, parts.password
    except ValueError:
        raise ConfigError(problem) from None
    if parts.scheme != "cloudinary" or not cloud_name or not api_key or not api_secret:
        raise ConfigError(problem)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items() if v and v[-1]}
    upload_prefix = query.get("upload_prefix")
    if upload_prefix is not None:
        _check_http_url(upload_prefix, f"{source}'s upload_prefix")
    return CloudinarySettings(
        cloud_name=cloud_name,
        api_key=api_key,
        api_secret=Secret(api_secret),
        upload_prefix=upload_prefix,
        signature_algorithm=_signature_algorithm(query.get("signature_algorithm", "sha1"), source),
        source=source,
    )


def _signature_algorithm(value: str, source: str) -> str:
    algorithm = value.lower()
    if algorithm not in ("sha1", "sha256"):
        raise ConfigError(f"{source} asks for signature_algorithm {value!r}; use sha1 or sha256.")
    return algorithm


def _check_http_url(value: str, what: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{what} must be an http(s) URL such as https://example.com; check it.")


def _cloudinary_from_trio(
    values: Mapping[str, Any], names: tuple[str, str, str, str, str], source: str
) -> CloudinarySettings:
    cloud_key, key_key, secret_key, prefix_key, algorithm_key = names
    missing = [n for n in (cloud_key, key_key, secret_key) if not values.get(n)]
    if missing:
        raise ConfigError(
            f"{source} sets {cloud_key} but not {', '.join(missing)}; set all three or none."
        )
    prefix = values.get(prefix_key) or None
    if prefix:
        _check_http_url(str(prefix), prefix_key)
    return CloudinarySettings(
        cloud_name=str(values[cloud_key]).lower(),
        api_key=str(values[key_key]),
        api_secret=Secret(str(values[secret_key])),
        upload_prefix=str(prefix) if prefix else None,
        signature_algorithm=_signature_algorithm(str(values.get(algorithm_key) or "sha1"), source),
        source=source,
    )


def _cloudinary_from_env(env: Mapping[str, str]) -> CloudinarySettings | None:
    # As in the SDK: once CLOUDINARY_CLOUD_NAME is set, CLOUDINARY_URL is ignored.
    if env.get("CLOUDINARY_CLOUD_NAME"):
        return _cloudinary_from_trio(
            env,
            (
                "CLOUDINARY_CLOUD_NAME",
                "CLOUDINARY_API_KEY",
                "CLOUDINARY_API_SECRET",
                "CLOUDINARY_UPLOAD_PREFIX",
                "CLOUDINARY_SIGNATURE_ALGORITHM",
            ),
            "the environment",
        )
    if env.get("CLOUDINARY_URL"):
        return parse_cloudinary_url(env["CLOUDINARY_URL"])
    return None


def _cloudinary_from_file(
    values: Mapping[str, Any], path: Path | None
) -> CloudinarySettings | None:
    section = values.get("cloudinary")
    if not section:
        return None
    where = f"the config file {path}"
    if section.get("url"):
        return parse_cloudinary_url(str(section["url"]), f"[cloudinary] url in {where}")
    return _cloudinary_from_trio(
        section,
        ("cloud_name", "api_key", "api_secret", "upload_prefix", "signature_algorithm"),
        where,
    )


def _supabase_from_env(env: Mapping[str, str], table: str) -> SupabaseSettings | None:
    url_variable = next(
        (n for n in ("SUPABASE_URL", "NEXT_PUBLIC_SUPABASE_URL") if env.get(n)), None
    )
    if url_variable is None:
        return None
    key_variable = next((n for n in SUPABASE_KEY_VARIABLES if env.get(n)), None)
    if key_variable is None:
        raise ConfigError(
            f"{url_variable} is set but no Supabase key is: set SUPABASE_SERVICE_ROLE_KEY, SUPABASE_KEY or SUPABASE_ANON_KEY."
        )
    _check_http_url(env[url_variable], url_variable)
    return SupabaseSettings(
        url=env[url_variable].rstrip("/"),
        key=Secret(env[key_variable]),
        key_source=key_variable,
        table=table,
    )


def _supabase_from_file(
    values: Mapping[str, Any], path: Path | None, table: str
) -> SupabaseSettings | None:
    section = values.get("supabase")
    if not section or not section.get("url"):
        return None
    if not section.get("key"):
        raise ConfigError(
            f'[supabase] in the config file {path} has a url but no key; add key = "…".'
        )
    _check_http_url(str(section["url"]), f"[supabase] url in {path}")
    return SupabaseSettings(
        url=str(section["url"]).rstrip("/"),
        key=Secret(str(section["key"])),
        key_source=f"{path}",
        table=table,
    )
