"""Ray Data job: embed a molecule pool with a pretrained GNN and build a FAISS index over it.

    result = embed_molecules("pool.tsv", "indexes/pool", checkpoint="Mole-BERT.pth", concurrency=2)
    print(result.summary())

Pipeline: records -> ``ray.data.from_items`` -> ``map_batches`` with a callable class (an actor
pool of ``concurrency`` actors, each loading the encoder once; one GPU each when
``num_gpus_per_actor`` > 0) -> the driver streams the batches into a Parquet file
(``embeddings/part-00000.parquet``: ``row``, ``id``, ``valid``, ``embedding``) -> a
:class:`retrieval.indexes.FaissIndex` over the valid molecules, saved next to it with a
``embed_job.json`` manifest. :func:`add_molecules` embeds more molecules with the manifest's
checkpoint and appends them to the saved index without rebuilding it.

The checkpoint is read once on the driver and shipped to the actors, so worker nodes need no
shared filesystem. Molecules RDKit cannot parse are kept in the Parquet file with
``valid=False`` and a zero vector, left out of the index, and counted.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ray_icma.jobs._molecule_inputs import MoleculeInputs, read_molecule_inputs

__all__ = ["EmbedResult", "add_molecules", "embed_molecules", "read_embeddings", "read_manifest"]

logger = logging.getLogger(__name__)

MANIFEST = "embed_job.json"
EMBEDDINGS_DIR = "embeddings"
INDEX_KINDS = ("flat", "ivf", "hnsw")


@dataclass
class EmbedResult:
    """What an embedding run produced.

    Attributes:
        output_dir: the job directory (index files, manifest, ``embeddings/``).
        n_rows: molecules embedded in this run.
        n_valid: of those, molecules featurized and indexed.
        invalid_ids: ids whose SMILES could not be featurized (zero vectors, not indexed).
        skipped: input rows dropped before embedding (unreadable, duplicate or already-indexed ids).
        index_size: vectors in the index after this run.
        seconds: wall time of the embedding step (Ray Data), excluding index build.
        embeddings_path: the Parquet file written by this run.
    """

    output_dir: Path
    n_rows: int
    n_valid: int
    invalid_ids: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    index_size: int = 0
    seconds: float = 0.0
    embeddings_path: Path | None = None

    @property
    def n_invalid(self) -> int:
        return len(self.invalid_ids)

    @property
    def molecules_per_second(self) -> float:
        return self.n_rows / self.seconds if self.seconds > 0 else float("nan")

    def summary(self) -> str:
        text = (
            f"{self.n_rows} molecules embedded ({self.n_valid} valid, {self.n_invalid} invalid SMILES), "
            f"{len(self.skipped)} input rows skipped, index now holds {self.index_size} vectors, "
            f"{self.molecules_per_second:.0f} molecules/s -> {self.output_dir}"
        )
        if self.invalid_ids:
            text += f"; invalid ids e.g. {self.invalid_ids[:5]}"
        return text


class _EmbedBatches:
    """Ray Data callable class: one encoder per actor, loaded from a shipped state dict."""

    def __init__(self, state: dict, gnn_type: str, encoder_batch_size: int, num_threads: int, use_gpu: bool) -> None:
        import torch

        from retrieval.encoders import GNNEncoder

        if num_threads > 0:
            torch.set_num_threads(num_threads)
        self.encoder = GNNEncoder.from_state_dict(state, gnn_type, device="cuda" if use_gpu else "cpu")
        self.batch_size = encoder_batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors, valid = self.encoder.encode_smiles([str(s) for s in batch["smiles"]], batch_size=self.batch_size)
        return {"row": batch["row"], "id": batch["id"], "valid": valid, "embedding": vectors}


def _run_embedding(
    inputs: MoleculeInputs,
    *,
    state: dict,
    gnn_type: str,
    batch_size: int,
    concurrency: int,
    num_gpus_per_actor: float,
    num_cpus_per_actor: float,
    progress: Callable[[int], None] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Embed with Ray Data; returns (ids, valid, embeddings) in input order."""
    import ray

    from ray.data import DataContext

    from ray_icma.ray_connect import connect_ray

    connect_ray()
    context = DataContext.get_current()
    bars_were = context.enable_progress_bars
    if progress is not None:  # the caller shows its own progress
        context.enable_progress_bars = False
    items = [{"row": i, "id": id_, "smiles": smi} for i, (id_, smi) in enumerate(zip(inputs.ids, inputs.smiles))]
    n_blocks = max(1, min(-(-len(items) // batch_size), 1000))  # ~one block per batch: even load, fine progress
    dataset = ray.data.from_items(items, override_num_blocks=n_blocks).map_batches(
        _EmbedBatches,
        fn_constructor_kwargs={
            "state": state,
            "gnn_type": gnn_type,
            "encoder_batch_size": batch_size,
            "num_threads": max(1, int(num_cpus_per_actor)),
            "use_gpu": num_gpus_per_actor > 0,
        },
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=num_cpus_per_actor,
        num_gpus=num_gpus_per_actor or None,
        batch_format="numpy",
    )
    rows, ids, valid, vectors = [], [], [], []
    try:
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            rows.append(batch["row"]), ids.append(batch["id"]), valid.append(batch["valid"])
            vectors.append(np.asarray(batch["embedding"], dtype=np.float32))
            if progress is not None:
                progress(len(batch["row"]))
    finally:
        context.enable_progress_bars = bars_were
    if not rows:
        return np.array([], dtype=object), np.array([], dtype=bool), np.zeros((0, 0), dtype=np.float32)
    order = np.argsort(np.concatenate(rows), kind="stable")
    return (
        np.concatenate(ids)[order].astype(str),
        np.concatenate(valid)[order].astype(bool),
        np.concatenate(vectors)[order],
    )


def _write_parquet(path: Path, ids: np.ndarray, valid: np.ndarray, vectors: np.ndarray, first_row: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), type=pa.float32()), dim)
    table = pa.table(
        {
            "row": pa.array(np.arange(first_row, first_row + len(ids), dtype=np.int64)),
            "id": pa.array([str(i) for i in ids], type=pa.string()),
            "valid": pa.array(valid, type=pa.bool_()),
            "embedding": embedding,
        }
    )
    pq.write_table(table, path)


def read_embeddings(output_dir: str | PathLike[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """All Parquet parts of a job directory -> ``(ids, valid bool [n], embeddings float32 [n, dim])``."""
    import pyarrow.parquet as pq

    parts = sorted((Path(output_dir) / EMBEDDINGS_DIR).glob("part-*.parquet"))
    if not parts:
        raise FileNotFoundError(f"no embeddings under {Path(output_dir) / EMBEDDINGS_DIR}")
    ids: list[str] = []
    valid, vectors = [], []
    for part in parts:
        table = pq.read_table(part)
        ids += table.column("id").to_pylist()
        valid.append(table.column("valid").to_numpy(zero_copy_only=False))
        column = table.column("embedding").combine_chunks()
        vectors.append(column.flatten().to_numpy(zero_copy_only=False).reshape(len(table), -1).astype(np.float32))
    return ids, np.concatenate(valid), np.concatenate(vectors)


def _index_params(kind: str, n: int) -> dict[str, int]:
    """IVF cells ~ sqrt(n) but >= 39 training points each (faiss' minimum); nprobe a quarter of them."""
    if kind != "ivf":
        return {}
    nlist = max(1, min(int(np.sqrt(max(n, 1))), n // 39 or 1))
    return {"nlist": nlist, "nprobe": max(1, min(nlist, max(8, nlist // 4)))}


def _load_state(checkpoint: str | PathLike[str], gnn_type: str | None) -> tuple[dict, str]:
    """Read the checkpoint on the driver and check it builds an encoder (fails fast, before Ray)."""
    from retrieval.encoders import GNNEncoder, read_checkpoint, unwrap_state_dict

    state = unwrap_state_dict(read_checkpoint(checkpoint))
    encoder = GNNEncoder.from_state_dict(state, gnn_type, path=checkpoint)
    return state, encoder.gnn_type


def embed_molecules(
    input_path_or_records: str | PathLike[str] | Iterable[Any],
    output_dir: str | PathLike[str],
    *,
    checkpoint: str | PathLike[str],
    gnn_type: str | None = None,
    batch_size: int = 256,
    concurrency: int = 2,
    num_gpus_per_actor: float = 0,
    num_cpus_per_actor: float = 1,
    index_kind: str = "flat",
    progress: Callable[[int], None] | None = None,
) -> EmbedResult:
    """Embed every molecule and save embeddings (Parquet) and a FAISS index in ``output_dir``.

    Args:
        input_path_or_records: TSV/JSONL/Parquet path, or records (see ``read_molecule_inputs``).
        output_dir: created if needed; an existing index there is replaced.
        checkpoint: pretrain-gnns / Mole-BERT ``.pth`` state dict.
        gnn_type: architecture; detected from the checkpoint when None.
        batch_size: molecules per Ray Data batch and per forward pass.
        concurrency: encoder actors (one model copy each).
        num_gpus_per_actor: GPUs per actor (0: CPU).
        num_cpus_per_actor: CPUs reserved per actor; also its torch thread count.
        index_kind: ``"flat"`` (exact, ICMA's cosine), ``"ivf"`` or ``"hnsw"``.
        progress: called with the number of molecules after each finished batch.

    Returns:
        :class:`EmbedResult` with counts (invalid SMILES included) and paths.

    Raises:
        FileNotFoundError: input or checkpoint missing.
        retrieval.encoders.CheckpointMismatchError: the checkpoint does not fit.
        ValueError: bad arguments or unreadable input.
    """
    from retrieval.indexes import FaissIndex

    if index_kind not in INDEX_KINDS:
        raise ValueError(f"index_kind must be one of {INDEX_KINDS}, got {index_kind!r}")
    if batch_size < 1 or concurrency < 1:
        raise ValueError(f"batch_size and concurrency must be >= 1 (got {batch_size}, {concurrency})")
    output_dir = Path(output_dir)
    state, gnn_type = _load_state(checkpoint, gnn_type)
    inputs = read_molecule_inputs(input_path_or_records)
    if not len(inputs):
        first = f", e.g. {inputs.problems[0]}" if inputs.problems else ""
        raise ValueError(f"nothing to embed: no usable rows ({len(inputs.problems)} skipped{first})")
    for problem in inputs.problems[:20]:
        logger.warning("skipped: %s", problem)

    start = time.perf_counter()
    ids, valid, vectors = _run_embedding(
        inputs, state=state, gnn_type=gnn_type, batch_size=batch_size, concurrency=concurrency,
        num_gpus_per_actor=num_gpus_per_actor, num_cpus_per_actor=num_cpus_per_actor, progress=progress,
    )
    seconds = time.perf_counter() - start

    output_dir.mkdir(parents=True, exist_ok=True)
    for old in (output_dir / EMBEDDINGS_DIR).glob("part-*.parquet"):
        old.unlink()
    part = output_dir / EMBEDDINGS_DIR / "part-00000.parquet"
    _write_parquet(part, ids, valid, vectors, first_row=0)

    index = FaissIndex(vectors.shape[1], index_kind, device="auto", **_index_params(index_kind, int(valid.sum())))
    if valid.any():
        index.add(vectors[valid], ids=ids[valid].tolist())
    index.save(output_dir)
    manifest = {
        "checkpoint": str(Path(checkpoint).resolve()),
        "gnn_type": gnn_type,
        "dim": int(vectors.shape[1]),
        "index_kind": index_kind,
        "n_rows": int(len(ids)),
        "n_valid": int(valid.sum()),
        "parts": [part.name],
    }
    (output_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
    invalid_ids = ids[~valid].tolist()
    if invalid_ids:
        logger.warning("%d of %d SMILES could not be featurized; kept with valid=False, not indexed", len(invalid_ids), len(ids))
    return EmbedResult(
        output_dir=output_dir, n_rows=len(ids), n_valid=int(valid.sum()), invalid_ids=invalid_ids,
        skipped=inputs.problems, index_size=len(index), seconds=seconds, embeddings_path=part,
    )


def read_manifest(output_dir: str | PathLike[str]) -> dict:
    """The ``embed_job.json`` of a job directory, with a clear error when it is not one."""
    path = Path(output_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; is {output_dir} a directory written by embed_molecules / `ray-icma index build`?")
    return json.loads(path.read_text())


def add_molecules(
    output_dir: str | PathLike[str],
    input_path_or_records: str | PathLike[str] | Iterable[Any],
    *,
    checkpoint: str | PathLike[str] | None = None,
    batch_size: int = 256,
    concurrency: int = 2,
    num_gpus_per_actor: float = 0,
    num_cpus_per_actor: float = 1,
    progress: Callable[[int], None] | None = None,
) -> EmbedResult:
    """Embed new molecules and append them to an existing job's index (no rebuild).

    Ids already in the index are skipped and reported; the new embeddings go to the next
    ``embeddings/part-NNNNN.parquet``.

    Args:
        output_dir: a directory written by :func:`embed_molecules`.
        input_path_or_records: the new molecules.
        checkpoint: defaults to the manifest's; must be the same model for meaningful scores.
        batch_size, concurrency, num_gpus_per_actor, num_cpus_per_actor, progress: as in
            :func:`embed_molecules`.
    """
    from retrieval.indexes import FaissIndex

    output_dir = Path(output_dir)
    manifest = read_manifest(output_dir)
    checkpoint = checkpoint or manifest["checkpoint"]
    state, gnn_type = _load_state(checkpoint, manifest["gnn_type"])
    index = FaissIndex.load(output_dir)
    inputs = read_molecule_inputs(input_path_or_records)
    known = set(index.ids) | set(read_embeddings(output_dir)[0])
    fresh = [(i, s) for i, s in zip(inputs.ids, inputs.smiles) if i not in known]
    skipped = inputs.problems + [f"id {i} is already in the index, skipped" for i in inputs.ids if i in known]
    inputs = MoleculeInputs([i for i, _ in fresh], [s for _, s in fresh], skipped)
    part = output_dir / EMBEDDINGS_DIR / f"part-{len(manifest['parts']):05d}.parquet"
    if not len(inputs):
        return EmbedResult(output_dir=output_dir, n_rows=0, n_valid=0, skipped=skipped, index_size=len(index))

    start = time.perf_counter()
    ids, valid, vectors = _run_embedding(
        inputs, state=state, gnn_type=gnn_type, batch_size=batch_size, concurrency=concurrency,
        num_gpus_per_actor=num_gpus_per_actor, num_cpus_per_actor=num_cpus_per_actor, progress=progress,
    )
    seconds = time.perf_counter() - start
    _write_parquet(part, ids, valid, vectors, first_row=manifest["n_rows"])
    if valid.any():
        index.add(vectors[valid], ids=ids[valid].tolist())
    index.save(output_dir)
    manifest.update(
        n_rows=manifest["n_rows"] + len(ids), n_valid=manifest["n_valid"] + int(valid.sum()),
        parts=manifest["parts"] + [part.name],
    )
    (output_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return EmbedResult(
        output_dir=output_dir, n_rows=len(ids), n_valid=int(valid.sum()), invalid_ids=ids[~valid].tolist(),
        skipped=skipped, index_size=len(index), seconds=seconds, embeddings_path=part,
    )
