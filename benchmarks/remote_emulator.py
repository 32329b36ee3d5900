"""An emulator in its own process, driven through a pipe, for benchmarks.

A real server is on another machine: its CPU is not the client's. An emulator on a thread of
the measured process would compete with the app for the interpreter lock and inflate the
figures, so benchmarks start it with `RemoteEmulator(SupabaseEmulator)` and call its control
plane (`call("write_as_other", ...)`, `call_many(...)` for a batch in one round trip).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Sequence
from typing import Any


def _serve(factory: Any, kwargs: dict[str, Any], pipe: Any) -> None:
    with factory(**kwargs) as emulator:
        pipe.send({"url": emulator.url, "service_key": getattr(emulator, "service_key", None)})
        while True:
            request = pipe.recv()
            if request is None:
                return
            name, calls = request
            try:
                method = getattr(emulator, name)
                pipe.send(("ok", [method(*args) for args in calls]))
            except Exception as exc:  # handed back to the benchmark, which raises it
                pipe.send(("error", repr(exc)))


class RemoteEmulator:
    """Starts `factory(**kwargs)` (a context-manager emulator) in a spawned process."""

    def __init__(self, factory: Any, **kwargs: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(factory, kwargs, child), daemon=True)
        self._process.start()
        if not self._pipe.poll(60):
            self._process.kill()
            raise RuntimeError("the emulator process did not start")
        info = self._pipe.recv()
        self.url: str = info["url"]
        self.service_key: str = info["service_key"]

    def call_many(self, name: str, calls: Iterable[Sequence[Any]]) -> list[Any]:
        """Call the emulator's method `name` once per argument tuple, in one round trip."""
        self._pipe.send((name, [tuple(args) for args in calls]))
        status, result = self._pipe.recv()
        if status != "ok":
            raise RuntimeError(f"the emulator's {name} failed: {result}")
        return list(result)

    def call(self, name: str, *args: Any) -> Any:
        return self.call_many(name, [args])[0]

    def close(self) -> None:
        if self._process.is_alive():
            self._pipe.send(None)
            self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()

    def __enter__(self) -> RemoteEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
