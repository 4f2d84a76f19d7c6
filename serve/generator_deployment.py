"""The Generator deployment: one base model with several LoRA adapters, @serve.batch dynamic batching.

Prompt building, fitting and output parsing come from `ray_icma.prompts`; generation from
`ray_icma.generate.Generator` (the model wrapper); `GeneratorDeployment` (the Serve deployment named
"Generator") adds only the Serve parts: batching, adapter choice per request, adapters loaded, swapped
and unloaded on the live base model through user_config, sizing.

Adapters without downtime: the base model is loaded once per replica (`base_loads` in `info()`).
A reconfigure with another `generator.adapters` loads each new or changed adapter beside the served
ones under a fresh internal name (peft `load_adapter`), then switches the whole set in one step.
Every request pins the adapter it resolved at its start, so requests in flight on a replaced or
removed adapter finish on it; that adapter is deleted (peft `delete_adapter`) when its last request
ends. A request naming a removed adapter gets UnknownAdapter (HTTP 422 naming the served ones).
"""
from __future__ import annotations

import asyncio
import copy
import itertools
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import serve

from ray_icma.allocator import allocator_env
from serve.configs import GeneratorConfig
from serve.errors import BadRequest, StageUnavailable, UnknownAdapter

__all__ = ["GeneratorDeployment"]

log = logging.getLogger("ray.serve")

@dataclass(frozen=True)
class _Served:
    """One served adapter: its internal peft name and what it was loaded from."""

    peft_name: str
    path: str
    fingerprint: tuple


def _fingerprint(path: str) -> tuple:
    """Path plus (name, size, mtime) of its files: an adapter rewritten in place counts as changed."""
    root = Path(path)
    files = sorted(p for p in root.iterdir() if p.is_file()) if root.is_dir() else []
    return (str(root), tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files))


class AdapterTable:
    """Which peft adapter serves each public adapter name now, and which requests still use each one.

    `apply` loads new or changed adapters on the live base model (`lm`, a ray_icma Generator) and switches
    the served set at once; `pin` resolves a request's adapter and holds it; `unpin` releases it and names
    a replaced adapter whose last request just ended (the caller deletes it, off the event loop).
    Thread-safe: requests pin on the event loop, `apply` runs in a worker thread.
    """

    def __init__(self, lm: Any):
        self._lm = lm
        self._lock = threading.Lock()  # guards the fields below
        self._served: dict[str, _Served] = {}
        self._pins: dict[str, int] = defaultdict(int)
        self._retired: set[str] = set()
        self._version = ""
        self._default: dict[str, str | None] = {}
        self._names = (f"lora{n}" for n in itertools.count())
        self._applying = threading.Lock()  # one apply at a time

    def apply(self, adapters: dict[str, str], default: dict[str, str | None], version: str) -> None:
        """Serve `adapters` ({name: dir}) from now on: load what is new or changed beside the served ones, switch
        the set in one step, delete the replaced adapters no request uses (the others: when their last one ends).
        On a load failure nothing changes (the adapters loaded so far are deleted again) and the error propagates."""
        with self._applying:
            wanted = {name: _fingerprint(path) for name, path in adapters.items()}
            keep = {n: s for n, s in self._served.items() if wanted.get(n) == s.fingerprint}
            loaded: dict[str, _Served] = {}
            try:
                for name, path in adapters.items():
                    if name not in keep:
                        peft_name = next(self._names)
                        started = time.perf_counter()
                        self._lm.load_adapter(peft_name, path)
                        loaded[name] = _Served(peft_name, path, wanted[name])
                        log.info("adapter %s loaded from %s as %s in %.2fs", name, path, peft_name,
                                 time.perf_counter() - started)
            except Exception:
                for s in loaded.values():
                    self._lm.unload_adapter(s.peft_name)
                raise
            with self._lock:
                old, self._served = self._served, {**keep, **loaded}
                self._version, self._default = version, dict(default)
                gone = {s.peft_name for s in old.values()} - {s.peft_name for s in self._served.values()}
                idle = {p for p in gone if not self._pins.get(p)}
                self._retired |= gone - idle
            for peft_name in sorted(idle):
                self._lm.unload_adapter(peft_name)
            if gone:
                log.info("adapters retired: %s (deleted now: %s; the rest when their last request ends)",
                         sorted(gone), sorted(idle))

    def pin(self, task: str, adapter: str | None) -> tuple[str | None, str | None, str]:
        """(public name, peft name, adapters_version) of a request's adapter, held until `unpin`; None = base model.

        Raises:
            UnknownAdapter: the adapter (asked for, or the task's default) is not served.
        """
        from ray_icma.generate import BASE_MODEL

        with self._lock:
            name = adapter if adapter is not None else self._default.get(task)
            if name == BASE_MODEL or name is None:
                return None, None, self._version
            served = self._served.get(name)
            if served is None:
                names = sorted(self._served) + [BASE_MODEL]
                raise UnknownAdapter(
                    f"unknown adapter {name!r}; this deployment serves: {names} (adapters_version {self._version})")
            self._pins[served.peft_name] += 1
            return name, served.peft_name, self._version

    def unpin(self, peft_name: str | None) -> str | None:
        """Release one request's hold; returns the peft name to delete when it was retired and this was its last request."""
        if peft_name is None:
            return None
        with self._lock:
            self._pins[peft_name] -= 1
            if self._pins[peft_name] > 0:
                return None
            del self._pins[peft_name]
            if peft_name not in self._retired:
                return None
            self._retired.discard(peft_name)
            return peft_name

    def info(self) -> dict[str, Any]:
        with self._lock:
            return {
                "adapters": sorted(self._served),
                "adapter_paths": {n: s.path for n, s in self._served.items()},
                "default_adapter": dict(self._default),
                "adapters_version": self._version,
                "retiring_adapters": sorted(self._retired),
                "peft_adapters": list(self._lm.adapter_names),  # served + retiring
            }


