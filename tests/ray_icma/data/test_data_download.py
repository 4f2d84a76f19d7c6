"""Resumable, checksum-checked downloads against a real HTTP server on 127.0.0.1."""
from __future__ import annotations

import hashlib
import socket
from types import MappingProxyType

import pytest

from ray_icma.data import (
    DATASETS,
    DatasetSpec,
    DownloadError,
    RemoteFile,
    download_dataset,
    download_file,
    read_split,
)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture()
def payload(chebi20_test_file) -> bytes:
    return chebi20_test_file.read_bytes()


def test_full_download_verifies_and_names_the_file(range_server, tmp_path, payload):
    (range_server.root / "test.txt").write_bytes(payload)
    dest = download_file(f"{range_server.url}/test.txt", tmp_path / "d" / "test.txt", sha256=_sha(payload), progress=False)
    assert dest.read_bytes() == payload
    assert not (tmp_path / "d" / "test.txt.part").exists()
    assert range_server.requests == [("/test.txt", None)]
    # Present and verified: a second call does not touch the network.
    download_file(f"{range_server.url}/test.txt", dest, sha256=_sha(payload), progress=False)
    assert len(range_server.requests) == 1


def test_partial_file_is_completed_with_a_range_request(range_server, tmp_path, payload):
    (range_server.root / "test.txt").write_bytes(payload)
    dest = tmp_path / "test.txt"
    (tmp_path / "test.txt.part").write_bytes(payload[:1000])
    download_file(f"{range_server.url}/test.txt", dest, sha256=_sha(payload), progress=False)
    assert dest.read_bytes() == payload
    assert range_server.requests == [("/test.txt", "bytes=1000-")]


def test_dropped_connection_keeps_part_and_next_run_resumes(range_server, tmp_path, payload):
    (range_server.root / "test.txt").write_bytes(payload)
    url, dest = f"{range_server.url}/test.txt", tmp_path / "test.txt"
    range_server.cut_after = 70_000  # of 76,347 bytes: the first 64 KiB chunk gets written
    with pytest.raises(DownloadError, match=r"interrupted|stopped at") as err:
        download_file(url, dest, sha256=_sha(payload), progress=False)
    assert url in str(err.value) and "resume from test.txt.part" in str(err.value)
    part = tmp_path / "test.txt.part"
    assert part.is_file() and 0 < part.stat().st_size <= 70_000 and not dest.exists()
    kept = part.stat().st_size

    range_server.cut_after = None
    download_file(url, dest, sha256=_sha(payload), progress=False)
    assert dest.read_bytes() == payload
    assert range_server.requests[-1] == ("/test.txt", f"bytes={kept}-")


def test_server_ignoring_range_restarts_cleanly(range_server, tmp_path, payload):
    (range_server.root / "test.txt").write_bytes(payload)
    range_server.ignore_range = True
    (tmp_path / "test.txt.part").write_bytes(b"garbage that must not stay in front")
    dest = download_file(f"{range_server.url}/test.txt", tmp_path / "test.txt", sha256=_sha(payload), progress=False)
    assert dest.read_bytes() == payload


def test_complete_part_file_gets_416_and_is_accepted(range_server, tmp_path, payload):
    (range_server.root / "test.txt").write_bytes(payload)
    (tmp_path / "test.txt.part").write_bytes(payload)
    dest = download_file(f"{range_server.url}/test.txt", tmp_path / "test.txt", sha256=_sha(payload), progress=False)
    assert dest.read_bytes() == payload


def test_stale_part_longer_than_the_file_is_replaced(range_server, tmp_path, payload):
    (range_server.root / "test.txt").write_bytes(payload)
    (tmp_path / "test.txt.part").write_bytes(payload + b"stale tail from another version")
    dest = download_file(f"{range_server.url}/test.txt", tmp_path / "test.txt", sha256=None, progress=False, warn=lambda m: None)
    assert dest.read_bytes() == payload
    assert [r for _, r in range_server.requests] == [f"bytes={len(payload) + 31}-", None]


def test_checksum_mismatch_errors_and_leaves_no_file(range_server, tmp_path, payload):
    (range_server.root / "test.txt").write_bytes(payload)
    url = f"{range_server.url}/test.txt"
    with pytest.raises(DownloadError, match="sha256 mismatch") as err:
        download_file(url, tmp_path / "test.txt", sha256="0" * 64, progress=False)
    assert url in str(err.value) and _sha(payload) in str(err.value)
    assert list(tmp_path.iterdir()) == [range_server.root]  # neither test.txt nor test.txt.part


def test_unknown_checksum_warns_but_keeps_the_file(range_server, tmp_path, payload):
    (range_server.root / "test.txt").write_bytes(payload)
    with pytest.warns(UserWarning, match="no sha256 on record"):
        dest = download_file(f"{range_server.url}/test.txt", tmp_path / "test.txt", sha256=None, progress=False)
    assert dest.read_bytes() == payload


def test_http_error_and_network_failure_name_the_url(range_server, tmp_path):
    url = f"{range_server.url}/nope.txt"
    with pytest.raises(DownloadError, match=rf"cannot download {url}: HTTP 404"):
        download_file(url, tmp_path / "nope.txt", progress=False)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = f"http://127.0.0.1:{port}/test.txt"
    with pytest.raises(DownloadError, match=rf"cannot download {dead}: ") as err:
        download_file(dead, tmp_path / "x.txt", progress=False, timeout=5)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "x.txt").exists()


def test_download_dataset_lays_files_out_for_read_split(range_server, tmp_path, chebi20_test_file, chebi20_pool_file):
    files = {"test.txt": chebi20_test_file.read_bytes(), "validation.txt": chebi20_pool_file.read_bytes()}
    for name, data in files.items():
        (range_server.root / name).write_bytes(data)
    spec = DatasetSpec(
        name="chebi20",
        description="small copy",
        base_url="http://unused.invalid",
        files=tuple(RemoteFile(n, _sha(d)) for n, d in files.items()),
        local_dir="chebi20",
        splits=MappingProxyType({"validation": "validation.txt", "test": "test.txt"}),
        homepage="",
        license="",
    )
    paths = download_dataset(spec, tmp_path / "root", base_url=range_server.url + "/", progress=False)
    assert paths == [tmp_path / "root" / "chebi20" / "validation.txt", tmp_path / "root" / "chebi20" / "test.txt"]
    result = read_split("chebi20", "test", root=tmp_path / "root")
    assert len(result.records) == 200 and {r.source for r in result.records} == {"chebi20/test"}


def test_registry_points_at_the_public_sources():
    chebi = DATASETS["chebi20"]
    assert [chebi.url(f) for f in chebi.files] == [
        f"https://raw.githubusercontent.com/blender-nlp/MolT5/main/ChEBI-20_data/{s}.txt"
        for s in ("train", "validation", "test")
    ]
    assert DATASETS["pubchem324k"].url(DATASETS["pubchem324k"].files[0]) == (
        "https://huggingface.co/datasets/acharkq/PubChem324kV2/resolve/main/PubChem324kV2.zip"
    )
    with pytest.raises(DownloadError, match="no download of its own"):
        download_dataset("pubchem324k-iupac", "unused")


@pytest.mark.shared
def test_registered_chebi20_checksums_match_the_shared_copies(shared_dir):
    from ray_icma.data.download import sha256_file

    for file in DATASETS["chebi20"].files:
        path = shared_dir / "data" / "chebi20" / file.name
        if file.sha256 is not None:
            assert sha256_file(path) == file.sha256
            assert path.stat().st_size == file.size
