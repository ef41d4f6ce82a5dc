"""A real HTTP server on 127.0.0.1 (port 0) for crawl tests and benchmarks."""

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit


@dataclass
class Response:
    """What the site answers to one request."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class LoopbackSite:
    """Base of the loopback sites: a threaded http.server, a context manager, and a
    count of requests per path (query string included).

    Subclasses implement `respond(path, hit)`, where `hit` is 1 on the first request for
    that path, 2 on the second, and so on.
    """

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port> (no trailing slash)."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started; use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        """Absolute URL of a path on this site."""
        return self.base_url + path

    def hits_for(self, path: str) -> int:
        """How many requests the site has answered for `path` (a path or absolute URL)."""
        parts = urlsplit(path)
        key = parts.path + (f"?{parts.query}" if parts.query else "")
        with self._lock:
            return self.hits[key]

    def reset_hits(self) -> None:
        """Forget the request counts (and so the 429/500-first behaviours start over)."""
        with self._lock:
            self.hits.clear()

    def respond(self, path: str, hit: int) -> Response:
        """The response for the `hit`-th request of `path`."""
        raise NotImplementedError

    def start(self) -> Self:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                site._answer(self, with_body=True)

            def do_HEAD(self) -> None:
                site._answer(self, with_body=False)

            def log_message(self, format: str, *args: object) -> None:
                return  # tests read `hits`, not stderr

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False  # a slow page still sleeping must not block stop()
        self._server = server
        # A short poll interval lets stop() return quickly (tests start many servers).
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _answer(self, handler: BaseHTTPRequestHandler, *, with_body: bool) -> None:
        with self._lock:
            self.hits[handler.path] += 1
            hit = self.hits[handler.path]
        try:
            response = self.respond(handler.path, hit)
        except Exception as error:  # a bug in a fixture site shows as a 500, not a hang
            response = Response(500, f"fixture site error: {error!r}".encode(), "text/plain")
        if response.delay_s:
            time.sleep(response.delay_s)
        try:
            handler.send_response(response.status)
            handler.send_header("Content-Type", response.content_type)
            handler.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            if with_body:
                handler.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test); nothing to answer
