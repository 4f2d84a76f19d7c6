"""Hot swap under load: a new index version and a new adapter set are picked up by the running app
(Serve's user_config reconfigure / rolling update) while clients keep calling, with no failed request."""
from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.serve.conftest import app_args, deploy, wait_ready

pytestmark = [pytest.mark.ray_cluster]

NAME, PREFIX = "icma-swap", "/swap"


@pytest.fixture(scope="module")
def swap_app(serve_instance, chebi20_pool_file, tiny_model_dirs):
    """Its own app: re-deploying it must not change what other test modules see (any test order)."""
    url = deploy(serve_instance, app_args(chebi20_pool_file, tiny_model_dirs), NAME, PREFIX)
    yield url
    serve_instance.delete(NAME)


def test_new_index_and_adapters_without_failed_requests(swap_app, serve_instance, chebi20_pool_file, tiny_model_dirs,
                                                        chebi20_test_file):
    from ray_icma.data import load_records
    from serve.builder import build_icma_app

    queries = load_records(chebi20_test_file).records[:8]
    seen: list[tuple[int | str, str | None, str | None]] = []
    stop = threading.Event()

    def client(i: int) -> None:
        session = requests.Session()
        n = 0
        while not stop.is_set():
            q = queries[(i + n) % len(queries)]
            n += 1
            try:
                if i == 0:
                    r = session.post(f"{swap_app}/v1/mol2cap", json={"smiles": q.smiles, "max_new_tokens": 2}, timeout=120)
                else:
                    r = session.post(f"{swap_app}/v1/retrieve", json={"task": "cap2mol", "query": q.text}, timeout=120)
                body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
                seen.append((r.status_code, body.get("index_version"), body.get("adapters_version")))
            except Exception as exc:  # noqa: BLE001 - a reset connection / timeout is a failed request
                seen.append((f"{type(exc).__name__}: {exc}"[:300], None, None))
            time.sleep(0.05)

    before = requests.get(f"{swap_app}/readyz", timeout=30).json()
    old_version = before["retriever"]["index_version"]
    new_version = f"{old_version}-next"
    # swap the two adapters' directories: a real adapter reload, not just a new label
    swapped = {"mol2cap": tiny_model_dirs["cap2mol"], "cap2mol": tiny_model_dirs["mol2cap"]}
    args = app_args(chebi20_pool_file, swapped)
    args["retriever"].update(index_version=new_version, pool={"path": str(chebi20_pool_file), "limit": 200})
    args["generator"]["adapters_version"] = new_version

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        serve_instance.run(build_icma_app(args), name=NAME, route_prefix=PREFIX, blocking=False)
        wait_ready(serve_instance, NAME, swap_app)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(v == new_version and a == new_version for _, v, a in seen):
            time.sleep(0.5)
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=150)

    assert not any(t.is_alive() for t in threads), "a client thread hung"
    statuses = [s for s, _, _ in seen]
    assert len(statuses) > 10 and all(s == 200 for s in statuses), [s for s in statuses if s != 200]
    versions = [v for _, v, _ in seen]
    assert old_version in versions and new_version in versions
    assert versions[-1] == new_version  # once swapped, it stays swapped
    after = requests.get(f"{swap_app}/readyz", timeout=30).json()
    assert after["retriever"]["index_version"] == new_version and after["retriever"]["pool_size"] == 200
    assert after["generator"]["adapters_version"] == new_version
