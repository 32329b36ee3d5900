"""A real, throwaway PostgreSQL server for tests: `initdb` into a temporary folder, `pg_ctl start`.

Use the `postgres_server` fixture (session-scoped: one server per test run) by importing it into
a test module, or `running_postgres()` as a context manager. The server listens on 127.0.0.1 at
a free port and on a unix socket in its own temporary folder, trusts every local connection as
the `postgres` superuser, and is stopped and deleted afterwards, even when a test fails.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
`postgres` OS user (`runuser`), in a folder that user owns. Without the binaries (or without that
user, when we are root) the fixture skips its tests with the reason.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

# Override with the folder holding initdb/pg_ctl/psql when they are somewhere unusual.
BINDIR_VARIABLE = "MEDIA_TUI_PG_BINDIR"
SUPERUSER = "postgres"


def find_bindir() -> Path | None:
    """The PostgreSQL binaries' folder: the override, then PATH, then Debian's newest version."""
    candidates: list[str] = []
    if os.environ.get(BINDIR_VARIABLE):
        candidates.append(os.environ[BINDIR_VARIABLE])
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    # Debian puts them outside PATH, one folder per major version; prefer the newest.
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(debian)
    for folder in candidates:
        if all((Path(folder) / tool).is_file() for tool in ("initdb", "pg_ctl", "psql")):
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A running server; `psql()` runs SQL on it as the superuser."""

    bindir: Path
    base: Path  # owns data/, socket/ and server.log; deleted on stop
    port: int
    run_as: str | None  # the OS user the server runs as, when we are root

    host = "127.0.0.1"
    user = SUPERUSER

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "socket"

    @property
    def log_file(self) -> Path:
        return self.base / "server.log"

    def dsn(self, database: str = "postgres") -> str:
        """A libpq connection string over TCP, for clients other than psql."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def psql(
        self,
        sql: str | None = None,
        *,
        file: Path | None = None,
        database: str = "postgres",
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run `sql` (or a script `file`) with ON_ERROR_STOP; unaligned, tuples-only output.

        With `check`, a failure raises AssertionError carrying psql's stderr.
        """
        args = [
            str(self.bindir / "psql"),
            "--no-psqlrc",
            "--no-align",
            "--tuples-only",
            "--set=ON_ERROR_STOP=1",
            f"--host={self.socket_dir}",
            f"--port={self.port}",
            f"--username={self.user}",
            f"--dbname={database}",
        ]
        if file is not None:
            args.append(f"--file={file}")
        stdin = None
        if sql is not None:
            # Through stdin rather than -c, so a multi-statement script behaves as in a file.
            stdin = sql
        result = subprocess.run(
            args, input=stdin, capture_output=True, text=True, timeout=60, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"psql failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def query(self, sql: str, database: str = "postgres") -> str:
        """The output of one query, stripped: e.g. `query("select 1")` == "1"."""
        return self.psql(sql, database=database).stdout.strip()

    def stop(self) -> None:
        """Stop immediately (tests keep nothing) and delete the folder; safe to call twice."""
        if self.data_dir.exists():
            _run(
                self.run_as,
                [str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "immediate"],
                check=False,
            )
        shutil.rmtree(self.base, ignore_errors=True)


def _run(
    run_as: str | None, args: Sequence[str], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    command = ["runuser", "-u", run_as, "--", *args] if run_as else list(args)
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{Path(args[0]).name} failed ({result.returncode}): {(result.stderr or result.stdout).strip()}"
        )
    return result


def skip_reason() -> str | None:
    """Why a server cannot be started here, or None if it can."""
    if find_bindir() is None:
        return (
            "PostgreSQL binaries (initdb, pg_ctl, psql) not found on PATH, in /usr/lib/postgresql/*/bin "
            f"or in ${BINDIR_VARIABLE}; install them with `apt-get install postgresql`."
        )
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root needs `runuser` to start PostgreSQL as another user."
        try:
            import pwd

            pwd.getpwnam(SUPERUSER)
        except KeyError:
            return f"running as root needs a {SUPERUSER!r} OS user to run PostgreSQL (it refuses root)."
    return None


def start_postgres() -> PostgresServer:
    """initdb and start a server; the caller must `stop()` it (see `running_postgres`)."""
    reason = skip_reason()
    if reason:
        raise RuntimeError(reason)
    bindir = find_bindir()
    assert bindir is not None
    run_as = SUPERUSER if os.geteuid() == 0 else None
    # Not pytest's tmp_path: its parents are root-only (0700), which the postgres user could not
    # traverse. /tmp is world-traversable; the folder itself is handed to the server's user.
    base = Path(tempfile.mkdtemp(prefix="media-tui-pg-"))
    try:
        (base / "socket").mkdir()
        if run_as:
            shutil.chown(base, run_as)
            shutil.chown(base / "socket", run_as)
        _run(
            run_as,
            [
                str(bindir / "initdb"),
                "-D",
                str(base / "data"),
                f"--username={SUPERUSER}",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",  # a throwaway cluster: skip the fsyncs, seconds faster
            ],
        )
        server: PostgresServer | None = None
        for _attempt in range(3):  # another process may grab the free port before we bind it
            server = PostgresServer(bindir=bindir, base=base, port=_free_port(), run_as=run_as)
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-c port={server.port}",
                    f"-c unix_socket_directories={server.socket_dir}",
                    # Durability is pointless for a test cluster; these make DDL much quicker.
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    # Logical decoding is what Supabase Realtime uses; keep the cluster like it.
                    "-c wal_level=logical",
                ]
            )
            started = _run(
                run_as,
                [
                    str(bindir / "pg_ctl"),
                    "start",
                    "-D",
                    str(server.data_dir),
                    "-l",
                    str(server.log_file),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    options,
                ],
                check=False,
            )
            if started.returncode == 0:
                return server
        log = server.log_file.read_text(errors="replace") if server else ""
        raise RuntimeError(f"PostgreSQL did not start: {started.stderr.strip()}\n{log[-2000:]}")
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A started server, stopped and deleted on exit whatever happened inside."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole test session; skips the test if none can run here."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with running_postgres() as server:
        yield server
