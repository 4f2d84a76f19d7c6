"""The Generator deployment: one base model with several LoRA adapters, @serve.batch dynamic batching.

Prompt building, fitting and output parsing come from `ray_icma.prompts`; generation from
`ray_icma.generate.Generator` (the model wrapper); `GeneratorDeployment` (the Serve deployment named
"Generator") adds only the Serve parts: batching, adapter choice per
request, hot adapter swap through user_config, sizing.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any

from ray import serve

from serve.configs import GeneratorConfig
from serve.errors import BadRequest, StageUnavailable, UnknownAdapter

__all__ = ["GeneratorDeployment"]

log = logging.getLogger("ray.serve")


class _Loaded:
    """One adapter set on one base model; replaced as a whole on reconfigure."""

    def __init__(self, cfg: GeneratorConfig, adapters: dict[str, str], version: str):
        from ray_icma.generate import Generator

        started = time.perf_counter()
        self.lm = Generator(cfg.model, adapters=adapters or None, gguf_file=cfg.gguf_file, device=cfg.device,
                            precision=cfg.precision)
        self.tokenizer = self.lm.tokenizer
        self.adapters = dict(adapters)
        self.version = version
        log.info("generator %s loaded with adapters %s in %.1fs", cfg.model, sorted(adapters), time.perf_counter() - started)


class GeneratorDeployment:
    """The Serve deployment "Generator": turns (task, query, examples) into text. Requests that arrive together are generated as one
    batch per (adapter, max_new_tokens) group."""

    def __init__(self, config: dict):
        self._cfg = GeneratorConfig.model_validate(config)
        self._loaded = _Loaded(self._cfg, self._cfg.adapters, self._cfg.adapters_version)
        self._default_adapter = dict(self._cfg.default_adapter)

    @classmethod
    def get_deployment_options(cls, cfg: GeneratorConfig, gpus_in_cluster: float = 0.0) -> dict[str, Any]:
        """GPU when the cluster has one and the config allows it; else one full CPU (a forward pass
        saturates a core). In-flight requests = two batches: one generating, one forming."""
        use_gpu = cfg.device != "cpu" and gpus_in_cluster >= 1
        actor = {"num_gpus": 1, "num_cpus": 1} if use_gpu else {"num_cpus": 1}
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

    def reconfigure(self, user_config: dict) -> None:
        """Hot swap: new adapters load on the side, then replace the old set in one assignment;
        batch knobs apply immediately. Requests in flight finish on the old set."""
        cfg = self._cfg.model_copy(update=user_config)
        cfg = GeneratorConfig.model_validate(cfg.model_dump())
        if cfg.adapters != self._loaded.adapters or cfg.adapters_version != self._loaded.version:
            if cfg.adapters == self._loaded.adapters:
                self._loaded.version = cfg.adapters_version
            else:
                self._loaded = _Loaded(cfg, cfg.adapters, cfg.adapters_version)
        self._default_adapter = dict(cfg.default_adapter)
        self._generate_batch.set_max_batch_size(cfg.max_batch_size)
        self._generate_batch.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)
        self._cfg = cfg

    def info(self) -> dict[str, Any]:
        return {
            "model": self._cfg.model,
            "adapters": sorted(self._loaded.adapters),
            "default_adapter": self._default_adapter,
            "adapters_version": self._loaded.version,
            "max_batch_size": self._cfg.max_batch_size,
        }

    def resolve_adapter(self, task: str, adapter: str | None) -> str | None:
        """The adapter for a request: its own, else the task's default; None (or "base") = base model."""
        from ray_icma.generate import BASE_MODEL

        name = adapter if adapter is not None else self._default_adapter.get(task)  # type: ignore[arg-type]
        if name == BASE_MODEL:
            return None
        if name is not None and name not in self._loaded.adapters:
            served = sorted(self._loaded.adapters) + [BASE_MODEL]
            raise UnknownAdapter(f"unknown adapter {name!r}; this deployment serves: {served}")
        return name

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

        loaded = self._loaded
        name = self.resolve_adapter(task, adapter)
        new_tokens = max_new_tokens or self._cfg.max_new_tokens
        try:
            prompt, kept = fit_prompt(
                loaded.tokenizer,
                task,
                query,
                [tuple(e) for e in examples],
                cutoff_len=self._cfg.cutoff_len,
                answer_reserve=new_tokens,
            )
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        raw = await self._generate_batch((loaded, prompt, name, new_tokens))
        if isinstance(raw, BaseException):  # its group failed; the others in the batch did not
            raise raw
        return {
            "answer": parse_output(task, raw),
            "raw": raw,
            "adapter": name,
            "adapters_version": loaded.version,
            "n_examples_in_prompt": kept,
        }

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02)
    async def _generate_batch(self, items: list[tuple]) -> list[str]:
        """One forward batch per (adapter set, adapter, max_new_tokens) group, off the event loop
        so the next batch keeps forming while this one runs."""
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, (loaded, _prompt, name, new_tokens) in enumerate(items):
            groups[(id(loaded), name, new_tokens)].append(i)
        out: list[Any] = [None] * len(items)
        from ray_icma.generate import BASE_MODEL

        for (_, name, new_tokens), positions in groups.items():
            loaded = items[positions[0]][0]
            prompts = [items[i][1] for i in positions]
            try:
                texts = await asyncio.to_thread(
                    loaded.lm.generate,
                    prompts,
                    max_new_tokens=new_tokens,
                    num_beams=self._cfg.num_beams,
                    adapter=BASE_MODEL if name is None else name,
                    batch_size=len(prompts),
                    stop=("\n\n",),  # ICMA answers are one line; stop early instead of hallucinating the next block
                )
            except Exception as exc:
                log.exception("generation failed for %d prompts (adapter=%s)", len(prompts), name)
                texts = [StageUnavailable(f"generation failed: {type(exc).__name__}: {str(exc)[:200]}")] * len(prompts)
            for i, text in zip(positions, texts):
                out[i] = text
        return out
