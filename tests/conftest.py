"""Fixtures shared by every test package: bundled assets, ../shared, and the real services.

Services are real: Elasticsearch from scripts/start_elasticsearch.sh and a multi-process Ray
cluster from scripts/start_ray_cluster.sh (.ci/run starts both).

One rule for everything a test needs but the checkout may lack (a service, ``../shared``, an
optional package such as torch/rdkit/peft): outside CI it skips with the reason; under
``CI=true`` it FAILS with the same reason, because there a skip would hide a headline check.
Use :func:`require_shared` / :func:`require_module` (or the ``shared_dir`` fixture); a plain
``pytest.importorskip`` anywhere in the suite is turned into a failure under CI by the hooks at
the end of this file.
"""
from __future__ import annotations

import os
import time
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


def _missing(what: str, message: str) -> None:
    """Skip outside CI, fail under CI=true: the one policy for anything a test requires."""
    if IN_CI:
        pytest.fail(f"required {what} missing under CI: {message}", pytrace=False)
    pytest.skip(message)


def require_shared(*parts: str) -> Path:
    """``../shared`` (``$RAY_ICMA_SHARED``) or a file/folder inside it; skip outside CI, fail in CI.

    Usable in a test, a fixture, or at module level (there a CI failure is a collection error).
    """
    path = SHARED.joinpath(*parts)
    if not SHARED.is_dir():
        _missing("shared data", f"{SHARED} not present (real-data checks need ../shared or RAY_ICMA_SHARED)")
    elif not path.exists():
        _missing("shared data", f"{path} not present in {SHARED}")
    return path


def require_module(name: str, reason: str | None = None):
    """``pytest.importorskip`` whose skip becomes a failure under CI=true."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        _missing("package", f"could not import {name!r}: {exc}" + (f" ({reason})" if reason else ""))


@pytest.fixture
def frequent_thread_switches():
    """Switch Python threads every microsecond for the test (restored after): a race between two calls
    on different threads then shows within seconds instead of once in a CI run."""
    import sys

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


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
    """``../shared``: skipped when absent outside CI, a failure under CI=true."""
    return require_shared()


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


# -- CI: a skip for a missing package is a failure --------------------------------------------
# pytest.importorskip's reason starts with this; tests/serve, tests/ray_icma/train ... use it.
_IMPORT_SKIP = "could not import"


def _skip_reason(longrepr) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr or "")


def _fail_report(report, reason: str) -> None:
    report.outcome = "failed"
    report.longrepr = f"required package missing under CI (CI=true turns this skip into a failure): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail") and _IMPORT_SKIP in _skip_reason(report.longrepr):
        _fail_report(report, _skip_reason(report.longrepr))


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and _IMPORT_SKIP in _skip_reason(report.longrepr):
        _fail_report(report, _skip_reason(report.longrepr))


# -- test tiers ---------------------------------------------------------------------------------
# `pytest -m "not slow"` is the fast tier: no Ray cluster, no Elasticsearch, no deployed Serve app.
# A test that asks for a service (directly or through another fixture) is marked for it here, and
# every service test (and every `shared` real-data check) is also `slow`, so the tier cannot
# silently grow a service dependency.
_SERVICE_FIXTURES = {"es_url": "es", "ray_cluster": "ray_cluster"}
_SERVICE_MARKS = ("es", "ray_cluster", "shared")  # shared: full data sets and reference files, real-data checks
_SLOW_FOLDERS = {"integration", "serve", "cluster"}  # netns clusters; the shared Serve app; kustomize renders + control plane


# Folders whose tests share a costly service through package-scoped fixtures: the netns Ray cluster
# (tests/integration) and the deployed Serve apps (tests/serve). Their modules run together, at the place
# the seed put the first of them, so each service is started once and stopped when its folder is done
# instead of idling (Ray agents, Serve replicas) under every later test. The order stays random: the
# seed decides where each group runs and the order of modules and tests inside it.
_GROUPED_FOLDERS = {"integration", "serve"}


def _top_folder(item) -> str:
    try:
        return Path(str(item.path)).resolve().relative_to(TESTS).parts[0]
    except ValueError:
        return ""


def group_service_folders(items: list) -> list:
    """``items`` with each of ``_GROUPED_FOLDERS`` made contiguous at its first item's place (stable)."""
    folders = [_top_folder(item) for item in items]
    first: dict[str, int] = {}
    for i, folder in enumerate(folders):
        first.setdefault(folder, i)
    place = [first[f] if f in _GROUPED_FOLDERS else i for i, f in enumerate(folders)]
    return [items[i] for i in sorted(range(len(items)), key=place.__getitem__)]


def pytest_collection_modifyitems(config, items):
    items[:] = group_service_folders(items)  # after pytest-randomly's shuffle (its hook wraps this one)
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for fixture, mark in _SERVICE_FIXTURES.items():
            if fixture in names and item.get_closest_marker(mark) is None:
                item.add_marker(getattr(pytest.mark, mark))
        folder = _top_folder(item)
        if item.get_closest_marker("slow") is None and (
            folder in _SLOW_FOLDERS or any(item.get_closest_marker(m) for m in _SERVICE_MARKS)
        ):
            item.add_marker(pytest.mark.slow)


# -- the suite's wall-clock budget ----------------------------------------------------------------
# CI stops a run at 90 minutes, setup included, and a run stopped there prints nothing of what was slow.
# Past the budget (RAY_ICMA_SUITE_BUDGET_S; 4,000 s under CI=true, none otherwise: 4,000 s + setup ~300 s
# + one test at its 900-s timeout ends before CI's 5,400 s) every test not yet
# started fails at once, so the run ends with its failures and --durations instead of being cut off.
_SUITE_BUDGET_S = float(os.environ.get("RAY_ICMA_SUITE_BUDGET_S") or (4000 if IN_CI else 0))
_SUITE_STARTED = time.monotonic()


def pytest_runtest_setup(item):
    spent = time.monotonic() - _SUITE_STARTED
    if _SUITE_BUDGET_S and spent > _SUITE_BUDGET_S:
        pytest.fail(f"not run: the suite's budget of {_SUITE_BUDGET_S:.0f} s (RAY_ICMA_SUITE_BUDGET_S) was spent "
                    f"({spent:.0f} s) before this test started", pytrace=False)
