"""The end-to-end recipe: data -> (GNN embedding + FAISS) -> contexts -> ICMT -> generation ->
evaluation -> HTML report, every stage writing into ``<run.root>/<run.name>/``.

Reads top to bottom like a torchtune recipe. A stage whose outputs already exist is skipped,
so an interrupted run resumes where it stopped (``rerun=("train",)`` forces a stage and the
stages after it). Run dir layout::

    config.json                     resolved config
    data/{queries,pool}.jsonl       records actually used
    index/gnn/                      GNN embeddings + FAISS index (only with a gnn: retriever)
    contexts/<task>_{test,train}.jsonl
    train/<task>/                   adapter/, loss.json, result.json
    predictions/<task>.jsonl (+ .meta.json), predictions/<task>_retrieval_copy.jsonl
    metrics/<task>.json, metrics/<task>_retrieval_copy.json
    stages.json                     status and seconds of every stage of the last invocation
    fingerprints.json               per finished stage: the config it ran with and the hashes of its input files
    report/index.html               the report (plots embedded)

Resume is checked, not assumed: each stage's fingerprint is its slice of the config plus the
SHA-256 of every input file (the previous stages' outputs, the source data, a GNN checkpoint).
A stage whose outputs exist is skipped only when its fingerprint is unchanged; otherwise, by
``run.on_change``, it is rerun with every later stage (``rerun``, the default) or the run stops
(``refuse``), and either way the message names the keys and files that changed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray_icma.pipeline.config import STAGES, PipelineConfig

__all__ = ["PipelineResult", "run_pipeline"]

log = logging.getLogger(__name__)


@dataclass
class PipelineResult:
    """What a run produced: the report path, the metrics per task and the stage log."""

    run_dir: Path
    report_path: Path | None  # None when stopped early (``until``)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    stages: list[dict] = field(default_factory=list)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


#: stages that run Ray jobs; Ray is joined only when one of them actually runs
_RAY_STAGES = ("embed", "train", "generate")


class StageChangedError(RuntimeError):
    """A finished stage's config or inputs changed and ``run.on_change`` is ``refuse``."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_hashes(paths: Sequence[Path]) -> dict[str, str]:
    """SHA-256 of each input file (a folder: of every file in it); ``"missing"`` when absent."""
    out: dict[str, str] = {}
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                out[str(child)] = _sha256(child)
        else:
            out[str(path)] = _sha256(path) if path.is_file() else "missing"
    return out


