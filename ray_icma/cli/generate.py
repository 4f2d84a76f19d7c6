"""`ray-icma generate`: in-context prompts for every query -> Ray Data batch generation ->
a predictions JSONL that `ray-icma evaluate PRED.jsonl` scores."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from ray_icma.cli._console import console as _console
from ray_icma.cli._errors import bad_choice
from ray_icma.cli._errors import fail as _fail
from ray_icma.cli._records import load_records_or_fail


def generate(
    task: Literal["mol2cap", "cap2mol"] = typer.Option(..., "--task", help="mol2cap (SMILES -> caption) or cap2mol (caption -> SMILES)."),
    queries: Path = typer.Option(..., "--queries", help="Records to predict for (TSV CID/SMILES/description, JSONL or Parquet)."),
    out: Path = typer.Option(..., "--out", help="Predictions JSONL to write (+ <out>.meta.json with counts and tokens/s)."),
    model: str = typer.Option("smollm2-135m", "--model", help="smollm2-135m (offline), tiny-random-llama, a local dir or Hub id; a fully fine-tuned model (lora.disable_lora) is its exported dir."),
    adapter: Optional[Path] = typer.Option(None, "--adapter", help="LoRA adapter dir from `ray-icma train` (default: base model)."),
    pool: Optional[Path] = typer.Option(None, "--pool", help="Records the in-context examples come from (needed when --n-shot > 0)."),
    contexts: Optional[Path] = typer.Option(None, "--contexts", help="Contexts JSONL from `ray-icma contexts build` for these queries."),
    n_shot: int = typer.Option(2, "--n-shot", min=0, help="Examples per prompt (ICMA models: 2 mol2cap, 4 cap2mol; 0 = zero-shot)."),
    gguf_file: Optional[str] = typer.Option(None, "--gguf-file", help="GGUF file inside --model (a dir or Hub repo)."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1, help="Answer budget per query (ICMA 256)."),
    decoding: Literal["greedy", "icma"] = typer.Option(
        "greedy", "--decoding",
        help="Decoding preset: greedy, or icma (ICMA's inference.py: sampling, temperature 0.7, top_p 0.85, top_k 40, "
             "1 beam, repetition_penalty 0.8 for cap2mol, seed 42). The options below override single settings."),
    sample: Optional[bool] = typer.Option(None, "--sample/--greedy", help="Sample, or decode greedily/by beams (default: the preset's)."),
    num_beams: Optional[int] = typer.Option(None, "--num-beams", min=1, help="Beam width (default: the preset's, 1)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", min=0.01, help="Sampling temperature (default: the preset's, 0.7)."),
    top_p: Optional[float] = typer.Option(None, "--top-p", min=0.0, max=1.0, help="Nucleus filter, 1 = off (default: the preset's)."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=0, help="Top-k filter, 0 = off (default: the preset's)."),
    repetition_penalty: Optional[float] = typer.Option(None, "--repetition-penalty", min=0.01, help="1 = off (default: the preset's; icma: 0.8 for cap2mol)."),
    sampling_seed: Optional[int] = typer.Option(None, "--sampling-seed", help="Sampling seed (default: the preset's, icma 42; else --seed)."),
    precision: Literal["auto", "bf16", "fp32"] = typer.Option(
        "auto", "--precision", help="auto: bf16 where the CPU has AMX/AVX512-BF16 or the GPU supports it, else fp32."),
    strategy: Literal["code", "probabilistic", "top"] = typer.Option(
        "code", "--strategy", help="Example selection: code (ICMA's), probabilistic (this project's walk) or top."),
    window: str = typer.Option("10", "--window", help="Candidates the selection chooses among (an integer), or icma (ICMA's windows)."),
    reverse: bool = typer.Option(True, "--reverse/--no-reverse", help="Sequence reversal: most similar example last, next to the query (ICMA)."),
    cutoff_len: int = typer.Option(1024, "--cutoff-len", min=32, help="Token budget for prompt + answer; farthest examples are dropped first."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Prompts per forward pass and per Ray Data batch."),
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="Generator actors (one model copy each)."),
    num_cpus: float = typer.Option(1, "--num-cpus", min=0.1, help="CPUs per actor (also its torch threads)."),
    num_gpus: float = typer.Option(0, "--num-gpus", min=0, help="GPUs per actor (0: CPU)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N queries (smoke runs)."),
    seed: int = typer.Option(0, "--seed", help="Seeds example selection, and sampling unless the decoding has a seed (icma: 42)."),
) -> None:
    """Generate a prediction for every query with a Ray Data actor pool; then run `ray-icma evaluate OUT`."""
    import json

    from rich.text import Text

    if n_shot > 0 and (pool is None or contexts is None):
        _fail("--n-shot > 0 needs --pool and --contexts (or pass --n-shot 0 for zero-shot prompts)")
    if not (window == "icma" or (window.isdigit() and int(window) >= 1)):
        bad_choice("--window", f"takes an integer >= 1 or icma, got {window!r}")
    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        _fail(f"--adapter {adapter} has no adapter_config.json (expected a LoRA dir from `ray-icma train`)")
    from ray_icma.config import ConfigError
    from ray_icma.generate import as_decoding, generate_predictions, meta_path
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
    overrides = {"do_sample": sample, "num_beams": num_beams, "temperature": temperature, "top_p": top_p, "top_k": top_k,
                 "repetition_penalty": repetition_penalty, "seed": sampling_seed}
    try:
        settings = as_decoding({"preset": decoding, **{k: v for k, v in overrides.items() if v is not None}})
    except ConfigError as exc:
        _fail("; ".join(exc.problems))
    try:
        rows = build_icl_rows(query_records, pool_records, table, task, n_shot, seed=seed, strategy=strategy,
                              window="icma" if window == "icma" else int(window), reverse=reverse)
        generate_predictions(
            rows, out, model=model, adapter=str(adapter) if adapter else None, gguf_file=gguf_file,
            batch_size=batch_size, concurrency=concurrency, num_cpus_per_actor=num_cpus, num_gpus_per_actor=num_gpus,
            max_new_tokens=max_new_tokens, decoding=settings, precision=precision, cutoff_len=cutoff_len, seed=seed,
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
