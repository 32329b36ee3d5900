"""A tiny webhook endpoint on loopback, to receive the Cloudinary emulator's notifications.

    with WebhookReceiver(statuses=[500, 500]) as receiver:   # then 200 for ever
        emulator.notification_url = receiver.url
        ...
        assert receiver.wait_for_requests(3)
        receiver.requests[0].headers["x-cld-signature"]

It records every POST (path, lower-cased headers, the raw body as text) before answering, so a
test can see a request that is still being held. `hold`, when given, is an event each request
waits on before it is answered: a slow receiver that the test releases. `stop` releases it too,
so no handler thread outlives the test.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import Any

# A held request gives up after this long, so a test that forgets to release cannot hang.
HOLD_LIMIT_SECONDS = 30.0


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: str  # decoded exactly as received: signatures are checked on this string

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """Answers scripted statuses in order (`statuses`), then `default_status`."""

    def __init__(
        self,
        statuses: Iterable[int] = (),
        *,
        default_status: int = 200,
        hold: threading.Event | None = None,
    ) -> None:
        self.default_status = default_status
        self.hold = hold
        self.requests: list[ReceivedRequest] = []
        self._script = deque(statuses)
        self._arrived = threading.Condition()
        self._server: _ReceiverServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> WebhookReceiver:
        self._server = _ReceiverServer(("127.0.0.1", 0), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"webhook-receiver-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._server = self._thread = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the receiver is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/cloudinary"

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)

    def _record(self, request: ReceivedRequest) -> int:
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()
            return self._script.popleft() if self._script else self.default_status


class _ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        super().__init__(address, _ReceiverHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a DNS lookup that can take seconds.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The emulator cuts a held request short when it stops: not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: _ReceiverServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8")
        headers = {name.lower(): value for name, value in self.headers.items()}
        receiver = self.server.receiver
        status = receiver._record(ReceivedRequest(self.path, headers, body))
        if receiver.hold is not None:
            receiver.hold.wait(HOLD_LIMIT_SECONDS)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass
