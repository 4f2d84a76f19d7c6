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
    report/index.html               the report (plots embedded)
"""
from __future__ import annotations

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
    report_path: Path
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

    # ------------------------------------------------------------------ plumbing
    def _stage(self, name: str, outputs: Sequence[Path], body: Callable[[], str | None], skip_reason: str | None = None) -> None:
        """Run ``body`` unless its outputs exist (resume) or ``skip_reason`` says it does not apply."""
        n = STAGES.index(name) + 1
        if skip_reason:
            self.stages.append({"name": name, "status": "skipped", "seconds": 0.0, "detail": skip_reason})
            self.say(f"[{n}/{len(STAGES)}] {name}: skipped ({skip_reason})")
            return
        if outputs and name not in self.forced and all(p.exists() for p in outputs):
            self.stages.append({"name": name, "status": "skipped", "seconds": 0.0, "detail": "outputs exist (resumed)"})
            self.say(f"[{n}/{len(STAGES)}] {name}: outputs exist, skipped")
            return
        self.say(f"[{n}/{len(STAGES)}] {name} ...")
        start = time.perf_counter()
        try:
            detail = body() or ""
        except Exception as exc:
            seconds = time.perf_counter() - start
            self.stages.append({"name": name, "status": "failed", "seconds": seconds, "detail": f"{type(exc).__name__}: {exc}"})
            _write_json(self.dir / "stages.json", self.stages)
            raise
        seconds = time.perf_counter() - start
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

    def embed(self) -> str:
        from ray_icma.jobs.embed import embed_molecules

        checkpoint = self.cfg.retrieval.mol2cap.partition(":")[2]
        result = embed_molecules(self.dir / "data" / "pool.jsonl", self.dir / "index" / "gnn", checkpoint=checkpoint,
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
            path = self._contexts_path(task, "test")
            if "contexts" in self.forced or not path.exists():
                build_contexts(self.queries, self.pool, task, retriever=retriever, k=self.cfg.retrieval.k, out_path=path, seed=self.cfg.run.seed)
                done.append(f"{task}/test")
            path = self._contexts_path(task, "train")
            if self._needs_train_contexts(task) and ("contexts" in self.forced or not path.exists()):
                build_contexts(self.pool, self.pool, task, retriever=retriever, k=self.cfg.retrieval.k, out_path=path, seed=self.cfg.run.seed)
                done.append(f"{task}/train")
        return "built " + ", ".join(done) if done else "nothing to build"

    def _context_outputs(self) -> list[Path]:
        outs = [self._contexts_path(t, "test") for t in self.cfg.tasks]
        return outs + [self._contexts_path(t, "train") for t in self.cfg.tasks if self._needs_train_contexts(t)]

    def _train_result_path(self, task: str) -> Path:
        return self.dir / "train" / task / "result.json"

    def train(self) -> str:
        from ray_icma.train.trainer import run_training

        t = self.cfg.train
        details = []
        for task in self.cfg.tasks:
            result_path = self._train_result_path(task)
            if "train" not in self.forced and result_path.exists():
                continue
            n_shot = self.cfg.n_shot(task)
            train_cfg = {
                "model": {"name": self.cfg.model.name, "gguf_file": self.cfg.model.gguf_file},
                "lora": {"r": t.lora_r, "alpha": t.lora_alpha, "dropout": t.lora_dropout},
                "data": {
                    "task": task,
                    "train": str(self.dir / "data" / "pool.jsonl"),
                    "contexts": str(self._contexts_path(task, "train")) if n_shot > 0 else None,
                    "n_shot": n_shot,
                    "max_rows": t.max_rows,
                    "cutoff_len": t.cutoff_len,
                },
                "optim": {"lr": t.lr, "warmup_steps": t.warmup_steps, "max_steps": t.max_steps,
                          "micro_batch_size": t.micro_batch_size, "gradient_accumulation_steps": t.gradient_accumulation_steps},
                "strategy": t.strategy,
                "scaling": {"num_workers": t.num_workers, "use_gpu": t.use_gpu, "cpus_per_worker": t.cpus_per_worker},
                "run": {"name": f"{self.cfg.run.name}-{task}", "storage_path": str((self.dir / "train" / "ray").resolve()),
                        "output_dir": str(self.dir / "train" / task)},
                "seed": self.cfg.run.seed,
            }
            self.say(f"    training {task} ({n_shot}-shot, {t.max_steps} steps)")
            result = run_training(train_cfg)
            _write_json(result_path, {
                "task": task, "n_shot": n_shot, "adapter_dir": str(result.adapter_dir), "checkpoint_path": str(result.checkpoint_path),
                "metrics": result.metrics, "loss_history": result.loss_history, "steps": len(result.loss_history),
            })
            last = result.loss_history[-1]["loss"] if result.loss_history else float("nan")
            details.append(f"{task}: final loss {last:.3f}")
        return "; ".join(details)

    def _predictions_path(self, task: str, suffix: str = "") -> Path:
        return self.dir / "predictions" / f"{task}{suffix}.jsonl"

    def generate(self) -> str:
        from ray_icma.generate import generate_predictions
        from ray_icma.jobs.contexts import read_contexts
        from ray_icma.prompts import build_icl_rows

        g = self.cfg.generate
        details = []
        for task in self.cfg.tasks:
            out = self._predictions_path(task)
            if "generate" not in self.forced and out.exists():
                continue
            n_shot = self.cfg.n_shot(task)
            contexts = read_contexts(self._contexts_path(task, "test")) if n_shot > 0 else None
            rows = build_icl_rows(self.queries, self.pool, contexts, task, n_shot, seed=self.cfg.run.seed)
            adapter = None
            if self.cfg.train.enabled:
                adapter = _read_json(self._train_result_path(task))["adapter_dir"]
            generate_predictions(
                rows, out, model=self.cfg.model.name, adapter=adapter, gguf_file=self.cfg.model.gguf_file,
                batch_size=g.batch_size, concurrency=g.concurrency, num_gpus_per_actor=g.num_gpus_per_actor,
                num_cpus_per_actor=g.num_cpus_per_actor, max_new_tokens=g.max_new_tokens, num_beams=g.num_beams,
                do_sample=g.do_sample, temperature=g.temperature, cutoff_len=self.cfg.train.cutoff_len, seed=self.cfg.run.seed,
            )
            meta = _read_json(out.with_name(out.name + ".meta.json"))
            details.append(f"{task}: {meta['rows']} rows, {meta['tokens_per_second']} tok/s"
                           + (f", {meta['invalid_smiles']} invalid SMILES" if task == "cap2mol" else ""))
        return "; ".join(details)

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
    def run(self) -> PipelineResult:
        self.dir.mkdir(parents=True, exist_ok=True)
        _write_json(self.dir / "config.json", self.cfg.model_dump())
        from ray_icma.ray_connect import connect_ray

        connect_ray(log_to_driver=True)  # training workers' per-step loss lines are the train stage's progress
        _quiet_rdkit()
        tasks = self.cfg.tasks
        self._stage("data", [self.dir / "data" / "queries.jsonl", self.dir / "data" / "pool.jsonl"], self.data)
        self._load_data_files()
        gnn = self.cfg.retrieval.mol2cap.startswith("gnn:") and "mol2cap" in tasks
        self._stage("embed", [self.dir / "index" / "gnn" / "manifest.json"], self.embed,
                    skip_reason=None if gnn else f"mol2cap retrieval is {self.cfg.retrieval.mol2cap!r}; set retrieval.mol2cap=gnn:<checkpoint.pth> to embed with a GNN + FAISS")
        self._stage("contexts", self._context_outputs(), self.contexts_stage)
        self._stage("train", [self._train_result_path(t) for t in tasks], self.train,
                    skip_reason=None if self.cfg.train.enabled else "train.enabled=false (base model)")
        self._stage("generate", [self._predictions_path(t) for t in tasks], self.generate)
        self._stage("evaluate", [self.dir / "metrics" / f"{t}.json" for t in tasks], self.evaluate)
        report_box: dict[str, Path] = {}

        def _report() -> str:
            report_box["path"] = self.report()
            return str(report_box["path"])

        self._stage("report", [], _report)  # always rebuilt: it reflects this invocation's stage log
        metrics = {t: _read_json(self.dir / "metrics" / f"{t}.json")["metrics"] for t in tasks}
        return PipelineResult(run_dir=self.dir, report_path=report_box["path"], metrics=metrics, stages=self.stages)


def _quiet_rdkit() -> None:
    """RDKit warns per molecule ("not removing hydrogen atom ..."); bad rows are counted instead."""
    try:
        from rdkit import RDLogger
    except ImportError:  # the chem extra is optional until a molecule stage needs it
        return
    RDLogger.DisableLog("rdApp.*")


def run_pipeline(cfg: PipelineConfig, *, rerun: Sequence[str] = (), say: Callable[[str], None] | None = None) -> PipelineResult:
    """Run (or resume) the whole pipeline for ``cfg``.

    Args:
        cfg: validated config (see :func:`ray_icma.pipeline.load_pipeline_config`).
        rerun: stages to run even when their outputs exist (later stages rerun too).
        say: progress printer; default ``logging.info``.

    Returns:
        :class:`PipelineResult` with the report path and metrics.

    Raises:
        ValueError: unknown stage names in ``rerun``; any stage's own errors propagate after
            the failure is recorded in ``stages.json``.
    """
    return _Recipe(cfg, rerun, say or log.info).run()
