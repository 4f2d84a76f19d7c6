"""peak_rss_mb reports this process's own peak, not the peak of the process that started it."""
import subprocess
import sys

from ray_icma.memory import peak_rss_mb


def test_a_child_of_a_big_parent_reports_its_own_peak():
    block = bytearray(400 * 1024 * 1024)
    block[::4096] = b"\x01" * len(block[::4096])  # touch every page: the parent's RSS is now >= 400 MiB
    assert peak_rss_mb() >= 400
    child = subprocess.run([sys.executable, "-c", "from ray_icma.memory import peak_rss_mb; print(peak_rss_mb())"],
                           capture_output=True, text=True, check=True)
    del block
    assert float(child.stdout) < 300, child.stdout  # a bare interpreter + ray_icma.memory: tens of MiB
