"""`media-tui schema`'s SQL applied to a real PostgreSQL server, set up as Supabase would be.

The Supabase API roles and the `supabase_realtime` publication are created first, then the
script is applied twice through psql (ON_ERROR_STOP), which proves it is idempotent; every
test then checks one promise the script makes, with SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from media_tui.model import MediaAsset
from media_tui.schema import schema_sql
from tests.integration.postgres_server import PostgresServer, postgres_server

__all__ = ["postgres_server"]  # the fixture, imported so pytest finds it

pytestmark = pytest.mark.slow

DATABASE = "schema_test"
TABLE = 'public."media_assets"'

# What a Supabase project already has before anyone runs our script. Roles are cluster-wide,
# so they are created only if missing: other modules may share the session's server.
SUPABASE_ROLES = """
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin bypassrls;
  end if;
end
$$;
"""


@pytest.fixture(scope="module")
def db(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PostgresServer]:
    """A fresh database with the schema applied twice; `db.query(sql)` runs in it."""
    server = postgres_server
    server.psql(SUPABASE_ROLES)
    server.psql(f"drop database if exists {DATABASE}; create database {DATABASE};")
    server.psql("create publication supabase_realtime;", database=DATABASE)
    script = tmp_path_factory.mktemp("schema") / "schema.sql"
    script.write_text(schema_sql(), encoding="utf-8")
    script.chmod(0o644)
    for _ in range(2):  # twice: the second run must succeed on the objects the first made
        server.psql(file=script, database=DATABASE)
    yield server
    server.psql(f"drop database if exists {DATABASE} with (force);")


def query(db: PostgresServer, sql: str) -> str:
    return db.query(sql, database=DATABASE)


def fails(db: PostgresServer, sql: str) -> str:
    """Run `sql`, assert it fails, and return psql's error text."""
    result = db.psql(sql, database=DATABASE, check=False)
    assert result.returncode != 0, f"expected an error from: {sql}"
    return result.stderr


def returned_row(output: str) -> str:
    """The `id|bytes` line of a `returning` statement's output (psql also prints command tags)."""
    return next(line for line in output.splitlines() if "|" in line)


def test_table_holds_every_asset_field(db: PostgresServer) -> None:
    columns = set(
        query(
            db,
            "select column_name from information_schema.columns "
            "where table_schema = 'public' and table_name = 'media_assets'",
        ).split()
    )
    assert columns == set(MediaAsset(public_id="x").to_json())


def test_public_id_is_unique(db: PostgresServer) -> None:
    query(db, f"insert into {TABLE} (public_id) values ('dup/one')")
    error = fails(db, f"insert into {TABLE} (public_id) values ('dup/one')")
    assert "duplicate key value violates unique constraint" in error


def test_resource_type_is_checked(db: PostgresServer) -> None:
    error = fails(
        db, f"insert into {TABLE} (public_id, resource_type) values ('bad/type', 'audio')"
    )
    assert "violates check constraint" in error
    query(db, f"insert into {TABLE} (public_id, resource_type) values ('ok/video', 'video')")


def test_updated_at_strictly_increases(db: PostgresServer) -> None:
    # Both updates in one transaction, where now() stands still: the trigger must still advance.
    out = query(
        db,
        f"""
        begin;
        insert into {TABLE} (public_id) values ('clock/one');
        select updated_at from {TABLE} where public_id = 'clock/one';
        update {TABLE} set bytes = 1 where public_id = 'clock/one';
        select updated_at from {TABLE} where public_id = 'clock/one';
        update {TABLE} set bytes = 2, updated_at = '2000-01-01' where public_id = 'clock/one';
        select updated_at from {TABLE} where public_id = 'clock/one';
        select (select count(*) from {TABLE} where public_id = 'clock/one' and created_at <= updated_at);
        commit;
        """,
    )
    lines = [line for line in out.splitlines() if line and line not in ("BEGIN", "COMMIT")]
    lines = [line for line in lines if not line.startswith(("INSERT", "UPDATE"))]
    first, second, third, consistent = lines
    stamps = query(
        db,
        f"select '{first}'::timestamptz < '{second}'::timestamptz, '{second}'::timestamptz < '{third}'::timestamptz",
    )
    assert stamps == "t|t", (first, second, third)  # a client's old updated_at is ignored too
    assert consistent == "1"
    # And across transactions, two quick updates in a row.
    before = query(db, f"select updated_at from {TABLE} where public_id = 'clock/one'")
    query(db, f"update {TABLE} set bytes = 3 where public_id = 'clock/one'")
    query(db, f"update {TABLE} set bytes = 4 where public_id = 'clock/one'")
    after = query(
        db,
        f"select updated_at > '{before}'::timestamptz from {TABLE} where public_id = 'clock/one'",
    )
    assert after == "t"


