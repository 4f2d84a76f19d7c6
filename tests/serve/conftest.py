"""Fixtures for the Serve tests: a real Serve instance on the `ray_cluster` fixture, HTTP on
127.0.0.1 only, a tiny random Llama with two LoRA adapters saved locally, and a TCP forwarder in
front of the real Elasticsearch that a test can cut to simulate a dead cluster."""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

SERVE_PORT = int(os.environ.get("RAY_ICMA_SERVE_TEST_PORT", "8123"))
# API keys of the `auth_app` (set in its ingress replica's environment, as a Kubernetes Secret would)
ALICE, BOB, OPS = "alice-key-0001", "bob-key-0002", "ops-admin-0003"
DEPLOY_TIMEOUT_S = 240


@pytest.fixture(scope="package")
def serve_instance(ray_cluster):
    """Serve on the cluster, one proxy (HeadOnly: all test nodes share 127.0.0.1), shut down at the end."""
    from ray import serve

    serve.start(http_options={"host": "127.0.0.1", "port": SERVE_PORT}, proxy_location="HeadOnly")
    yield serve
    serve.shutdown()


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory) -> dict[str, str]:
    """Two LoRA adapters (random, non-zero B so they change the output) over `tiny-random-llama`."""
    import torch
    from peft import LoraConfig, get_peft_model

    from ray_icma.models import tiny_random_llama

    root = tmp_path_factory.mktemp("serve-adapters")
    dirs = {}
    for i, name in enumerate(("mol2cap", "cap2mol")):
        base, _ = tiny_random_llama()
        torch.manual_seed(100 + i)
        cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        peft_model = get_peft_model(base, cfg)
        out = root / name
        peft_model.save_pretrained(out)
        dirs[name] = str(out)
    return dirs


def app_args(pool_file: Path, adapters: dict[str, str] | None, **overrides) -> dict:
    """A small-footprint config: fractional CPUs so several apps fit the 4-CPU test cluster."""
    args = {
        "retriever": {
            "pool": {"path": str(pool_file)},
            "text": {"backend": "bm25s"},
            "molecule": {"kind": "morgan"},
            "candidate_k": 10,
            "index_version": "v1",
            "placement": "deployment",  # the composed graph (handles); test_es_and_faults covers in-ingress
            "deployment_options": {"ray_actor_options": {"num_cpus": 0.1}},
        },
        "reranker": {"placement": "deployment", "deployment_options": {"ray_actor_options": {"num_cpus": 0.05}}},
        "generator": {
            "model": "tiny-random-llama",
            "adapters": adapters or {},
            "default_adapter": {"mol2cap": "mol2cap", "cap2mol": "cap2mol"} if adapters else {},
            "max_new_tokens": 8,
            "max_batch_size": 4,
            "device": "cpu",
            "deployment_options": {"ray_actor_options": {"num_cpus": 0.2}},
        },
        "ingress": {"deployment_options": {"ray_actor_options": {"num_cpus": 0.1}}, "request_timeout_s": 60},
    }
    for section, values in overrides.items():
        if values is None:
            args[section] = None
        elif isinstance(values, dict) and isinstance(args.get(section), dict):
            args[section] = {**args[section], **values}
        else:
            args[section] = values
    return args


def deploy(serve, args: dict, name: str, prefix: str) -> str:
    """serve.run the app and wait for /readyz; returns its base URL."""
    from serve.builder import build_icma_app

    serve.run(build_icma_app(args), name=name, route_prefix=prefix, blocking=False)
    url = f"http://127.0.0.1:{SERVE_PORT}{prefix.rstrip('/')}"
    wait_ready(serve, name, url)
    return url


def wait_ready(serve, name: str, url: str, ready_status: tuple[int, ...] = (200,)) -> None:
    deadline = time.monotonic() + DEPLOY_TIMEOUT_S
    last = None
    while time.monotonic() < deadline:
        status = serve.status().applications.get(name)
        if status is not None and str(status.status).endswith("DEPLOY_FAILED"):
            raise RuntimeError(f"app {name} failed to deploy: {status.message}")
        try:
            r = requests.get(f"{url}/readyz", timeout=10)
            last = r.status_code
            if r.status_code in ready_status and str(getattr(status, "status", "")).endswith("RUNNING"):
                return
        except requests.RequestException as exc:
            last = exc
        time.sleep(1.0)
    raise TimeoutError(f"app {name} not ready after {DEPLOY_TIMEOUT_S}s (last: {last})")


