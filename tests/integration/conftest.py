"""A real multi-host Ray cluster for the integration tests: the head on a bridge in the root
namespace (192.168.213.1) and worker nodes each in its own network namespace with its own
address (192.168.213.2, .3 ...), built by ``scripts/netns_ray_cluster.sh``.

Work reaches it the way it reaches a KubeRay cluster: through the Jobs API
(``JobSubmissionClient``), the Serve REST API and HTTP. This pytest process never calls
``ray.init()``, so it can share a session with tests on the shared cluster in ``RAY_ADDRESS``.

Needs root, ``ip`` and network namespaces: outside CI a missing capability skips, under CI it fails.
The cluster is torn down at the end of the session whatever happens, and the machine's
``/tmp/ray/ray_current_cluster`` (what a bare ``ray.init()`` of the other clusters reads) is
restored to what it was before.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import _missing_service

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "netns_ray_cluster.sh"
VENV_BIN = Path(sys.executable).parent
NET = "192.168.213"
HEAD_IP = f"{NET}.1"
GCS_PORT = int(os.environ.get("RAY_ICMA_NETNS_PORT", "6390"))
DASHBOARD_PORT = int(os.environ.get("RAY_ICMA_NETNS_DASHBOARD", "8275"))
DASHBOARD = f"http://{HEAD_IP}:{DASHBOARD_PORT}"
N_NODES = 2  # worker nodes; the head has no CPUs, so all work lands on them
NODE_CPUS = 2
ADDRESS_FILE = Path("/tmp/ray/ray_current_cluster")
# Ray token auth is on, as in the manifests (RAY_AUTH_MODE=token, token from a Secret): every node gets
# the token in its env and the tests send it as a bearer header. RAY_ICMA_NETNS_AUTH=disabled turns it off.
AUTH = os.environ.get("RAY_ICMA_NETNS_AUTH", "token")
TOKEN_FILE = Path(os.environ.get("RAY_ICMA_NETNS_TMP", "/tmp/ray-icma-netns")).with_name("ray-icma-netns-auth-token")
UP_TIMEOUT_S = 420  # `up` on a loaded 2-core box took 1-2 min


def _capability_problem() -> str | None:
    """Why this machine cannot build the netns cluster, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "the netns Ray cluster needs root (ip netns / veth)"
    if shutil.which("ip") is None:
        return "the netns Ray cluster needs iproute2's `ip`"
    probe = "icma-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0 and "exists" not in made.stderr:
        return f"network namespaces are not allowed here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@contextmanager
