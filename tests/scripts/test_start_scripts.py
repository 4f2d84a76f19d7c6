"""The start scripts' shared library (scripts/_lib.sh), through scripts/start_prometheus.sh with a stand-in
`prometheus` on PATH (a real HTTP server that answers /-/ready) and scripts/start_ray_cluster.sh with a
stand-in `ray` (RAY_BIN): scripts/test.sh reads exactly one line from a start script's stdout, so stdout
must hold the URL / address and nothing else, on every path. (scripts/start_k8s.sh sources the same
library; it needs the real control-plane binaries and runs in scripts/test.sh.)"""
from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START = ROOT / "scripts" / "start_prometheus.sh"
START_RAY = ROOT / "scripts" / "start_ray_cluster.sh"
STOP = ROOT / "scripts" / "stop_prometheus.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (an exited child nobody has reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def _fake_prometheus(bin_dir: Path, body: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "prometheus"
    exe.write_text("#!/usr/bin/env bash\n" + body)
    exe.chmod(0o755)


def _env(tmp_path: Path, port: int) -> dict[str, str]:
    return {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "RAY_ICMA_HOME": str(tmp_path / "home"),
            "RAY_ICMA_PROMETHEUS_PORT": str(port)}


def _run(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def ready_site(tmp_path) -> Path:
    """A folder an HTTP file server answers /-/ready from (200), as Prometheus does."""
    site = tmp_path / "site"
    (site / "-").mkdir(parents=True)
    (site / "-" / "ready").write_text("Prometheus Server is Ready.\n")
    return site


def test_start_spawns_waits_prints_only_the_url_then_reuses_and_stop_ends_it(tmp_path, ready_site):
    port = _free_port()
    # the stand-in parses --web.listen-address like Prometheus, and is up after a second (so the wait loop runs)
    _fake_prometheus(tmp_path / "bin", f"""for a in "$@"; do case $a in --web.listen-address=*) addr=${{a#*=}};; esac; done
sleep 1; exec python3 -m http.server --bind "${{addr%:*}}" "${{addr##*:}}" --directory {ready_site}
""")
    env = _env(tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    try:
        started = _run(START, env)
        assert started.returncode == 0, started.stderr
        assert started.stdout == url + "\n"
        pid_file = tmp_path / "home" / f"prometheus-{port}" / "prometheus.pid"
        pid = int(pid_file.read_text())
        assert _running(pid)  # the spawned server runs, its pid recorded
        config = (tmp_path / "home" / f"prometheus-{port}" / "prometheus.yml").read_text()
        assert f"{ROOT}/cluster/monitoring/rules.yml" in config  # the library's repository root

        again = _run(START, env)  # a server already answering is reused: same single line, same pid file
        assert again.returncode == 0 and again.stdout == url + "\n" and int(pid_file.read_text()) == pid
    finally:
        _run(STOP, env)
    assert not _running(pid)


def test_a_server_that_dies_fails_fast_with_its_log_on_stderr_and_nothing_on_stdout(tmp_path):
    _fake_prometheus(tmp_path / "bin", 'echo "bind: address already in use" >&2; exit 3\n')
    failed = _run(START, _env(tmp_path, _free_port()))
    assert failed.returncode == 1 and failed.stdout == ""
    assert "exited" in failed.stderr and "address already in use" in failed.stderr
    assert "[start_prometheus]" in failed.stderr


def test_ray_cluster_starts_head_and_workers_waits_for_every_node_then_reuses(tmp_path):
    calls = tmp_path / "calls.txt"
    # `ray start` records its call; `ray status` fails before the head started, then lists one node per
    # start, each showing up one status call late (so the wait loop has to run)
    fake = tmp_path / "ray"
    fake.write_text(f"""#!/usr/bin/env bash
echo "$*" >> {calls}
n=$(grep -c '^start' {calls} || true)
case $1 in
  start) exit 0;;
  status) [ "$n" -ge 1 ] || exit 1
          seen=$(grep -c '^status' {calls}); shown=$(( seen - 2 < n ? seen - 2 : n ))
          for i in $(seq 1 $shown); do echo " 1 node_$i"; done; exit 0;;
esac
""")
    fake.chmod(0o755)
    env = {**os.environ, "RAY_BIN": str(fake), "RAY_ICMA_RAY_PORT": "6399", "N_WORKERS": "2"}
    started = _run(START_RAY, env)
    assert started.returncode == 0, started.stderr
    assert started.stdout == "127.0.0.1:6399\n"
    lines = calls.read_text().splitlines()
    starts = [line for line in lines if line.startswith("start")]
    assert len(starts) == 3 and "--head" in starts[0] and all("--address 127.0.0.1:6399" in s for s in starts[1:])
    assert sum(line.startswith("status") for line in lines) >= 4  # waited until all 3 nodes were listed

    again = _run(START_RAY, env)  # a cluster that answers is reused: no new `ray start`
    assert again.returncode == 0 and again.stdout == "127.0.0.1:6399\n"
    assert sum(line.startswith("start") for line in calls.read_text().splitlines()) == 3
