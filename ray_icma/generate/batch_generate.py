"""Batch generation over a whole split with Ray Data: an actor pool of `Generator`s.

Input rows are in-context rows (``ray_icma.prompts.build_icl_rows``: id, task, input,
reference, examples, prompt). Each actor fits the prompt to the model's context
(``fit_prompt``: drops the farthest examples first), generates, parses the answer and, for
cap2mol, checks the SMILES with RDKit. The driver collects rows in input order and writes the
predictions JSONL that ``ray-icma evaluate`` reads, plus a ``.meta.json`` sidecar with counts
and throughput. A batch that fails is retried row by row; a row that still fails is written
with an empty prediction and its ``error`` (reported, never dropped).
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from ray_icma.generate.decoding import DecodingConfig, as_decoding

__all__ = ["PredictBatches", "generate_predictions", "read_icl_rows", "smiles_is_valid", "meta_path"]

log = logging.getLogger(__name__)

_REQUIRED = ("id", "task", "input", "reference")


def meta_path(path: str | PathLike[str]) -> Path:
    """``<file>.meta.json`` next to a predictions file."""
    path = Path(path)
    return path.with_name(path.name + ".meta.json")


def smiles_is_valid(smiles: str) -> bool:
    """True when RDKit parses ``smiles`` into a molecule (empty strings are invalid)."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    return bool(smiles.strip()) and Chem.MolFromSmiles(smiles) is not None


class PredictBatches:
    """Ray Data callable class: one :class:`~ray_icma.generate.Generator` per actor.

    Args:
        model, adapter, gguf_file, device, precision, seed: passed to ``Generator``; a single
            adapter is merged into the weights (``merge=True``: one model per actor, nothing to switch).
            ``seed`` is the sampling seed.
        settings: ``max_new_tokens``, ``batch_size``, ``cutoff_len`` and ``decoding`` (a
            :class:`~ray_icma.generate.decoding.DecodingConfig` dump).
        num_threads: torch CPU threads for this actor (0 leaves torch's default).
    """

    def __init__(self, model: str, adapter: str | None, gguf_file: str | None, device: str, precision: str, seed: int,
                 settings: dict, num_threads: int = 0, merge: bool = True) -> None:
        import torch

        from ray_icma.allocator import loaded_allocator
        from ray_icma.generate.generator import Generator

        self._allocator = loaded_allocator()
        if num_threads > 0:
            torch.set_num_threads(num_threads)
        self.generator = Generator(model, adapter=adapter, gguf_file=gguf_file, device=device, precision=precision, seed=seed,
                                   merge=bool(adapter) and merge)
        print(f"[ray-icma] generate actor: {self.generator.kernels}{' (adapter merged)' if self.generator.merged else ''}; "
              f"allocator {self._allocator}", flush=True)
        self.settings = dict(settings)
        self.decoding = DecodingConfig.model_validate(self.settings["decoding"])

    def _prompt(self, task: str, text: str, examples_json: str, prompt: str) -> tuple[str, int]:
        from ray_icma.prompts import fit_prompt

        examples = json.loads(examples_json) if examples_json else None
        if examples is None:  # a row with only a ready-made prompt: use it verbatim
            return prompt, 0
        return fit_prompt(self.generator.tokenizer, task, text, [tuple(e) for e in examples],
                          cutoff_len=self.settings["cutoff_len"], answer_reserve=self.settings["max_new_tokens"])

    def _run(self, task: str, prompts: list[str]):
        from ray_icma.prompts import parse_output

        s = self.settings
        gens = self.generator.generate_detailed(
            prompts, max_new_tokens=s["max_new_tokens"], batch_size=s["batch_size"], stop=("\n\n",),
            **self.decoding.for_task(task),
        )
        return [(parse_output(task, g.text), g.text, g.n_new_tokens, g.n_prompt_tokens) for g in gens]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(batch["id"])
        results: list[tuple[str, str, int, int]] = [("", "", 0, 0)] * n
        n_examples = [0] * n
        prompts = [""] * n
        errors = [""] * n
        for i in range(n):
            try:
                prompts[i], n_examples[i] = self._prompt(str(batch["task"][i]), str(batch["input"][i]),
                                                         str(batch["examples_json"][i]), str(batch["prompt"][i]))
            except Exception as exc:  # noqa: BLE001 - a bad row is reported, the batch goes on
                errors[i] = f"prompt: {type(exc).__name__}: {exc}"
        for task in sorted({str(t) for t in batch["task"]}):
            idx = [i for i in range(n) if str(batch["task"][i]) == task and not errors[i]]
            if not idx:
                continue
            try:
                for i, res in zip(idx, self._run(task, [prompts[i] for i in idx])):
                    results[i] = res
            except Exception:  # noqa: BLE001 - retry one by one so one bad row does not sink the batch
                for i in idx:
                    try:
                        results[i] = self._run(task, [prompts[i]])[0]
                    except Exception as exc:  # noqa: BLE001
                        errors[i] = f"generate: {type(exc).__name__}: {exc}"
        predictions = [r[0] for r in results]
        valid = [smiles_is_valid(p) if str(t) == "cap2mol" else True for p, t in zip(predictions, batch["task"])]
        return {
            "_order": batch["_order"],
            "id": batch["id"],
            "task": batch["task"],
            "input": batch["input"],
            "reference": batch["reference"],
            "prediction": np.array(predictions, dtype=object),
            "raw": np.array([r[1] for r in results], dtype=object),
            "n_examples": np.array(n_examples, dtype=np.int64),
            "n_new_tokens": np.array([r[2] for r in results], dtype=np.int64),
            "n_prompt_tokens": np.array([r[3] for r in results], dtype=np.int64),
            "valid": np.array(valid, dtype=bool),
            "error": np.array(errors, dtype=object),
            "_precision": np.array([self.generator.precision] * n, dtype=object),  # resolved, for the meta
            "_allocator": np.array([self._allocator] * n, dtype=object),  # this actor process's (ray_icma.allocator)
        }