def _fingerprint(config: Any, inputs: dict[str, str]) -> str:
    blob = json.dumps({"config": config, "inputs": inputs}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _changes(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two JSON-like dicts."""
    keys = sorted(set(old) | set(new))
    out = []
    for key in keys:
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += _changes(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


class _Recipe:
    """One pipeline invocation. ``say`` prints progress lines (the CLI passes rich's console.print)."""

    def __init__(self, cfg: PipelineConfig, rerun: Sequence[str], say: Callable[[str], None]):
        unknown = [s for s in rerun if s not in STAGES]
        if unknown:
            raise ValueError(f"unknown stage(s) {', '.join(unknown)}; stages are {', '.join(STAGES)}")
        self.cfg = cfg
        self.dir = cfg.run_dir
        first_forced = min((STAGES.index(s) for s in rerun), default=len(STAGES))
        self.forced = set(STAGES[first_forced:])  # a forced stage invalidates everything after it
        self.say = say
        self.stages: list[dict] = []
        self.queries: list = []
        self.pool: list = []
        self.contexts: dict[str, dict[str, Any]] = {}
        self._fingerprints_path = self.dir / "fingerprints.json"
        self.fingerprints: dict[str, dict] = _read_json(self._fingerprints_path) if self._fingerprints_path.is_file() else {}

    # ------------------------------------------------------------------ plumbing
    def _stage_inputs(self, name: str) -> tuple[dict, list[Path]]:
        """What a stage's outputs depend on: its config slice and its input files."""
        cfg, d = self.cfg, self.dir
        tasks = list(cfg.tasks)
        data_files = [d / "data" / "queries.jsonl", d / "data" / "pool.jsonl"]
        dump = lambda section: section.model_dump(mode="json")  # noqa: E731
        gnn = self._gnn_retriever()
        if name == "data":
            return {"data": dump(cfg.data), "seed": cfg.run.seed}, [Path(cfg.data.queries), Path(cfg.data.pool)]
        if name == "embed":
            return {"retriever": cfg.retrieval.mol2cap}, [d / "data" / "pool.jsonl", Path(self._gnn_checkpoint())]
        if name == "contexts":
            needs = {t: self._needs_train_contexts(t) for t in tasks}
            config = {"tasks": tasks, "retrievers": {t: getattr(cfg.retrieval, t) for t in tasks}, "k": cfg.retrieval.k,
                      "seed": cfg.run.seed, "train_contexts": needs}
            return config, data_files + ([d / "index" / "gnn"] if gnn else [])
        if name == "train":
            return ({"tasks": tasks, "model": dump(cfg.model), "train": dump(cfg.train), "seed": cfg.run.seed},
                    [d / "data" / "pool.jsonl"] + [self._contexts_path(t, "train") for t in tasks if self._needs_train_contexts(t)])
        if name == "generate":
            adapters = [self._train_result_path(t) for t in tasks] if cfg.train.enabled else []
            return ({"tasks": tasks, "model": dump(cfg.model), "generate": dump(cfg.generate), "selection": dump(cfg.train.data),
                     "n_shot": {t: cfg.n_shot(t) for t in tasks}, "train_enabled": cfg.train.enabled, "seed": cfg.run.seed},
                    data_files + [self._contexts_path(t, "test") for t in tasks if cfg.n_shot(t) > 0] + adapters)
        if name == "evaluate":
            return {"tasks": tasks, "evaluate": dump(cfg.evaluate)}, [self._predictions_path(t) for t in tasks] + (
                [self._contexts_path(t, "test") for t in tasks] + [d / "data" / "pool.jsonl"] if cfg.evaluate.retrieval_copy_baseline else [])
        return {}, []

    def _record_fingerprint(self, name: str) -> None:
        config, files = self._stage_inputs(name)
        inputs = _file_hashes(files)
        self.fingerprints[name] = {"fingerprint": _fingerprint(config, inputs), "config": config, "inputs": inputs}
        _write_json(self._fingerprints_path, self.fingerprints)

    def _changed(self, name: str) -> list[str] | None:
        """None when the stage's recorded fingerprint matches; else what changed (one line each)."""
        config, files = self._stage_inputs(name)
        inputs = _file_hashes(files)
        old = self.fingerprints.get(name)
        if old is None:
            return ["no fingerprint recorded for the existing outputs (made by an older ray-icma, or interrupted)"]
        if old["fingerprint"] == _fingerprint(config, inputs):
            return None
        lines = _changes(old.get("config", {}), json.loads(json.dumps(config, default=str)))
        for path in sorted(set(old.get("inputs", {})) | set(inputs)):
            if old.get("inputs", {}).get(path) != inputs.get(path):
                lines.append(f"input file {path} changed")
        return lines or ["fingerprint differs"]

    def _stage(self, name: str, outputs: Sequence[Path], body: Callable[[], str | None], skip_reason: str | None = None) -> None:
        """Run ``body`` unless its outputs exist with an unchanged fingerprint (resume) or
        ``skip_reason`` says it does not apply."""
        n = STAGES.index(name) + 1
        if skip_reason:
            self.stages.append({"name": name, "status": "skipped", "seconds": 0.0, "detail": skip_reason})
            self.say(f"[{n}/{len(STAGES)}] {name}: skipped ({skip_reason})")
            return
        if outputs and name not in self.forced and all(p.exists() for p in outputs):
            changed = self._changed(name)
            if changed is None:
                self.stages.append({"name": name, "status": "skipped", "seconds": 0.0, "detail": "outputs exist, inputs unchanged (resumed)"})
                self.say(f"[{n}/{len(STAGES)}] {name}: outputs exist and inputs are unchanged, skipped")
                return
            what = "; ".join(changed)
            if self.cfg.run.on_change == "refuse":
                raise StageChangedError(
                    f"stage {name} of run {self.dir} already ran with other inputs ({what}). Refusing to mix them "
                    f"(run.on_change=refuse): use a new run.name, `--rerun {name}`, or run.on_change=rerun."
                )
            self.say(f"[{n}/{len(STAGES)}] {name}: inputs changed since it ran ({what}); rerunning it and the stages after it")
            self.forced |= set(STAGES[STAGES.index(name):])
            self.changed_detail = f"rerun: {what}"
        self.say(f"[{n}/{len(STAGES)}] {name} ...")
        if name in _RAY_STAGES:
            from ray_icma.ray_connect import connect_ray

            connect_ray(log_to_driver=True)  # training workers' per-step loss lines are the train stage's progress
        start = time.perf_counter()
        try:
            detail = body() or ""
        except Exception as exc:
            seconds = time.perf_counter() - start
            self.stages.append({"name": name, "status": "failed", "seconds": seconds, "detail": f"{type(exc).__name__}: {exc}"})
            _write_json(self.dir / "stages.json", self.stages)
            raise
        seconds = time.perf_counter() - start
        if outputs:
            self._record_fingerprint(name)
        if getattr(self, "changed_detail", None):
            detail = f"{self.changed_detail}; {detail}" if detail else self.changed_detail
            self.changed_detail = None
        self.stages.append({"name": name, "status": "ran", "seconds": round(seconds, 2), "detail": detail})
        self.say(f"[{n}/{len(STAGES)}] {name}: done in {seconds:.1f} s{f' - {detail}' if detail else ''}")
        _write_json(self.dir / "stages.json", self.stages)

    def _load_data_files(self) -> None:
        from ray_icma.data import load_records

        self.queries = load_records(self.dir / "data" / "queries.jsonl", validate_smiles=False).records
        self.pool = load_records(self.dir / "data" / "pool.jsonl", validate_smiles=False).records

    # ------------------------------------------------------------------ stages
    def data(self) -> str:
        from ray_icma.data import load_records, write_records

        cfg = self.cfg.data
        loaded_q = load_records(cfg.queries, validate_smiles=cfg.validate_smiles)
        loaded_p = load_records(cfg.pool, validate_smiles=cfg.validate_smiles)
        queries = list(loaded_q.records)
        if cfg.n_queries is not None and cfg.n_queries < len(queries):
            if cfg.query_sample == "random":
                picked = sorted(random.Random(self.cfg.run.seed).sample(range(len(queries)), cfg.n_queries))
                queries = [queries[i] for i in picked]
            else:
                queries = queries[: cfg.n_queries]
        if not queries or not loaded_p.records:
            raise ValueError(f"no usable rows: {len(queries)} queries from {cfg.queries}, {len(loaded_p.records)} pool rows from {cfg.pool}")
        write_records(queries, self.dir / "data" / "queries.jsonl")
        write_records(loaded_p.records, self.dir / "data" / "pool.jsonl")
        _write_json(self.dir / "data" / "summary.json", {"queries": loaded_q.summary(), "pool": loaded_p.summary(), "n_queries_used": len(queries)})
        return f"{len(queries)} queries, {len(loaded_p.records)} pool rows"

    def _gnn_retriever(self) -> bool:
        return self.cfg.retrieval.mol2cap.startswith("gnn:") and "mol2cap" in self.cfg.tasks

    def _gnn_checkpoint(self) -> str:
        return self.cfg.retrieval.mol2cap.partition(":")[2]

    def embed(self) -> str:
        from ray_icma.jobs.embed import embed_molecules

        result = embed_molecules(self.dir / "data" / "pool.jsonl", self.dir / "index" / "gnn", checkpoint=self._gnn_checkpoint(),
                                 batch_size=self.cfg.retrieval.embed_batch_size, concurrency=self.cfg.retrieval.embed_concurrency)
        return result.summary()

    def _contexts_path(self, task: str, split: str) -> Path:
        return self.dir / "contexts" / f"{task}_{split}.jsonl"

    def _needs_train_contexts(self, task: str) -> bool:
        return self.cfg.train.enabled and self.cfg.n_shot(task) > 0

    def contexts_stage(self) -> str:
        from ray_icma.jobs.contexts import build_contexts

        done = []
        for task in self.cfg.tasks:
            retriever = getattr(self.cfg.retrieval, task)
            # a gnn: retriever searches the embed stage's FAISS index over the pool (no re-encoding)
            index_dir = self.dir / "index" / "gnn" if task == "mol2cap" and self._gnn_retriever() else None
            common = {"retriever": retriever, "k": self.cfg.retrieval.k, "seed": self.cfg.run.seed, "index_dir": index_dir,
                      "batch_size": self.cfg.retrieval.embed_batch_size}
            path = self._contexts_path(task, "test")
            if "contexts" in self.forced or not path.exists():
                build_contexts(self.queries, self.pool, task, out_path=path, **common)
                done.append(f"{task}/test")
            path = self._contexts_path(task, "train")
            if self._needs_train_contexts(task) and ("contexts" in self.forced or not path.exists()):
                build_contexts(self.pool, self.pool, task, out_path=path, **common)
                done.append(f"{task}/train")
        return "built " + ", ".join(done) if done else "nothing to build"

    def _context_outputs(self) -> list[Path]:
        outs = [self._contexts_path(t, "test") for t in self.cfg.tasks]
        return outs + [self._contexts_path(t, "train") for t in self.cfg.tasks if self._needs_train_contexts(t)]

    def _train_result_path(self, task: str) -> Path:
        return self.dir / "train" / task / "result.json"

    def _each_task(self, work: Callable[[str], str | None]) -> str:
        """``work(task)`` for every task, one after the other or (``run.concurrent_tasks``) all at once.

        Returns the tasks' details (``work``'s non-empty returns) in task order. With concurrent
        tasks a failing task does not stop the others: every task finishes or fails, what the
        finished ones wrote stays, and then the first failure (in task order) is raised.
        """
        tasks = list(self.cfg.tasks)
        if not self.cfg.run.concurrent_tasks or len(tasks) < 2:
            return "; ".join(d for d in (work(t) for t in tasks) if d)
        from concurrent.futures import ThreadPoolExecutor

        _import_before_threads()
        with ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="task") as pool:
            futures = [pool.submit(work, t) for t in tasks]
        failed = [(t, f.exception()) for t, f in zip(tasks, futures) if f.exception() is not None]
        if failed:
            task, exc = failed[0]
            others = ", ".join(t for t, _ in failed[1:])
            self.say(f"    {task} failed: {type(exc).__name__}: {exc}" + (f" (also failed: {others})" if others else ""))
            raise exc  # type: ignore[misc]
        return "; ".join(d for d in (f.result() for f in futures) if d)

    def train(self) -> str:
        return self._each_task(self._train_task)

    def _train_task(self, task: str) -> str | None:
        from ray_icma.train.trainer import run_training

        result_path = self._train_result_path(task)
        if "train" not in self.forced and result_path.exists():
            return None
        n_shot = self.cfg.n_shot(task)
        train_cfg = self.cfg.train_config(
            task, train_file=str(self.dir / "data" / "pool.jsonl"),
            contexts=str(self._contexts_path(task, "train")) if n_shot > 0 else None,
            run_name=f"{self.cfg.run.name}-{task}", storage_path=str((self.dir / "train" / "ray").resolve()),
            output_dir=str(self.dir / "train" / task),
        )
        steps = train_cfg.optim.max_steps or f"{train_cfg.optim.epochs} epoch(s)"
        self.say(f"    training {task} ({n_shot}-shot, {steps} steps)")
        result = run_training(train_cfg)
        _write_json(result_path, {
            "task": task, "n_shot": n_shot, "adapter_dir": result.adapter_dir, "model_dir": result.model_dir,
            "checkpoint_path": str(result.checkpoint_path),
            "metrics": result.metrics, "loss_history": result.loss_history, "steps": len(result.loss_history),
        })
        last = result.loss_history[-1]["loss"] if result.loss_history else float("nan")
        return f"{task}: final loss {last:.3f}"

    def _predictions_path(self, task: str, suffix: str = "") -> Path:
        return self.dir / "predictions" / f"{task}{suffix}.jsonl"

    def generate(self) -> str:
        return self._each_task(self._generate_task)

    def _generate_task(self, task: str) -> str | None:
        from ray_icma.generate import generate_predictions
        from ray_icma.jobs.contexts import read_contexts
        from ray_icma.prompts import build_icl_rows

        g = self.cfg.generate
        out = self._predictions_path(task)
        if "generate" not in self.forced and out.exists():
            return None
        n_shot = self.cfg.n_shot(task)
        contexts = read_contexts(self._contexts_path(task, "test")) if n_shot > 0 else None
        sel = self.cfg.train.data  # the same example selection as training (one schema: TrainConfig.data)
        rows = build_icl_rows(self.queries, self.pool, contexts, task, n_shot, seed=self.cfg.run.seed, strategy=sel.strategy,
                              start_pos=sel.start_pos, reverse=sel.reverse, window=sel.window, p_take=sel.p_take)
        model, gguf_file, adapter = self.cfg.model.name, self.cfg.model.gguf_file, None
        if self.cfg.train.enabled:
            trained = _read_json(self._train_result_path(task))
            if trained.get("model_dir"):  # train.lora.disable_lora: a fully fine-tuned model, no adapter
                model, gguf_file = trained["model_dir"], None
            else:
                adapter = trained["adapter_dir"]
        generate_predictions(
            rows, out, model=model, adapter=adapter, gguf_file=gguf_file,
            batch_size=g.batch_size, concurrency=g.concurrency, num_gpus_per_actor=g.num_gpus_per_actor,
            num_cpus_per_actor=g.num_cpus_per_actor, max_new_tokens=g.max_new_tokens, decoding=g.decoding,
            precision=g.precision, cutoff_len=self.cfg.train.data.cutoff_len, seed=self.cfg.run.seed,
        )
        meta = _read_json(out.with_name(out.name + ".meta.json"))
        return (f"{task}: {meta['rows']} rows, {meta['tokens_per_second']} tok/s"
                + (f", {meta['invalid_smiles']} invalid SMILES" if task == "cap2mol" else ""))

    def _write_copy_baseline(self, task: str) -> Path:
        """Predictions that copy the top-1 neighbour's answer: retrieval quality in the task's own metrics."""
        from ray_icma.generate import smiles_is_valid
        from ray_icma.jobs.contexts import read_contexts
        from ray_icma.prompts import record_io

        contexts = read_contexts(self._contexts_path(task, "test"))
        by_cid = {r.cid: r for r in self.pool}
        out = self._predictions_path(task, "_retrieval_copy")
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as fh:
            for q in self.queries:
                ids = [i for i in (contexts[q.cid][0] if q.cid in contexts else []) if i in by_cid]
                inp, ref = record_io(task, q)
                pred = record_io(task, by_cid[ids[0]])[1] if ids else ""
                row = {"id": q.cid, "task": task, "input": inp, "reference": ref, "prediction": pred, "n_examples": 0}
                if task == "cap2mol":
                    row["valid"] = smiles_is_valid(pred)
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        return out

    def evaluate(self) -> str:
        from ray_icma.evaluate import evaluate_file

        tokenizer = self.cfg.evaluate.tokenizer
        details = []
        for task in self.cfg.tasks:
            result = evaluate_file(self._predictions_path(task), task=task, tokenizer=tokenizer)
            _write_json(self.dir / "metrics" / f"{task}.json", result)
            if self.cfg.evaluate.retrieval_copy_baseline:
                copy = evaluate_file(self._write_copy_baseline(task), task=task, tokenizer=tokenizer)
                _write_json(self.dir / "metrics" / f"{task}_retrieval_copy.json", copy)
            headline = next(iter(result["metrics"].items()), ("-", float("nan")))
            details.append(f"{task}: {headline[0]} {headline[1]:.3f}")
        return "; ".join(details)

    def report(self) -> Path:
        from ray_icma.pipeline.report_data import collect_report_data
        from ray_icma.report import write_report

        data = collect_report_data(self.cfg, self.stages)
        return write_report(data, self.dir / "report" / "index.html")

    # ------------------------------------------------------------------ main
    def run(self, until: str | None = None) -> PipelineResult:
        if until is not None and until not in STAGES:
            raise ValueError(f"unknown stage {until!r} for until; stages are {', '.join(STAGES)}")
        last = STAGES.index(until) if until else len(STAGES) - 1
        self.dir.mkdir(parents=True, exist_ok=True)
        _write_json(self.dir / "config.json", self.cfg.model_dump())
        _quiet_rdkit()
        tasks = self.cfg.tasks
        from ray_icma.jobs.embed import MANIFEST

        report_box: dict[str, Path] = {}

        def _report() -> str:
            report_box["path"] = self.report()
            return str(report_box["path"])

        plan = [
            ("data", [self.dir / "data" / "queries.jsonl", self.dir / "data" / "pool.jsonl"], self.data, None),
            ("embed", [self.dir / "index" / "gnn" / MANIFEST], self.embed,
             None if self._gnn_retriever() else f"mol2cap retrieval is {self.cfg.retrieval.mol2cap!r}; set retrieval.mol2cap=gnn:<checkpoint.pth> to embed with a GNN + FAISS"),
            ("contexts", None, self.contexts_stage, None),
            ("train", [self._train_result_path(t) for t in tasks], self.train,
             None if self.cfg.train.enabled else "train.enabled=false (base model)"),
            ("generate", [self._predictions_path(t) for t in tasks], self.generate, None),
            ("evaluate", [self.dir / "metrics" / f"{t}.json" for t in tasks], self.evaluate, None),
            ("report", [], _report, None),  # always rebuilt: it reflects this invocation's stage log
        ]
        for name, outputs, body, skip_reason in plan[: last + 1]:
            self._stage(name, self._context_outputs() if outputs is None else outputs, body, skip_reason)
            if name == "data":
                self._load_data_files()
        if until is not None and until != "report":
            return PipelineResult(run_dir=self.dir, report_path=None, metrics={}, stages=self.stages)
        metrics = {t: _read_json(self.dir / "metrics" / f"{t}.json")["metrics"] for t in tasks}
        return PipelineResult(run_dir=self.dir, report_path=report_box["path"], metrics=metrics, stages=self.stages)


def _import_before_threads() -> None:
    """Import, in this thread, what the task threads import on the driver: first imports are not
    thread-safe (two threads importing transformers' lazy ``AutoTokenizer`` raised ImportError in one).
    Only the driver's share: models and peft load in the Ray workers and actors."""
    import ray.data
    import ray.train.torch  # noqa: F401
    from transformers import AutoTokenizer  # noqa: F401

    import ray_icma.generate
    import ray_icma.train.trainer  # noqa: F401


def _quiet_rdkit() -> None:
    """RDKit warns per molecule ("not removing hydrogen atom ..."); bad rows are counted instead."""
    try:
        from rdkit import RDLogger
    except ImportError:  # the chem extra is optional until a molecule stage needs it
        return
    RDLogger.DisableLog("rdApp.*")


def run_pipeline(cfg: PipelineConfig, *, rerun: Sequence[str] = (), say: Callable[[str], None] | None = None,
                 until: str | None = None) -> PipelineResult:
    """Run (or resume) the whole pipeline for ``cfg``.

    Args:
        cfg: validated config (see :func:`ray_icma.pipeline.load_pipeline_config`).
        rerun: stages to run even when their outputs exist (later stages rerun too).
        say: progress printer; default ``logging.info``.
        until: stop after this stage (e.g. ``"contexts"``); the result then has no report or metrics.

    Returns:
        :class:`PipelineResult` with the report path and metrics.

    Raises:
        ValueError: unknown stage names in ``rerun``/``until``; any stage's own errors propagate
            after the failure is recorded in ``stages.json``.
        StageChangedError: ``run.on_change=refuse`` and a finished stage's config or inputs changed.
    """
    return _Recipe(cfg, rerun, say or log.info).run(until)