def without_ray_address():
    """Ray's state API prefers $RAY_ADDRESS (the shared test cluster) over an explicit address=...;
    hide it while talking to the netns cluster."""
    saved = os.environ.pop("RAY_ADDRESS", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["RAY_ADDRESS"] = saved


def _auth_token() -> str | None:
    """This cluster's Ray auth token (kept in a file so RAY_ICMA_NETNS_REUSE runs find it), or None."""
    if AUTH != "token":
        return None
    if not TOKEN_FILE.is_file():
        import secrets

        TOKEN_FILE.write_text(secrets.token_hex(32))
        TOKEN_FILE.chmod(0o600)
    return TOKEN_FILE.read_text().strip()


def dashboard_headers() -> dict[str, str]:
    """Headers every request to the netns cluster's dashboard needs (the bearer token when auth is on)."""
    token = _auth_token()
    return {"Authorization": f"Bearer {token}"} if token else {}


def _cluster_env() -> dict[str, str]:
    """Environment of the cluster's processes: this venv first, no pointer to another cluster, the
    auth mode and token every node must share."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    env["RAY_AUTH_MODE"] = "token" if _auth_token() else "disabled"
    if _auth_token():
        env["RAY_AUTH_TOKEN"] = _auth_token()
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
    env["RAY_BIN"] = str(VENV_BIN / "ray")
    env["RAY_NODE_CPUS"] = str(NODE_CPUS)
    env["HEAD_CPUS"] = "0"
    return env


@dataclass
class JobRun:
    """A finished Ray job."""

    job_id: str
    status: str
    logs: str
    seconds: float


@dataclass
class NetnsCluster:
    """Handle on the running netns cluster (addresses, node faults, Jobs API)."""

    gcs_address: str = f"{HEAD_IP}:{GCS_PORT}"
    dashboard: str = DASHBOARD
    head_ip: str = HEAD_IP
    n_nodes: int = N_NODES
    node_cpus: int = NODE_CPUS
    events: list[tuple[float, str]] = field(default_factory=list)

    @staticmethod
    def node_ip(i: int) -> str:
        return f"{NET}.{i + 1}"

    def _script(self, *args: str, timeout: float = 180) -> str:
        done = subprocess.run(["bash", str(SCRIPT), *args], env=_cluster_env(), capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"netns_ray_cluster.sh {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
        return done.stdout.strip()

    def kill_node(self, i: int) -> float:
        """Hard-kill every process of worker node ``i`` (like a host losing power); returns the time."""
        self._script("kill-node", str(i))
        now = time.time()
        self.events.append((now, f"kill-node {i}"))
        return now

    def start_node(self, i: int) -> float:
        """(Re)start worker node ``i`` (a replacement host joining with the same address)."""
        self._script("start-node", str(i), timeout=240)
        now = time.time()
        self.events.append((now, f"start-node {i}"))
        return now

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers for the dashboard (Jobs, Serve and State APIs): the bearer token when auth is on."""
        return dashboard_headers()

    def state(self):
        """Ray's State API client for this cluster (with the token)."""
        from ray.util.state import StateApiClient

        with without_ray_address():
            return StateApiClient(address=self.dashboard, headers=self.headers)

    def _list(self, resource: str, limit: int = 1000) -> list:
        from ray.util.state.common import ListApiOptions, StateResource

        with without_ray_address():
            return self.state().list(StateResource(resource), options=ListApiOptions(detail=True, limit=limit),
                                     raise_on_missing_output=False)

    def list_actors(self) -> list:
        return self._list("actors")

    def alive_nodes(self) -> list:
        return [n for n in self._list("nodes") if n.state == "ALIVE"]

    def wait_nodes(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.alive_nodes()) >= count:
                return
            time.sleep(1)
        raise TimeoutError(f"netns cluster did not reach {count} alive nodes in {timeout:.0f} s")

    def client(self):
        from ray.job_submission import JobSubmissionClient

        with without_ray_address():
            return JobSubmissionClient(self.dashboard, headers=self.headers)

    def submit(self, args: list[str], *, submission_id: str | None = None) -> str:
        """Submit ``args`` (a command line) as a Ray job, like a RayJob's entrypoint."""
        deadline = time.monotonic() + 240  # a loaded 2-core box took > 90 s to register the head's agent (2026-12-01)
        while True:  # right after `up` the head's job agent may not be registered yet
            try:
                return self.client().submit_job(entrypoint=shlex.join(str(a) for a in args), submission_id=submission_id)
            except RuntimeError as exc:
                if "No available agent" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def wait(self, job_id: str, timeout: float = 420) -> JobRun:
        client = self.client()
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            status = client.get_job_status(job_id)
            if status.is_terminal():
                return JobRun(job_id, str(status.value), client.get_job_logs(job_id), time.monotonic() - started)
            time.sleep(1)
        client.stop_job(job_id)
        raise TimeoutError(f"job {job_id} still running after {timeout:.0f} s; logs:\n{client.get_job_logs(job_id)[-3000:]}")

    def run(self, args: list[str], timeout: float = 420) -> JobRun:
        return self.wait(self.submit(args), timeout)


@pytest.fixture(scope="package")
def netns_cluster():
    """Head + ``N_NODES`` worker nodes on their own network namespaces; always torn down."""
    problem = _capability_problem()
    if problem:
        _missing_service(problem)
    saved = ADDRESS_FILE.read_bytes() if ADDRESS_FILE.exists() else None
    cluster = NetnsCluster()
    if os.environ.get("RAY_ICMA_NETNS_REUSE") == "1":  # development: keep a cluster up across runs
        try:
            cluster.wait_nodes(N_NODES + 1, timeout=5)
            yield cluster
            return
        except Exception:  # noqa: BLE001 - none running: build one as usual
            pass
    try:
        cluster._script("down", timeout=120)  # leftovers of an interrupted run
        started = time.monotonic()
        cluster._script("up", str(N_NODES), timeout=UP_TIMEOUT_S)
        cluster.wait_nodes(N_NODES + 1)
        cluster.events.append((time.time(), f"up in {time.monotonic() - started:.0f} s"))
        _restore(saved)
        yield cluster
    finally:
        try:
            cluster._script("down", timeout=120)
        finally:
            _restore(saved)


def _restore(saved: bytes | None) -> None:
    """Put back the machine's default ray address file (the script gives this cluster its own temp dir,
    so this is a second line of defence)."""
    if saved is not None and (not ADDRESS_FILE.exists() or ADDRESS_FILE.read_bytes() != saved):
        ADDRESS_FILE.write_bytes(saved)


@pytest.fixture(scope="session")
def recovery_figures():
    """Figures the fault tests measure; printed at the end and written to $RAY_ICMA_RECOVERY_OUT (JSON) if set."""
    figures: dict = {}
    yield figures
    if figures:
        text = json.dumps(figures, indent=1, default=str)
        print(f"\n[recovery figures]\n{text}")
        out = os.environ.get("RAY_ICMA_RECOVERY_OUT")
        if out:
            Path(out).write_text(text)


@pytest.fixture(scope="session")
def ray_icma_bin() -> Path:
    return VENV_BIN / "ray-icma"