class GeneratorDeployment:
    """The Serve deployment "Generator": turns (task, query, examples) into text. Requests that arrive together are generated as one
    batch per (adapter, max_new_tokens) group."""

    def __init__(self, config: dict):
        from ray_icma.generate import Generator

        cfg = GeneratorConfig.model_validate(config)
        self._cfg = cfg
        started = time.perf_counter()
        # The only place the base model is loaded: adapters come and go on it (reconfigure).
        self._lm = Generator(cfg.model, gguf_file=cfg.gguf_file, device=cfg.device, precision=cfg.precision)
        self._base_loads = 1
        # Prompt fitting (on the event loop) gets its own tokenizer: the Generator's is used by the
        # generation thread, and a fast tokenizer's padding state is per object (see Generator.generate_detailed).
        self.tokenizer = copy.deepcopy(self._lm.tokenizer)
        log.info("generator %s loaded in %.1fs", cfg.model, time.perf_counter() - started)
        self._adapters = AdapterTable(self._lm)
        self._deleting: set[asyncio.Future] = set()
        self._apply(cfg)

    @classmethod
    def get_deployment_options(cls, cfg: GeneratorConfig, gpus_in_cluster: float = 0.0) -> dict[str, Any]:
        """GPU when the cluster has one and the config allows it; else one full CPU (a forward pass
        saturates a core). In-flight requests = two batches: one generating, one forming."""
        use_gpu = cfg.device != "cpu" and gpus_in_cluster >= 1
        actor: dict[str, Any] = {"num_gpus": 1, "num_cpus": 1} if use_gpu else {"num_cpus": 1}
        if not use_gpu and (preload := allocator_env()):  # CPU replicas on tcmalloc (ray_icma.allocator)
            actor["runtime_env"] = {"env_vars": preload}
        return {
            "ray_actor_options": actor,
            "max_ongoing_requests": max(2 * cfg.max_batch_size, 4),
            "autoscaling_config": {
                "min_replicas": 1,
                "max_replicas": 2,
                "initial_replicas": 1,
                # one full batch per replica before scaling out
                "target_ongoing_requests": max(cfg.max_batch_size, 1),
            },
        }

    async def reconfigure(self, user_config: dict) -> None:
        """Adapters and batch knobs in place: new or changed adapters load beside the served ones (off the
        event loop, so requests keep flowing), then the set switches at once. No base-model reload."""
        cfg = GeneratorConfig.model_validate({**self._cfg.model_dump(), **user_config})
        await asyncio.to_thread(self._apply, cfg)
        self._cfg = cfg

    def _apply(self, cfg: GeneratorConfig) -> None:
        self._adapters.apply(cfg.adapters, dict(cfg.default_adapter), cfg.adapters_version)
        self._generate_batch.set_max_batch_size(cfg.max_batch_size)
        self._generate_batch.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)

    def info(self) -> dict[str, Any]:
        try:
            replica = serve.get_replica_context().replica_id.unique_id
        except Exception:  # noqa: BLE001 - outside a Serve replica
            replica = None
        return {
            "model": self._cfg.model,
            **self._adapters.info(),
            "max_batch_size": self._cfg.max_batch_size,
            "base_loads": self._base_loads,
            "replica": replica,
        }

    def _unpin(self, peft_name: str | None) -> None:
        gone = self._adapters.unpin(peft_name)
        if gone is not None:  # its last request ended: delete it (waits for the running batch: off the event loop)
            task = asyncio.ensure_future(asyncio.to_thread(self._lm.unload_adapter, gone))
            self._deleting.add(task)
            task.add_done_callback(self._deleting.discard)
            log.info("retired adapter %s deleted after its last request", gone)

    async def generate(
        self,
        task: str,
        query: str,
        examples: list[list[str]],
        adapter: str | None = None,
        max_new_tokens: int | None = None,
    ) -> dict[str, Any]:
        """Generate the answer for one query (batched with concurrent calls).

        Returns:
            ``{"answer", "raw", "adapter", "adapters_version", "n_examples_in_prompt"}``.

        Raises:
            UnknownAdapter: ``adapter`` is not served.
            BadRequest: the prompt cannot fit even without examples.
        """
        from ray_icma.prompts import fit_prompt, parse_output

        name, peft_name, version = self._adapters.pin(task, adapter)
        try:
            new_tokens = max_new_tokens or self._cfg.max_new_tokens
            try:
                prompt, kept = fit_prompt(
                    self.tokenizer,
                    task,
                    query,
                    [tuple(e) for e in examples],
                    cutoff_len=self._cfg.cutoff_len,
                    answer_reserve=new_tokens,
                )
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
            raw = await self._generate_batch((prompt, peft_name, new_tokens))
        finally:
            self._unpin(peft_name)
        if isinstance(raw, BaseException):  # its group failed; the others in the batch did not
            raise raw
        return {
            "answer": parse_output(task, raw),
            "raw": raw,
            "adapter": name,
            "adapters_version": version,
            "n_examples_in_prompt": kept,
        }

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02)
    async def _generate_batch(self, items: list[tuple]) -> list[str]:
        """One forward batch per (adapter, max_new_tokens) group, off the event loop so the next batch keeps
        forming while this one runs. The adapter is the pinned peft name: a swap never changes a running request."""
        from ray_icma.generate import BASE_MODEL

        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, (_prompt, peft_name, new_tokens) in enumerate(items):
            groups[(peft_name, new_tokens)].append(i)
        out: list[Any] = [None] * len(items)
        for (peft_name, new_tokens), positions in groups.items():
            prompts = [items[i][0] for i in positions]
            try:
                texts = await asyncio.to_thread(
                    self._lm.generate,
                    prompts,
                    max_new_tokens=new_tokens,
                    num_beams=self._cfg.num_beams,
                    adapter=BASE_MODEL if peft_name is None else peft_name,
                    batch_size=len(prompts),
                    stop=("\n\n",),  # ICMA answers are one line; stop early instead of hallucinating the next block
                )
            except Exception as exc:
                log.exception("generation failed for %d prompts (adapter=%s)", len(prompts), peft_name)
                texts = [StageUnavailable(f"generation failed: {type(exc).__name__}: {str(exc)[:200]}")] * len(prompts)
            for i, text in zip(positions, texts):
                out[i] = text
        return out
