"""`ray-icma index`: embed a molecule pool with a pretrained GNN into a FAISS index (Ray Data),
grow it without a rebuild, and query it.

Heavy imports (ray, torch, faiss, rdkit) happen inside the commands so `ray-icma --help`
stays instant. The commands join the Ray cluster in ``RAY_ADDRESS`` when it is set, else
start a local Ray. User errors print one line and exit 1; no tracebacks.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Literal, Optional

import typer

from ray_icma.cli._errors import fail as _fail

index_app = typer.Typer(
    name="index",
    help="Molecule embedding indexes: build one with a GNN checkpoint on Ray, add molecules, search it.",
    no_args_is_help=True,
    rich_markup_mode=None,  # help texts and values are never rich markup
)


@contextmanager
def _progress(total: int | None, show: bool) -> Iterator:
    """A rich progress bar fed by the job's per-batch callback; it appears with the first batch,
    so argument and checkpoint errors print alone. Also quiets Ray Data's own INFO logging."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit notices from torch_geometric
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if not show:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    state: dict = {}

    def advance(n: int) -> None:
        if "task" not in state:
            bar.start()
            state["task"] = bar.add_task("embed", total=total)
        bar.advance(state["task"], n)

    try:
        yield advance
    finally:
        if "task" in state:
            bar.stop()


def _count_inputs(data: Path) -> int | None:
    try:
        from ray_icma.jobs._molecule_inputs import read_molecule_inputs

        return len(read_molecule_inputs(data))
    except Exception:  # noqa: BLE001 - the job itself reports the real error
        return None


def _report(result) -> None:
    typer.echo(result.summary())
    for line in result.skipped[:10]:
        typer.secho(f"skipped: {line}", fg=typer.colors.YELLOW, err=True)
    if len(result.skipped) > 10:
        typer.secho(f"... and {len(result.skipped) - 10} more skipped rows", fg=typer.colors.YELLOW, err=True)


def _job_errors() -> tuple[type[BaseException], ...]:
    from ray_icma.data import DataError
    from retrieval.encoders import CheckpointMismatchError

    return (FileNotFoundError, ValueError, CheckpointMismatchError, DataError, RuntimeError)


