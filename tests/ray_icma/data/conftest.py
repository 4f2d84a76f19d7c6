"""A real HTTP server on 127.0.0.1 that understands Range requests, for the download tests."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


@dataclass
class RangeServer:
    """Serves files from `root`; records each request's path and Range header.

    `ignore_range`: answer 200 with the whole file even when asked for a range.
    `cut_after`: send only this many body bytes (while announcing the full length), then
    close the connection, to simulate a dropped download.
    """

    root: Path
    url: str = ""
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    ignore_range: bool = False
    cut_after: int | None = None


def _handler(state: RangeServer):
    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):
            state.requests.append((self.path, self.headers.get("Range")))
            path = state.root / self.path.lstrip("/")
            if not path.is_file():
                self.send_error(404, "Not Found")
                return
            data = path.read_bytes()
            size = len(data)
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            if match and not state.ignore_range:
                start = int(match.group(1))
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = data[start:]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            else:
                body = data
                self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if state.cut_after is not None:
                self.wfile.write(body[: state.cut_after])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture()
def range_server(tmp_path):
    """A started `RangeServer` serving tmp_path/'served' (put files there)."""
    root = tmp_path / "served"
    root.mkdir()
    state = RangeServer(root=root)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
