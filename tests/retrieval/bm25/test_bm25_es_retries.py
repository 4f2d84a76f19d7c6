"""Elasticsearch retries are the client's, in one layer (issue 17): a real ES behind a small
fault-injecting HTTP proxy that answers 503/429 to chosen requests and counts every attempt."""
from __future__ import annotations

import http.server
import socket
import threading
import time
from collections import Counter

import pytest
import requests

from retrieval.bm25 import BM25BackendUnavailable, build_bm25_index

pytestmark = pytest.mark.es

CAPTIONS = ["The molecule is an indole.", "The molecule is an amino acid.", "The molecule is a steroid."]


class FaultProxy:
    """Forwards every request to ``upstream``; ``fail[path_part] = (status, n)`` answers the next
    ``n`` requests whose path contains ``path_part`` with ``status`` instead. ``seen`` counts attempts."""

    def __init__(self, upstream: str):
        proxy = self
        self.upstream = upstream
        self.fail: dict[str, tuple[int, int]] = {}
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.dead = False

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                if proxy.dead:  # drop kept-alive connections without an answer, like a crashed server
                    self.close_connection = True
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy.lock:
                    key = next((k for k in proxy.fail if k in self.path), None)
                    proxy.seen[key or self.path.split("?")[0]] += 1
                    inject = None
                    if key is not None and proxy.fail[key][1] > 0:
                        status, n = proxy.fail[key]
                        proxy.fail[key] = (status, n - 1)
                        inject = status
                if inject is not None:
                    payload = b'{"error":"injected","status":%d}' % inject
                    self.send_response(inject)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("X-Elastic-Product", "Elasticsearch")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "content-length"}}
                r = requests.request(self.command, proxy.upstream + self.path, data=body, headers=headers, timeout=30)
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in {"content-length", "transfer-encoding", "connection", "content-encoding"}:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, part: str) -> int:
        return sum(n for path, n in self.seen.items() if part in path)

    def close(self):
        self.dead = True
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(es_url):
    p = FaultProxy(es_url)
    yield p
    p.close()


@pytest.fixture
def index(proxy, es_index_name):
    idx = build_bm25_index("elasticsearch", url=proxy.url, index_name=es_index_name, show_progress=False,
                           max_retries=3, backoff_s=0.05)
    idx.index(CAPTIONS)
    yield idx
    idx.close()


def test_transient_503_and_429_are_retried_by_the_client(index, proxy):
    proxy.fail["_msearch"] = (503, 2)
    hits = index.search(["indole"], k=1)
    assert hits.indices[0, 0] == 0
    assert proxy.count("_msearch") == 3  # two injected 503s, then the real answer
    proxy.fail["_msearch"] = (429, 1)
    assert index.search(["steroid"], k=1).indices[0, 0] == 2
    assert proxy.count("_msearch") == 5


def test_a_persistent_503_costs_max_retries_plus_one_attempts_not_the_square(index, proxy):
    from elasticsearch import ApiError

    proxy.fail["_msearch"] = (503, 1000)
    started = time.monotonic()
    with pytest.raises(ApiError) as info:
        index.search(["indole"], k=1)
    assert info.value.meta.status == 503
    assert proxy.count("_msearch") == 4  # max_retries=3: 4 attempts; two layers made it 16
    assert time.monotonic() - started < 10


def test_bulk_429_is_retried_once_per_layer(proxy, es_index_name):
    proxy.fail["_bulk"] = (429, 2)
    idx = build_bm25_index("elasticsearch", url=proxy.url, index_name=es_index_name, show_progress=False,
                           max_retries=3, backoff_s=0.05)
    idx.index(CAPTIONS)
    assert len(idx) == 3
    assert proxy.count("_bulk") == 3  # the helper's retries only; the transport leaves 429 to it on bulk
    idx.close()


def test_a_server_gone_after_start_fails_with_the_clear_error(index, proxy):
    proxy.close()  # nothing listens there any more
    started = time.monotonic()
    with pytest.raises(BM25BackendUnavailable) as info:
        index.search(["indole"], k=1)
    assert proxy.url in str(info.value) and "not reachable" in str(info.value)
    assert time.monotonic() - started < 10


def test_dead_server_at_construction_is_one_attempt(es_url):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(BM25BackendUnavailable):
        build_bm25_index("elasticsearch", url=f"http://127.0.0.1:{port}", index_name="test-bm25-dead", max_retries=5)
    assert time.monotonic() - started < 3
