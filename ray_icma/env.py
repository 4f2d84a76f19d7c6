"""Every environment switch of ray-icma, in one place: its name, default and meaning.

Code reads a switch through the function here, never ``os.environ`` directly, so each name has
one meaning. :data:`VARIABLES` is the reference (the README's table is made from it and a test
checks that every ``RAY_ICMA_*`` name in the code is listed). Read at call time, not import time,
so a test or a launcher can set them late.

``RAY_ICMA_HOME`` is a *cache root* and nothing else: installed services (Elasticsearch, the
Kubernetes binaries), the converted SmolLM2 checkpoint and the generated WordNet corpus live
under it. Relative paths in serve configs are resolved against ``RAY_ICMA_BASE_DIR`` instead.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "VARIABLES",
    "EnvVar",
    "base_dir",
    "cache_home",
    "data_root",
    "es_ca_certs",
    "es_credentials",
    "es_url",
    "get",
    "ray_address",
    "scibert",
    "shared_dir",
    "wordnet_dir",
]


@dataclass(frozen=True)
class EnvVar:
    """One switch: ``name``, its ``default`` (as text) and what it does."""

    name: str
    default: str
    meaning: str
    scope: str = "runtime"  # runtime (the package reads it) | scripts | tests


VARIABLES: tuple[EnvVar, ...] = (
    EnvVar("RAY_ICMA_HOME", "~/.cache/ray-icma", "cache root: Elasticsearch/Kubernetes installs, converted SmolLM2 checkpoint, generated nltk_data"),
    EnvVar("RAY_ICMA_BASE_DIR", "the current directory", "base of relative paths in serve configs (`base_dir` in the YAML wins; `ray-icma serve` on a config in a configs/ folder: the folder above it)"),
    EnvVar("RAY_ICMA_ES_URL", "http://127.0.0.1:9200", "Elasticsearch URL for `bm25-es`, serve's `backend: elasticsearch`, `index captions`, tests"),
    EnvVar("RAY_ICMA_ES_USER", "unset", "Elasticsearch basic-auth user (with RAY_ICMA_ES_PASSWORD)"),
    EnvVar("RAY_ICMA_ES_PASSWORD", "unset", "Elasticsearch basic-auth password"),
    EnvVar("RAY_ICMA_ES_CA_CERTS", "unset", "CA bundle for an https Elasticsearch"),
    EnvVar("RAY_ICMA_SCIBERT", "allenai/scibert_scivocab_uncased", "SciBERT tokenizer (folder or Hub id) for caption metrics"),
    EnvVar("RAY_ICMA_WORDNET_DIR", "/usr/share/wordnet", "WordNet 3.0 dict folder METEOR's corpus is generated from"),
    EnvVar("RAY_ICMA_DATA", "./data", "root of downloaded data sets (`ray-icma data download`, read_split)"),
    EnvVar("RAY_ICMA_SHARED", "../shared", "real data, reference predictions and GNN weights for the `shared` tests and benchmarks", "tests"),
    EnvVar("RAY_ADDRESS", "unset: a local Ray", "Ray's own: the cluster every job joins (ray_icma.ray_connect)"),
    EnvVar("RAY_ICMA_API_KEYS", "unset", "serve: `name:key,...` API keys when ingress.auth is on (env var name set by `keys_env`)"),
    EnvVar("RAY_ICMA_ADMIN_KEYS", "unset", "serve: admin keys, same format (`admin_keys_env`)"),
    EnvVar("RAY_ICMA_DATA_MIRROR", "the public sources", "`ray-icma data download --base-url`: a mirror for air-gapped clusters"),
    EnvVar("RAY_ICMA_ALLOCATOR", "auto", "allocator of CPU model workers (training, batch generation, Serve Generator): auto (tcmalloc, else jemalloc, else system) | tcmalloc | jemalloc | system | a .so path (ray_icma.allocator)"),
    EnvVar("RAY_ICMA_MOLECULENET", "../shared/data/moleculenet", "MoleculeNet folders for `ray-icma property`"),
    EnvVar("RAY_ICMA_TEST_FAIL_AFTER_STEP", "unset", "fault injection: training workers raise once after this step (recovery tests)", "tests"),
    EnvVar("RAY_ICMA_ES_PORT", "9200", "port scripts/start_elasticsearch.sh binds", "scripts"),
    EnvVar("RAY_ICMA_ES_VERSION", "9.2.4 (8.19.0 without Java >= 21)", "Elasticsearch version scripts/setup.sh installs", "scripts"),
    EnvVar("RAY_ICMA_RAY_PORT", "6380", "head port of scripts/start_ray_cluster.sh", "scripts"),
    EnvVar("RAY_ICMA_PROMETHEUS_PORT", "9091", "port scripts/start_prometheus.sh binds", "scripts"),
    EnvVar("RAY_ICMA_RAY_SD_FILE", "/tmp/ray/prom_metrics_service_discovery.json", "Ray's Prometheus service-discovery file the started Prometheus scrapes", "scripts"),
    EnvVar("RAY_ICMA_PROMETHEUS_URL", "http://127.0.0.1:9091", "Prometheus the tests/serve monitoring tests query (scripts/test.sh exports it)", "tests"),
    EnvVar("RAY_ICMA_VENV", ".venv", "virtualenv scripts/setup.sh creates", "scripts"),
    EnvVar("RAY_ICMA_K8S_PORT", "6444", "API-server port of the local control plane (scripts/start_k8s.sh)", "scripts"),
    EnvVar("RAY_ICMA_K8S_VERSION", "see scripts/build_k8s.sh", "Kubernetes version built for the control plane", "scripts"),
    EnvVar("RAY_ICMA_KINE_VERSION", "see scripts/build_k8s.sh", "kine version built for the control plane", "scripts"),
    EnvVar("RAY_ICMA_KUBERAY_VERSION", "see scripts/build_k8s.sh", "KubeRay operator version", "scripts"),
    EnvVar("RAY_ICMA_KUBECONFIG", "the started control plane's", "kubeconfig the tests/cluster control-plane tests use", "tests"),
    EnvVar("RAY_ICMA_NETNS_PORT", "see scripts/netns_ray_cluster.sh", "head port of the network-namespace Ray cluster", "tests"),
    EnvVar("RAY_ICMA_NETNS_DASHBOARD", "8275", "dashboard port of the network-namespace cluster", "tests"),
    EnvVar("RAY_ICMA_NETNS_TMP", "/tmp/ray-icma-netns", "temp dir of the network-namespace cluster", "tests"),
    EnvVar("RAY_ICMA_NETNS_AUTH", "token", "`disabled` turns Ray token auth off on the network-namespace cluster", "tests"),
    EnvVar("RAY_ICMA_NETNS_REUSE", "unset", "`1` keeps the network-namespace cluster up across runs (development)", "tests"),
    EnvVar("RAY_ICMA_RECOVERY_OUT", "unset", "JSON file the integration fault tests write their recovery figures to", "tests"),
    EnvVar("RAY_ICMA_FAULT_ES_PORT", "9250", "port of the throw-away Elasticsearch the ES fault test kills", "tests"),
    EnvVar("RAY_ICMA_SERVE_TEST_PORT", "8123", "HTTP port of the tests/serve app", "tests"),
    EnvVar("RAY_ICMA_SUITE_BUDGET_S", "4000 under CI=true, else none",
           "wall-clock seconds after which the test suite fails every test not yet started", "tests"),
    EnvVar("RAY_ICMA_TEST_NO_KEYS", "unset", "deliberately unset key variable in tests/serve/test_auth.py", "tests"),
    EnvVar("RAY_ICMA_TEST_NO_ADMIN", "unset", "deliberately unset admin-key variable in tests/serve/test_auth.py", "tests"),
)


def get(name: str) -> str | None:
    """The value of a listed switch (``None`` when unset or empty).

    Raises:
        KeyError: ``name`` is not in :data:`VARIABLES` (add it there, with its meaning).
    """
    if name not in {v.name for v in VARIABLES}:
        raise KeyError(f"{name} is not a documented ray-icma environment switch; add it to ray_icma.env.VARIABLES")
    return os.environ.get(name) or None


def cache_home() -> Path:
    """``$RAY_ICMA_HOME`` or ``~/.cache/ray-icma``: the cache root."""
    return Path(get("RAY_ICMA_HOME") or Path.home() / ".cache" / "ray-icma").expanduser()


def base_dir() -> Path | None:
    """``$RAY_ICMA_BASE_DIR``: base of relative serve-config paths (None: the caller's default)."""
    value = get("RAY_ICMA_BASE_DIR")
    return Path(value).expanduser() if value else None


def es_url(default: str | None = "http://127.0.0.1:9200") -> str | None:
    return get("RAY_ICMA_ES_URL") or default


def es_credentials() -> tuple[str, str] | None:
    user, password = get("RAY_ICMA_ES_USER"), get("RAY_ICMA_ES_PASSWORD")
    return (user, password) if user and password else None


def es_ca_certs() -> str | None:
    return get("RAY_ICMA_ES_CA_CERTS")


def scibert(default: str) -> str:
    return get("RAY_ICMA_SCIBERT") or default


def wordnet_dir(default: str) -> str:
    return get("RAY_ICMA_WORDNET_DIR") or default


def data_root() -> Path:
    return Path(get("RAY_ICMA_DATA") or "data")


def shared_dir(default: Path) -> Path:
    return Path(get("RAY_ICMA_SHARED") or default)


def ray_address() -> str | None:
    return get("RAY_ADDRESS")


def markdown_table() -> str:
    """The README table of :data:`VARIABLES`."""
    lines = ["| variable | default | what it does |", "|---|---|---|"]
    lines += [f"| `{v.name}` | {v.default} | {v.meaning}{'' if v.scope == 'runtime' else f' ({v.scope})'} |" for v in VARIABLES]
    return "\n".join(lines)
