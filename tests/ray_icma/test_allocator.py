"""ray_icma.allocator: which library CPU model workers preload, how a bad setting fails, and that the
preload really takes in a Ray worker process (the training and generation tests check their own workers)."""
import ctypes.util

import pytest

from ray_icma.allocator import allocator_env, find_allocator, loaded_allocator


def test_system_means_no_preload_and_auto_falls_back_to_it(monkeypatch):
    assert find_allocator("system") is None and allocator_env("system") == {}
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)  # a machine with neither library
    assert find_allocator("auto") is None and allocator_env("auto") == {}
    with pytest.raises(ValueError, match="apt-get install libtcmalloc-minimal4"):
        find_allocator("tcmalloc")
    with pytest.raises(ValueError, match="apt-get install libjemalloc2"):
        find_allocator("jemalloc")


def test_auto_prefers_tcmalloc_then_jemalloc(monkeypatch):
    have = {"jemalloc": "libjemalloc.so.2"}
    monkeypatch.setattr(ctypes.util, "find_library", have.get)
    assert find_allocator("auto") == "libjemalloc.so.2"
    have["tcmalloc_minimal"] = "libtcmalloc_minimal.so.4"
    assert find_allocator("auto") == "libtcmalloc_minimal.so.4"
    env = allocator_env("auto")
    assert env["LD_PRELOAD"] == "libtcmalloc_minimal.so.4" and int(env["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"]) >= 1 << 30
    assert allocator_env("jemalloc") == {"LD_PRELOAD": "libjemalloc.so.2"}


def test_bad_settings_are_named(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="expected one of auto, tcmalloc, jemalloc, system"):
        find_allocator("tcmaloc")
    with pytest.raises(ValueError, match="no such file"):
        find_allocator(str(tmp_path / "libnope.so"))
    lib = tmp_path / "libmine.so"
    lib.write_bytes(b"")
    assert find_allocator(str(lib)) == str(lib)
    monkeypatch.setenv("RAY_ICMA_ALLOCATOR", "system")  # the env var is the default setting
    assert find_allocator() is None
    monkeypatch.setenv("RAY_ICMA_ALLOCATOR", "bogus")
    with pytest.raises(ValueError, match="RAY_ICMA_ALLOCATOR='bogus'"):
        allocator_env()


def test_loaded_allocator_reads_the_process_maps(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text("7f00-7f01 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.10\n")
    assert loaded_allocator(str(maps)) == "tcmalloc"
    maps.write_text("7f00-7f01 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n")
    assert loaded_allocator(str(maps)) == "system"
    assert loaded_allocator(str(tmp_path / "missing")) == "system"


@pytest.mark.ray_cluster
def test_a_ray_worker_started_with_the_env_runs_on_the_library(ray_cluster):
    """The real preload: a Ray task whose runtime_env carries allocator_env() has the library mapped."""
    import ray

    lib = find_allocator("auto")
    if lib is None:
        pytest.fail("no tcmalloc/jemalloc on this machine: scripts/setup.sh installs libtcmalloc-minimal4")

    @ray.remote(num_cpus=0.1)
    def which():
        from ray_icma.allocator import loaded_allocator

        return loaded_allocator()

    assert ray.get(which.options(runtime_env={"env_vars": allocator_env("auto")}).remote()) in lib
    assert ray.get(which.options(runtime_env={"env_vars": {}}).remote()) == "system"