class TcpForwarder:
    """Forwards 127.0.0.1:<port> to a target; `stop()` closes the port and every open connection,
    which is exactly what a client sees when the server dies; `start()` brings it back."""

    def __init__(self, target_host: str, target_port: int, port: int = 0):
        self.target = (target_host, target_port)
        self.port = port or _free_port()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> "TcpForwarder":
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(64)
        srv.settimeout(0.2)  # a blocked accept() would outlive close(): poll so stop() really closes the port
        self._server = srv
        threading.Thread(target=self._accept, args=(srv,), daemon=True).start()
        return self

    def _accept(self, srv: socket.socket) -> None:
        while self._server is srv:
            try:
                client, _ = srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            if self._server is not srv:
                client.close()
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        srv, self._server = self._server, None
        if srv is not None:
            time.sleep(0.3)  # let the accept loop see the flag
            srv.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="package")
def es_forwarder(es_url):
    from urllib.parse import urlparse

    parsed = urlparse(es_url)
    fwd = TcpForwarder(parsed.hostname or "127.0.0.1", parsed.port or 9200).start()
    yield fwd
    fwd.stop()


@pytest.fixture(scope="package")
def es_index_name(es_url):
    """A per-run alias name; its indices are deleted at the end."""
    name = f"test-serve-{uuid.uuid4().hex[:8]}"
    yield name
    try:  # the retriever builds timestamped indices behind this alias
        for index in requests.get(f"{es_url}/_alias/{name}", timeout=10).json():
            requests.delete(f"{es_url}/{index}", timeout=10)
        for index in requests.get(f"{es_url}/_cat/indices/{name}-*", params={"format": "json"}, timeout=10).json():
            requests.delete(f"{es_url}/{index['index']}", timeout=10)
    except (requests.RequestException, ValueError, TypeError, KeyError):
        pass


@pytest.fixture(scope="session")
def pool_file(chebi20_pool_file) -> Path:
    return chebi20_pool_file


@pytest.fixture(scope="package")
def icma_app(serve_instance, chebi20_pool_file, tiny_model_dirs) -> str:
    """The main app: bm25s captions, Morgan molecules, separate Retriever/Reranker deployments, the tiny
    random Llama with two LoRA adapters (one per task). Returns its base URL."""
    url = deploy(serve_instance, app_args(chebi20_pool_file, tiny_model_dirs), "icma-test", "/")
    yield url
    serve_instance.delete("icma-test")


@pytest.fixture(scope="session")
def pool_records(chebi20_pool_file):
    from ray_icma.data import load_records

    return load_records(chebi20_pool_file).records


@pytest.fixture(scope="package")
def auth_app(serve_instance, chebi20_pool_file) -> str:
    """A retrieval-only app with API keys on (rate 0.5/s, burst 3 per key), one ingress replica. Its base URL."""
    env = {"RAY_ICMA_API_KEYS": f"alice:{ALICE},bob:{BOB}", "RAY_ICMA_ADMIN_KEYS": f"ops:{OPS}"}
    args = app_args(
        chebi20_pool_file, None,
        retriever={"pool": {"path": str(chebi20_pool_file)}, "text": {"backend": "bm25s"}, "molecule": {"kind": "morgan"},
                   "placement": "ingress"},
        reranker={"placement": "ingress"},
        generator=None,
        ingress={"auth": {"enabled": True, "rate_per_s": 0.5, "burst": 3},
                 "deployment_options": {"num_replicas": 1,
                                        "ray_actor_options": {"num_cpus": 0.1, "runtime_env": {"env_vars": env}}}},
    )
    url = deploy(serve_instance, args, "icma-auth", "/auth")
    yield url
    serve_instance.delete("icma-auth")


@pytest.fixture(scope="session")
def prometheus_url() -> str:
    """The Prometheus of scripts/start_prometheus.sh (scrapes the test Ray cluster, loads cluster/monitoring/rules.yml)."""
    from tests.conftest import _missing_service

    url = os.environ.get("RAY_ICMA_PROMETHEUS_URL", "http://127.0.0.1:9091")
    try:
        requests.get(f"{url}/-/ready", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        _missing_service(f"Prometheus at {url} is not reachable ({exc}); start it with scripts/start_prometheus.sh")
    return url
