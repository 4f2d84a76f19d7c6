"""`ray-icma generate`: in-context prompts for every query -> Ray Data batch generation ->
a predictions JSONL that `ray-icma evaluate PRED.jsonl` scores."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from ray_icma.cli._console import console as _console
from ray_icma.cli._errors import fail as _fail
from ray_icma.cli._records import load_records_or_fail


def generate(
    task: Literal["mol2cap", "cap2mol"] = typer.Option(..., "--task", help="mol2cap (SMILES -> caption) or cap2mol (caption -> SMILES)."),
    queries: Path = typer.Option(..., "--queries", help="Records to predict for (TSV CID/SMILES/description, JSONL or Parquet)."),
    out: Path = typer.Option(..., "--out", help="Predictions JSONL to write (+ <out>.meta.json with counts and tokens/s)."),
    model: str = typer.Option("smollm2-135m", "--model", help="smollm2-135m (offline), tiny-random-llama, a local dir or Hub id."),
    adapter: Optional[Path] = typer.Option(None, "--adapter", help="LoRA adapter dir from `ray-icma train` (default: base model)."),
    pool: Optional[Path] = typer.Option(None, "--pool", help="Records the in-context examples come from (needed when --n-shot > 0)."),
    contexts: Optional[Path] = typer.Option(None, "--contexts", help="Contexts JSONL from `ray-icma contexts build` for these queries."),
    n_shot: int = typer.Option(2, "--n-shot", min=0, help="Examples per prompt (ICMA models: 2 mol2cap, 4 cap2mol; 0 = zero-shot)."),
    gguf_file: Optional[str] = typer.Option(None, "--gguf-file", help="GGUF file inside --model (a dir or Hub repo)."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1, help="Answer budget per query (ICMA 256)."),
    num_beams: int = typer.Option(1, "--num-beams", min=1, help="Beam width; 1 = greedy."),
    sample: bool = typer.Option(False, "--sample/--greedy", help="Sample at --temperature instead of greedy/beam search."),
    temperature: float = typer.Option(0.7, "--temperature", min=0.01, help="Sampling temperature (ICMA 0.7)."),
    cutoff_len: int = typer.Option(1024, "--cutoff-len", min=32, help="Token budget for prompt + answer; farthest examples are dropped first."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Prompts per forward pass and per Ray Data batch."),
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="Generator actors (one model copy each)."),
    num_cpus: float = typer.Option(1, "--num-cpus", min=0.1, help="CPUs per actor (also its torch threads)."),
    num_gpus: float = typer.Option(0, "--num-gpus", min=0, help="GPUs per actor (0: CPU)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N queries (smoke runs)."),
    seed: int = typer.Option(0, "--seed", help="Seeds example selection and sampling."),
) -> None:
    """Generate a prediction for every query with a Ray Data actor pool; then run `ray-icma evaluate OUT`."""
    import json

    from rich.text import Text

    if n_shot > 0 and (pool is None or contexts is None):
        _fail("--n-shot > 0 needs --pool and --contexts (or pass --n-shot 0 for zero-shot prompts)")
    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        _fail(f"--adapter {adapter} has no adapter_config.json (expected a LoRA dir from `ray-icma train`)")
    from ray_icma.generate import generate_predictions, meta_path
    from ray_icma.jobs.contexts import ContextsFileError, read_contexts
    from ray_icma.prompts import build_icl_rows

    query_records = load_records_or_fail(queries, "queries", validate_smiles=False)
    if limit is not None:
        query_records = query_records[:limit]
    pool_records, table = [], None
    if n_shot > 0 and pool is not None and contexts is not None:  # both required above
        pool_records = load_records_or_fail(pool, "pool", validate_smiles=False)
        try:
            table = read_contexts(contexts)
        except ContextsFileError as exc:
            _fail(str(exc))
    try:
        rows = build_icl_rows(query_records, pool_records, table, task, n_shot, seed=seed)
        generate_predictions(
            rows, out, model=model, adapter=str(adapter) if adapter else None, gguf_file=gguf_file,
            batch_size=batch_size, concurrency=concurrency, num_cpus_per_actor=num_cpus, num_gpus_per_actor=num_gpus,
            max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=sample, temperature=temperature,
            cutoff_len=cutoff_len, seed=seed,
        )
    except (ValueError, FileNotFoundError, OSError) as exc:
        _fail(str(exc))
    meta = json.loads(meta_path(out).read_text())
    console = _console()
    console.print(Text.assemble(
        ("wrote", "green"),
        f" {out}: {meta['rows']} predictions, {meta['new_tokens']} new tokens in {meta['seconds']:.1f} s "
        f"({meta['tokens_per_second']} tok/s)",
    ))
    if task == "cap2mol":
        console.print(f"  invalid SMILES: {meta['invalid_smiles']} of {meta['cap2mol_rows']} (kept, scored as invalid)")
    if meta["errors"]:
        console.print(f"  {meta['errors']} row(s) failed; see their 'error' field", style="yellow")
    console.print(f"next: ray-icma evaluate {out}")


def register(app: typer.Typer) -> None:
    """Attach this module's command(s) to the root app."""
    app.command("generate")(generate)