def read_icl_rows(path: str | PathLike[str]) -> list[dict]:
    """Read in-context rows from a JSONL file (one ``build_icl_rows`` dict per line).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line that is not JSON or lacks a required field (message gives file:line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"rows file {path} not found")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    return rows


def _flatten_row(row: dict, pos: int = -1) -> dict:
    """One row for Arrow: examples become a JSON string; ``_order`` keeps input order."""
    missing = [k for k in _REQUIRED if k not in row]
    if missing:
        raise ValueError(f"row {pos} (id {row.get('id', '?')!r}) lacks {', '.join(missing)}; rows come from build_icl_rows")
    examples = row.get("examples")
    if isinstance(examples, str):  # already flattened (a Dataset read back from JSON)
        examples = json.loads(examples) if examples else None
    if examples is None and not row.get("prompt"):
        raise ValueError(f"row {pos} (id {row['id']!r}) has neither 'examples' nor 'prompt'")
    return {
        "_order": pos,
        "id": str(row["id"]),
        "task": str(row["task"]),
        "input": str(row["input"]),
        "reference": str(row["reference"]),
        "examples_json": json.dumps([list(e) for e in examples]) if examples is not None else "",
        "prompt": str(row.get("prompt") or ""),
    }


def _to_items(rows: Iterable[dict]) -> list[dict]:
    return [_flatten_row(row, pos) for pos, row in enumerate(rows)]


def generate_predictions(
    rows: Sequence[dict] | str | PathLike[str] | Any,
    out_path: str | PathLike[str],
    *,
    model: str,
    adapter: str | None = None,
    gguf_file: str | None = None,
    batch_size: int = 8,
    concurrency: int = 1,
    num_gpus_per_actor: float = 0,
    num_cpus_per_actor: float = 1,
    max_new_tokens: int = 256,
    decoding: DecodingConfig | str | Mapping[str, Any] | None = None,
    cutoff_len: int = 1024,
    device: str = "auto",
    precision: str = "auto",
    merge_adapter: bool = True,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Generate a prediction for every row with a Ray Data actor pool and write the JSONL.

    Args:
        rows: in-context rows (``build_icl_rows`` output), a JSONL file of them, or a Ray
            Dataset with the same columns (``examples`` as a JSON string in ``examples_json``).
        out_path: predictions JSONL to write (``id, task, input, reference, prediction, raw,
            n_examples, n_new_tokens, valid, error``); ``<out>.meta.json`` gets the counts, the
            decoding settings per task and the precision the actors resolved.
        model: model spec (``smollm2-135m``, ``tiny-random-llama``, a dir or Hub id).
        adapter: LoRA adapter dir from training, or None for the base model.
        gguf_file: GGUF file name inside ``model``.
        batch_size: rows per Ray Data batch and per forward pass.
        concurrency: generator actors (one model copy each).
        num_gpus_per_actor: GPUs per actor (0: CPU; fractions share a GPU).
        num_cpus_per_actor: CPUs reserved per actor; also its torch thread count.
        max_new_tokens: answer budget (also reserved in the prompt's token budget).
        decoding: a :class:`~ray_icma.generate.decoding.DecodingConfig`, a preset name
            (``greedy``, ``icma``: ICMA's ``inference.py``) or a mapping ``{preset, num_beams,
            do_sample, temperature, top_p, top_k, repetition_penalty, seed}``; None = greedy.
        cutoff_len: the model's token budget for prompt + answer (ICMA: 1024).
        device, precision: passed to each actor's ``Generator`` (precision auto | bf16 | fp32).
        merge_adapter: merge the adapter into each actor's copy of the weights (faster; default).
        seed: the run's seed: samples with it unless ``decoding`` names a seed (its own or its
            preset's, icma 42).
        progress: show a progress bar (Ray Data's own bars are turned off then).

    Returns:
        ``out_path``.

    Raises:
        ValueError: bad settings (``ray_icma.config.ConfigError`` for the decoding) or rows
            without the required fields.
    """
    import ray

    from ray_icma.allocator import allocator_env
    from ray_icma.precision import PRECISIONS
    from ray_icma.ray_connect import connect_ray

    if batch_size < 1 or concurrency < 1:
        raise ValueError(f"batch_size and concurrency must be >= 1 (got {batch_size}, {concurrency})")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1 (got {max_new_tokens})")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    out_path = Path(out_path)
    decoding = as_decoding(decoding)  # a bad preset or value fails here, before any work
    # CPU actors run on tcmalloc where the nodes have it (ray_icma.allocator); a bad setting fails here
    remote_args = {} if num_gpus_per_actor else {"runtime_env": {"env_vars": preload}} if (preload := allocator_env()) else {}
    sampling_seed = decoding.sampling_seed(seed)
    settings = {"max_new_tokens": max_new_tokens, "batch_size": batch_size, "cutoff_len": cutoff_len,
                "decoding": decoding.model_dump(mode="json")}
    if isinstance(rows, (str, PathLike)):
        rows = read_icl_rows(rows)
    items = None
    if not isinstance(rows, ray.data.Dataset):  # check plain rows before starting anything
        items = _to_items(rows)
        if not items:
            raise ValueError("no rows to generate for")
    connect_ray()
    # Set before any Dataset exists: a Dataset copies the context when it is created.
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # rows come back in input order (Dataset input has no _order)
    if progress:
        context.enable_progress_bars = False  # our own bar instead (Ray's logs a status block every 10 s off a TTY)
    if items is None:
        n_rows = rows.count()
        dataset = rows.map(_flatten_row)
    else:
        n_rows = len(items)
        n_blocks = max(1, min(-(-n_rows // batch_size), 4 * concurrency))
        # Length buckets: rows of similar prompt length share a batch (less left padding);
        # `_order` restores the input order when the predictions are written.
        items = sorted(items, key=_prompt_size, reverse=True)
        dataset = ray.data.from_items(items, override_num_blocks=n_blocks)
    predicted = dataset.map_batches(
        PredictBatches,
        fn_constructor_kwargs={
            "model": model, "adapter": str(adapter) if adapter else None, "gguf_file": gguf_file, "device": device,
            "precision": precision, "seed": sampling_seed, "settings": settings, "num_threads": max(1, int(num_cpus_per_actor)),
            "merge": merge_adapter,
        },
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=num_cpus_per_actor,
        num_gpus=num_gpus_per_actor or None,
        batch_format="numpy",
        **remote_args,
    )
    start = time.perf_counter()
    collected: list[dict] = []
    bar = _progress_bar(n_rows, f"generate {out_path.name}") if progress else None
    for batch in predicted.iter_batches(batch_size=None, batch_format="numpy"):
        keys = list(batch)
        for i in range(len(batch["id"])):
            collected.append({k: _plain(batch[k][i]) for k in keys})
        if bar is not None:
            bar.update(len(batch["id"]))
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - start
    collected.sort(key=lambda r: r.pop("_order", -1))  # stable: Dataset input keeps its (preserved) order
    resolved = sorted({str(r.pop("_precision", "")) for r in collected} - {""})  # what the actors ran, not what was asked
    allocators = sorted({str(r.pop("_allocator", "")) for r in collected} - {""})
    _write_jsonl(out_path, collected)
    meta = _summarise(collected, seconds, model=model, adapter=adapter, concurrency=concurrency)
    meta.update(max_new_tokens=max_new_tokens, batch_size=batch_size, cutoff_len=cutoff_len,
                decoding=decoding.preset, decoding_settings={t: decoding.for_task(t) for t in meta["tasks"]},
                seed=sampling_seed, precision=precision, resolved_precision=resolved, allocator=allocators)
    meta_path(out_path).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    log.info("wrote %d predictions to %s (%s)", len(collected), out_path, meta)
    return out_path


def _prompt_size(item: dict) -> int:
    """A prompt's length in characters (examples + query), the bucketing key (no tokenizer on the driver)."""
    return len(item["examples_json"]) + len(item["input"]) if item["examples_json"] else len(item["prompt"])


def _progress_bar(total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="row", dynamic_ncols=True)


def _plain(value: Any) -> Any:
    """numpy scalars -> Python values for json.dumps."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            if row.get("task") != "cap2mol":
                row.pop("valid", None)  # validity is a molecule property; captions have none
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def _summarise(rows: list[dict], seconds: float, *, model: str, adapter: str | None, concurrency: int) -> dict:
    tasks = sorted({r["task"] for r in rows})
    new_tokens = int(sum(r.get("n_new_tokens", 0) for r in rows))
    prompt_tokens = int(sum(r.get("n_prompt_tokens", 0) for r in rows))
    cap2mol = [r for r in rows if r["task"] == "cap2mol"]
    return {
        "rows": len(rows),
        "tasks": tasks,
        "errors": sum(1 for r in rows if r.get("error")),
        "empty_predictions": sum(1 for r in rows if not r.get("prediction")),
        "cap2mol_rows": len(cap2mol),
        "invalid_smiles": sum(1 for r in cap2mol if not r.get("valid", False)),
        "mean_examples": (sum(r.get("n_examples", 0) for r in rows) / len(rows)) if rows else 0.0,
        "new_tokens": new_tokens,
        "prompt_tokens": prompt_tokens,
        "seconds": round(seconds, 3),
        "tokens_per_second": round(new_tokens / seconds, 3) if seconds > 0 else None,  # new tokens (as before)
        "new_tokens_per_second": round(new_tokens / seconds, 3) if seconds > 0 else None,
        "prompt_tokens_per_second": round(prompt_tokens / seconds, 3) if seconds > 0 else None,
        "total_tokens_per_second": round((new_tokens + prompt_tokens) / seconds, 3) if seconds > 0 else None,
        "model": model,
        "adapter": str(adapter) if adapter else None,
        "concurrency": concurrency,
    }
