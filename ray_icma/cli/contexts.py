"""`ray-icma contexts`: retrieve each query's top-k in-context examples once, store them in a
JSONL file the training and generation stages read, and inspect that file."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from ray_icma.cli._console import console as _console
from ray_icma.cli._errors import bad_choice
from ray_icma.cli._errors import fail as _fail
from ray_icma.cli._records import load_records_or_fail

contexts_app = typer.Typer(
    name="contexts",
    help="Build and inspect in-context example lists (top-k similar pool items per query).",
    no_args_is_help=True,
    rich_markup_mode=None,  # help texts and values are never rich markup
)

_RETRIEVER_HELP = (
    "mol2cap: morgan (default) | topological (ICMA/MolReGPT's 'morgan') | gnn:<checkpoint.pth> | random; "
    "cap2mol: bm25 (default, bm25s) | bm25-icma (rank_bm25, ICMA's tokenizer) | bm25-es:<url> | random"
)


@contexts_app.command("build")
def build(
    task: Literal["mol2cap", "cap2mol"] = typer.Option(..., "--task", help="mol2cap (retrieve by molecule) or cap2mol (retrieve by caption)."),
    queries: Path = typer.Option(..., "--queries", help="Records that need examples (TSV CID/SMILES/description, JSONL or Parquet)."),
    pool: Path = typer.Option(..., "--pool", help="Records examples are drawn from (the training split); may equal --queries."),
    out: Path = typer.Option(..., "--out", help="JSONL file to write; a <out>.meta.json sidecar is written next to it."),
    retriever: Optional[str] = typer.Option(None, "--retriever", help=_RETRIEVER_HELP),
    k: int = typer.Option(10, "--k", min=1, help="Neighbours stored per query (ICMA picks its examples among the top 10)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random retriever."),
) -> None:
    """Retrieve the top-k pool items for every query and write them (a query never gets itself)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    from ray_icma.jobs.contexts import build_contexts, parse_retriever

    try:
        spec = parse_retriever(task, retriever)
    except ValueError as exc:
        bad_choice("--retriever", str(exc))
    if spec.kind == "gnn" and not Path(spec.arg or "").is_file():
        _fail(f"--retriever: GNN checkpoint {spec.arg} not found")
    console = _console()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True) as bar:
        step = bar.add_task("loading records", total=None)
        # Query SMILES are not filtered here: a query RDKit rejects is kept and reported with
        # an empty example list instead of vanishing from the evaluation.
        query_records = load_records_or_fail(queries, "queries", validate_smiles=False)
        pool_records = load_records_or_fail(pool, "pool", validate_smiles=True)
        try:
            table = build_contexts(
                query_records,
                pool_records,
                task,
                spec.name,
                k=k,
                out_path=out,
                seed=seed,
                queries_source=str(queries),
                pool_source=str(pool),
                progress=lambda message: bar.update(step, description=message),
            )
        except (ValueError, FileNotFoundError, ImportError, ConnectionError) as exc:
            _fail(str(exc))
    meta = table.meta
    console.print(Text.assemble(
        ("wrote", "green"),
        f" {out} ({len(table)} queries, task {table.task}, retriever {table.retriever}, k={meta['k']}) in {meta['seconds']:.1f} s",
    ))
    full = sum(1 for ids, _ in table.values() if len(ids) == meta["k"])
    console.print(f"  {full} queries with {meta['k']} neighbours, {meta['n_empty']} with none")
    if meta["n_invalid_queries"]:
        shown = ", ".join(meta["invalid_query_ids"][:10])
        console.print(
            f"  {meta['n_invalid_queries']} query SMILES could not be used (no examples): {shown}"
            f"{' ...' if meta['n_invalid_queries'] > 10 else ''}",
            style="yellow",
        )


@contexts_app.command("show")
def show(
    file: Path = typer.Argument(..., help="A contexts JSONL file from `ray-icma contexts build`."),
    query_id: str = typer.Option(..., "--id", help="The query's CID."),
    pool: Optional[Path] = typer.Option(None, "--pool", help="Pool file to print the examples' texts (default: the one in the meta, if present)."),
    n: Optional[int] = typer.Option(None, "--n", min=0, help="Also show the n examples a prompt would use, in prompt order."),
    strategy: Literal["code", "probabilistic", "top"] = typer.Option("code", "--strategy", help="Example selection: code (ICMA's), probabilistic (this project's walk, not in ICMA's code) or top."),
    seed: int = typer.Option(0, "--seed", help="Seed of the probabilistic walk."),
) -> None:
    """Print a query's stored neighbours (and, with --n, the examples its prompt would get)."""
    from rich.table import Table
    from rich.text import Text

    from ray_icma.jobs.contexts import ContextsFileError, read_contexts

    try:
        table = read_contexts(file)
    except ContextsFileError as exc:
        _fail(str(exc))
    if query_id not in table:
        _fail(f"query {query_id!r} is not in {file} ({len(table)} queries)")
    ids, scores = table[query_id]
    pool_path = pool or (Path(table.meta["pool"]) if table.meta.get("pool") and Path(table.meta["pool"]).is_file() else None)
    lookup = {}
    if pool_path is not None:
        lookup = {r.cid: (r.smiles, r.text) if table.task == "mol2cap" else (r.text, r.smiles) for r in load_records_or_fail(pool_path, "pool", validate_smiles=False)}

    console = _console()
    console.print(f"query {query_id}: task {table.task}, retriever {table.retriever}, {len(ids)} neighbours")
    if query_id in table.invalid_query_ids:
        console.print("its SMILES could not be used: no examples", style="yellow")
    grid = Table("rank", "pool id", "score", *(["example"] if lookup else []))
    for rank, (cid, score) in enumerate(zip(ids, scores)):
        text = [lookup.get(cid, ("?", "(not in pool file)"))[0][:100]] if lookup else []
        grid.add_row(str(rank), cid, f"{score:.4f}", *text)
    console.print(grid)
    if n is not None:
        if not lookup:
            _fail("--n needs the pool's texts: pass --pool FILE")
        try:
            examples = table.examples(query_id, lookup, n, strategy=strategy, seed=seed)
        except (ValueError, KeyError) as exc:
            _fail(str(exc).strip("'\""))
        console.print(f"\n{len(examples)} example(s) in prompt order ({strategy}, most similar last):")
        for example in examples:
            console.print(Text.assemble(
                (example.id, "bold"), f" (score {example.score:.4f})\n  input:  {example.input}\n  output: {example.output}"
            ))


def register(app: typer.Typer) -> None:
    """Attach `ray-icma contexts ...` to the root app."""
    app.add_typer(contexts_app, name="contexts")
