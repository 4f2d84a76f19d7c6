"""Resumable, checksum-verified downloads of the registered data sets.

Each file is fetched into ``<dest>.part``; an interrupted run leaves the ``.part`` behind and
the next run asks the server only for the missing bytes (HTTP ``Range``). The file gets its
real name only after its sha256 matches, so a corrupt download never looks like a finished
one. A checksum of None cannot be checked: the file is kept and a warning says so.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import warnings
import zipfile
from collections.abc import Callable
from os import PathLike
from pathlib import Path

from ray_icma.data.registry import DATASETS, DatasetSpec

Warn = Callable[[str], None]
_CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """A download failed; the message names the URL and says what to do."""


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


def sha256_file(path: str | PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check(path: Path, expected: str | None, url: str, warn: Warn) -> bool:
    """True when `path` matches `expected` (or nothing to check: warn and accept)."""
    if expected is None:
        warn(f"no sha256 on record for {url}; {path.name} was not verified")
        return True
    return sha256_file(path) == expected.lower()


def download_file(
    url: str,
    dest: str | PathLike[str],
    *,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 30.0,
    warn: Warn = _warn,
) -> Path:
    """Fetch `url` to `dest`, resuming a ``dest.part`` left by an earlier attempt.

    Args:
        url: http(s) URL.
        dest: final path; parent folders are created.
        sha256: expected hex digest; None skips verification with a warning.
        progress: show a tqdm progress bar on stderr.
        timeout: seconds to wait for the server to connect or send.
        warn: called with warning text (default: `warnings.warn`).

    Returns:
        `dest`.

    Raises:
        DownloadError: network failure, HTTP error, short body or checksum mismatch. On a
            mismatch the ``.part`` file is deleted and `dest` is not written.
    """
    import requests
    from tqdm.auto import tqdm

    dest = Path(dest)
    if dest.is_file():
        if sha256 is None:
            warn(f"{dest} already exists and has no sha256 on record; kept as is (delete it to download again)")
            return dest
        if sha256_file(dest) == sha256.lower():
            return dest
        warn(f"{dest} exists but its sha256 does not match; downloading it again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}

    try:
        response = requests.get(url, headers=headers, stream=True, timeout=timeout)
    except requests.RequestException as exc:
        raise DownloadError(f"cannot download {url}: {_reason(exc)}") from exc
    with response:
        if response.status_code == 416 and offset:
            size = _unsatisfied_size(response.headers.get("Content-Range", ""))
            if size != offset:  # a stale .part longer than the file: start over
                part.unlink()
                return download_file(url, dest, sha256=sha256, progress=progress, timeout=timeout, warn=warn)
            # else the .part already holds every byte; verify it below
        elif response.status_code >= 400:
            raise DownloadError(f"cannot download {url}: HTTP {response.status_code} {response.reason}")
        else:
            if response.status_code == 206:
                start = _range_start(response.headers.get("Content-Range", ""))
                if start != offset:
                    raise DownloadError(
                        f"cannot resume {url}: asked for bytes from {offset}, server sent from {start}; "
                        f"delete {part} and try again"
                    )
                mode = "ab"
            else:  # 200: the server ignored Range, start over
                offset, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else None
            written = offset
            bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=dest.name, disable=not progress)
            try:
                with part.open(mode) as f:
                    for chunk in response.iter_content(_CHUNK):
                        f.write(chunk)
                        written += len(chunk)
                        bar.update(len(chunk))
            except requests.RequestException as exc:
                raise DownloadError(
                    f"download of {url} interrupted after {written} bytes ({_reason(exc)}); "
                    f"run it again to resume from {part.name}"
                ) from exc
            finally:
                bar.close()
            if total is not None and written != total:
                raise DownloadError(
                    f"download of {url} stopped at {written} of {total} bytes; run it again to resume from {part.name}"
                )
    if not _check(part, sha256, url, warn):
        actual = sha256_file(part)
        part.unlink()
        raise DownloadError(
            f"sha256 mismatch for {url}: expected {sha256}, got {actual}; the download was deleted "
            f"and {dest.name} not written (a changed upstream file or a bad mirror)"
        )
    os.replace(part, dest)
    return dest


def _range_start(content_range: str) -> int | None:
    match = re.match(r"bytes\s+(\d+)-", content_range)
    return int(match.group(1)) if match else None


def _unsatisfied_size(content_range: str) -> int | None:
    match = re.match(r"bytes\s+\*/(\d+)", content_range)
    return int(match.group(1)) if match else None


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def extract_zip(archive: Path, into: Path) -> list[Path]:
    """Unpack `archive` into `into`, refusing members that would land outside it."""
    into = into.resolve()
    out: list[Path] = []
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            target = (into / member.filename).resolve()
            if into not in target.parents and target != into:
                raise DownloadError(f"{archive}: member {member.filename!r} would be written outside {into}")
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            out.append(target)
    return out


def download_dataset(
    dataset: str | DatasetSpec,
    to: str | PathLike[str],
    *,
    base_url: str | None = None,
    progress: bool = True,
    warn: Warn = _warn,
) -> list[Path]:
    """Download every file of a data set under ``<to>/<local_dir>/`` and prepare its splits.

    Args:
        dataset: a `DATASETS` key or a spec.
        to: data root (``read_split(name, split, root=to)`` reads the result).
        base_url: replaces the spec's base URL (a mirror, or a local test server).
        progress: show progress bars.
        warn: called with warnings (unverifiable checksums).

    Returns:
        The split files now present, in the spec's split order.

    Raises:
        DownloadError: see `download_file`; also for a data set with nothing to download.
    """
    spec = DATASETS[dataset] if isinstance(dataset, str) else dataset
    if not spec.downloadable:
        raise DownloadError(f"{spec.name} has no download of its own: {spec.note or spec.homepage}")
    folder = Path(to) / spec.local_dir
    fetched = [
        download_file(spec.url(file, base_url), folder / file.name, sha256=file.sha256, progress=progress, warn=warn)
        for file in spec.files
    ]
    if spec.extract:
        from ray_icma.data.molca import convert_release

        for archive in fetched:
            if archive.suffix == ".zip":
                extract_zip(archive, folder)
        convert_release(folder, folder)
    return [folder / rel for rel in spec.splits.values() if (folder / rel).is_file()]