@index_app.command("build")
def build(
    data: Path = typer.Option(..., "--data", help="Molecules: TSV (CID, SMILES[, description]), JSONL or Parquet."),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="GNN state dict (.pth): Mole-BERT or pretrain-gnns."),
    out: Path = typer.Option(..., "--out", help="Output directory (index, embeddings/*.parquet, embed_job.json)."),
    kind: Literal["flat", "ivf", "hnsw"] = typer.Option("flat", "--kind", help="flat (exact cosine, as ICMA), ivf or hnsw (approximate, faster)."),
    gnn_type: Optional[Literal["gin", "gcn", "gat", "graphsage"]] = typer.Option(None, "--gnn-type", help="gin, gcn, gat or graphsage; detected when omitted."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Molecules per Ray Data batch / forward pass."),
    concurrency: int = typer.Option(2, "--concurrency", min=1, help="Encoder actors (one model copy each)."),
    gpus_per_actor: float = typer.Option(0.0, "--gpus-per-actor", min=0.0, help="GPUs per actor (0 = CPU)."),
    cpus_per_actor: float = typer.Option(1.0, "--cpus-per-actor", min=0.0, help="CPUs reserved per actor (also its torch threads)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Embed every molecule of DATA on Ray and save a FAISS index in OUT."""
    from ray_icma.jobs.embed import embed_molecules

    errors = _job_errors()
    try:
        with _progress(_count_inputs(data) if progress else None, progress) as advance:
            result = embed_molecules(
                data, out, checkpoint=checkpoint, gnn_type=gnn_type, batch_size=batch_size,
                concurrency=concurrency, num_gpus_per_actor=gpus_per_actor, num_cpus_per_actor=cpus_per_actor,
                index_kind=kind, progress=advance,
            )
    except errors as exc:
        _fail(str(exc))
    _report(result)


@index_app.command("add")
def add(
    index: Path = typer.Option(..., "--index", help="A directory written by `ray-icma index build`."),
    data: Path = typer.Option(..., "--data", help="New molecules (same formats as build); known ids are skipped."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Defaults to the one the index was built with."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Molecules per Ray Data batch / forward pass."),
    concurrency: int = typer.Option(2, "--concurrency", min=1, help="Encoder actors."),
    gpus_per_actor: float = typer.Option(0.0, "--gpus-per-actor", min=0.0, help="GPUs per actor (0 = CPU)."),
    cpus_per_actor: float = typer.Option(1.0, "--cpus-per-actor", min=0.0, help="CPUs reserved per actor (also its torch threads)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Embed new molecules and append them to an existing index (no rebuild)."""
    from ray_icma.jobs.embed import add_molecules

    errors = _job_errors()
    try:
        with _progress(_count_inputs(data) if progress else None, progress) as advance:
            result = add_molecules(
                index, data, checkpoint=checkpoint, batch_size=batch_size, concurrency=concurrency,
                num_gpus_per_actor=gpus_per_actor, num_cpus_per_actor=cpus_per_actor, progress=advance,
            )
    except errors as exc:
        _fail(str(exc))
    _report(result)


@index_app.command("search")
def search(
    index: Path = typer.Option(..., "--index", help="A directory written by `ray-icma index build`."),
    smiles: list[str] = typer.Argument(..., help="Query SMILES (one or more)."),
    k: int = typer.Option(10, "-k", "--k", min=1, help="Neighbours per query."),
) -> None:
    """Print the k most similar indexed molecules (id and cosine) for each query SMILES."""
    from ray_icma.jobs.embed import read_manifest
    from retrieval.encoders import GNNEncoder
    from retrieval.indexes import FaissIndex

    errors = _job_errors()
    try:
        manifest = read_manifest(index)
        encoder = GNNEncoder.from_pretrained(manifest["checkpoint"], manifest["gnn_type"])
        faiss_index = FaissIndex.load(index)
    except errors as exc:
        _fail(str(exc))
    vectors, valid = encoder.encode_smiles(smiles)
    hits = faiss_index.search(vectors, k=k)
    for i, query in enumerate(smiles):
        if not valid[i]:
            typer.secho(f"{query}\tinvalid SMILES (RDKit cannot parse it)", fg=typer.colors.YELLOW)
            continue
        neighbours = "  ".join(f"{faiss_index.ids[j]}:{s:.3f}" for j, s in hits.row(i))
        typer.echo(f"{query}\t{neighbours}")


@index_app.command("captions")
def captions(
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help="Records file (TSV/JSONL/Parquet) whose captions to index."),
    backend: Literal["bm25s", "elasticsearch"] = typer.Option("bm25s", help="bm25s (embedded, saved to --out) or elasticsearch (server at --url)."),
    out: Optional[Path] = typer.Option(None, help="Directory for the saved bm25s index (required for bm25s)."),
    url: str = typer.Option("http://127.0.0.1:9200", envvar="RAY_ICMA_ES_URL", help="Elasticsearch URL."),
    index_name: str = typer.Option("icma-captions", help="Elasticsearch alias; a rebuild swaps a fresh index in behind it."),
) -> None:
    """Index captions for BM25 (cap2mol retrieval). Elasticsearch rebuilds go into a new index and
    swap the alias at the end, so a failed or re-run job never leaves duplicates or half an index."""
    from ray_icma.data import load_records
    from retrieval.bm25 import BM25BackendUnavailable, build_bm25_index

    if backend == "bm25s" and out is None:
        _fail("--out DIR is required with --backend bm25s")
    loaded = load_records(data, validate_smiles=False)
    if loaded.problems:
        typer.echo(loaded.summary(), err=True)
    texts = [r.text for r in loaded.records]
    ids = [r.cid for r in loaded.records]
    try:
        kwargs: dict[str, Any] = {"url": url, "index_name": index_name} if backend == "elasticsearch" else {}
        index = build_bm25_index(backend, **kwargs)
        index.index(texts, ids=ids)
    except BM25BackendUnavailable as exc:
        _fail(str(exc))
    if out is not None:  # bm25s (checked above)
        index.save(out)
        typer.echo(f"indexed {len(ids)} captions -> {out}")
    else:
        typer.echo(f"indexed {len(ids)} captions -> {url} alias {index_name}")


def register(app: typer.Typer) -> None:
    """Attach this module's command(s) to the root app."""
    app.add_typer(index_app, name="index")
