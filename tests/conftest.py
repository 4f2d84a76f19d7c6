"""Fixtures shared by every test package: bundled assets, ../shared, and the real services.

Services are real: Elasticsearch from scripts/start_elasticsearch.sh and a multi-process Ray
cluster from scripts/start_ray_cluster.sh (.ci/run starts both). Outside CI a missing service
skips its tests with the command to start it; under CI=true it fails them.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
ASSETS = TESTS / "assets"
SHARED = Path(os.environ.get("RAY_ICMA_SHARED", ROOT.parent / "shared"))
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _missing_service(message: str) -> None:
    if IN_CI:
        pytest.fail(f"required service unavailable under CI: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def assets() -> Path:
    return ASSETS


@pytest.fixture(scope="session")
def chebi20_test_file() -> Path:
    """200 real ChEBI-20 test rows (CC BY 4.0), header included."""
    return ASSETS / "chebi20_test_200.txt"


@pytest.fixture(scope="session")
def chebi20_pool_file() -> Path:
    """300 real ChEBI-20 validation rows (CC BY 4.0), used as the retrieval pool / train split."""
    return ASSETS / "chebi20_validation_300.txt"


@pytest.fixture(scope="session")
def scibert_dir() -> Path:
    return ASSETS / "scibert_scivocab_uncased"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present (real-data checks only)")
    return SHARED


@pytest.fixture(scope="session")
def es_url() -> str:
    """URL of a live Elasticsearch; health-checked with _cluster/health (this build has no GET /)."""
    import requests

    url = os.environ.get("RAY_ICMA_ES_URL", "http://127.0.0.1:9200")
    try:
        r = requests.get(f"{url}/_cluster/health", params={"wait_for_status": "yellow", "timeout": "5s"}, timeout=10)
        r.raise_for_status()
    except Exception as exc:  # noqa: BLE001 - any failure means "not there"
        _missing_service(f"Elasticsearch at {url} is not reachable ({exc}); start it with scripts/start_elasticsearch.sh")
    return url


@pytest.fixture(scope="session")
def ray_cluster():
    """Connects to the multi-process cluster in RAY_ADDRESS; outside CI falls back to a local ray.init()."""
    import ray

    address = os.environ.get("RAY_ADDRESS")
    if not address and IN_CI:
        _missing_service("RAY_ADDRESS is not set; start a cluster with scripts/start_ray_cluster.sh")
    try:
        if address:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        else:
            ray.init(num_cpus=2, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # noqa: BLE001
        _missing_service(f"cannot connect to Ray at {address or 'local'}: {exc}")
    yield ray
    ray.shutdown()