def test_table_is_in_the_realtime_publication(db: PostgresServer) -> None:
    assert (
        query(
            db,
            "select count(*) from pg_publication_tables "
            "where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'media_assets'",
        )
        == "1"
    )


def test_replica_identity_is_full(db: PostgresServer) -> None:
    assert query(db, f"select relreplident from pg_class where oid = '{TABLE}'::regclass") == "f"


def test_row_level_security_and_policies(db: PostgresServer) -> None:
    assert query(db, f"select relrowsecurity from pg_class where oid = '{TABLE}'::regclass") == "t"
    policies = query(
        db,
        "select policyname || ':' || cmd || ':' || array_to_string(roles, ',') from pg_policies "
        "where tablename = 'media_assets' order by policyname",
    ).splitlines()
    assert policies == [
        "media_assets_read:SELECT:anon,authenticated",
        "media_assets_write:ALL:authenticated",
    ]


def test_grants(db: PostgresServer) -> None:
    checks = {
        ("anon", "select"): "true",
        ("anon", "insert"): "false",
        ("anon", "update"): "false",
        ("anon", "delete"): "false",
        **{("authenticated", p): "true" for p in ("select", "insert", "update", "delete")},
        **{("service_role", p): "true" for p in ("select", "insert", "update", "delete")},
    }
    sql = " union all ".join(
        f"select '{role}:{privilege}:' || has_table_privilege('{role}', '{TABLE}', '{privilege}')"
        for role, privilege in checks
    )
    got = dict(line.rsplit(":", 1) for line in query(db, sql).splitlines())
    assert got == {f"{role}:{privilege}": value for (role, privilege), value in checks.items()}


def test_upsert_on_public_id_as_the_api_roles(db: PostgresServer) -> None:
    # What PostgREST does for `on_conflict=public_id` with Prefer: resolution=merge-duplicates,
    # under the role of the key: authenticated writes through RLS, service_role bypasses it.
    upsert = (
        f"insert into {TABLE} (public_id, bytes, tags, folder) values ('up/sert', %s, '{{a,b}}', 'up') "
        "on conflict (public_id) do update set bytes = excluded.bytes, tags = excluded.tags "
        "returning id, bytes"
    )
    first = returned_row(query(db, "set role authenticated; " + upsert % 10))
    second = returned_row(query(db, "set role service_role; " + upsert % 20))
    row_id, first_bytes = first.split("|")
    assert first_bytes == "10"
    assert second == f"{row_id}|20"  # the same row, updated
    assert query(db, f"select count(*) from {TABLE} where public_id = 'up/sert'") == "1"
    # anon may read through the policy, but not write.
    assert query(
        db, f"set role anon; select bytes from {TABLE} where public_id = 'up/sert'"
    ).endswith("20")
    assert "permission denied" in fails(db, "set role anon; " + upsert % 30)


def test_script_file_is_plain_sql(tmp_path: Path) -> None:
    # The operator pastes it into the SQL editor: no psql meta-commands, one transaction.
    sql = schema_sql()
    assert not any(line.lstrip().startswith("\\") for line in sql.splitlines())
    assert sql.count("begin;") == 1 and sql.rstrip().endswith("commit;")
