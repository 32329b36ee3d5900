"""Fixtures every test can use: the wire-faithful emulators on loopback."""

pytest_plugins = ["tests.emulators.fixtures", "tests.emulators.supabase_fixtures"]
