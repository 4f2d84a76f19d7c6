"""One causal LM (+ optional LoRA adapters) that turns prompts into continuations.

Kept free of Ray on purpose: the Ray Data actors (`batch_generate.py`) and the Ray Serve
generator deployment both hold one of these, so batching, padding and adapter switching
behave the same offline and online.

Wastes nothing: prompts are batched by length (left padding only up to the bucket's longest),
a row leaves the batch the moment it emits EOS or one of *its* stop strings (its KV-cache rows
are dropped), bf16 runs where the hardware has it (``precision``, see ``ray_icma.precision``),
and a batch job with one adapter merges it into the weights (``merge=True``; Serve keeps
adapters separate so it can switch them per request).
"""
from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["BASE_MODEL", "Generation", "Generator", "resolve_device"]

log = logging.getLogger(__name__)

#: adapter name that selects the bare base model (adapters disabled) in `Generator.generate`.
BASE_MODEL = "base"


@dataclass(frozen=True)
class Generation:
    """One decoded continuation.

    Attributes:
        text: the continuation only (prompt removed, special tokens skipped).
        n_prompt_tokens: prompt length in tokens (without padding).
        n_new_tokens: tokens generated before EOS (EOS and padding not counted).
    """

    text: str
    n_prompt_tokens: int
    n_new_tokens: int


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; other values pass through."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


_DTYPE_ALIASES = {"auto": "auto", "float32": "fp32", "fp32": "fp32", "bfloat16": "bf16", "bf16": "bf16"}


def _precision_of(precision: str | None, dtype: str | None) -> str:
    """``precision`` (auto | bf16 | fp32), or the older ``dtype`` spelling of it."""
    if dtype is not None and precision in (None, "auto"):
        if dtype not in _DTYPE_ALIASES:
            raise ValueError(f"unknown dtype {dtype!r}; use auto, float32 or bfloat16 (or precision=auto|bf16|fp32)")
        return _DTYPE_ALIASES[dtype]
    return precision or "auto"


class Generator:
    """A causal LM with its tokenizer, ready for left-padded batched generation.

    Args:
        model: a model spec for :func:`ray_icma.models.load_causal_lm` (``smollm2-135m``,
            ``tiny-random-llama``, a local dir or a Hub id).
        adapter: a LoRA adapter dir (peft ``save_pretrained`` output); loaded as ``"default"``.
        adapters: several LoRA adapters on the same base, ``{name: dir}``; pick one per call
            with ``generate(..., adapter=name)``. The first one is the default.
        gguf_file: GGUF file name inside ``model`` (when ``model`` is a dir or Hub repo).
        device: ``"auto"`` (cuda if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        precision: ``"auto"`` (bf16 on CPUs with AMX/AVX512-BF16 and on GPUs that support it,
            else fp32), ``"bf16"`` or ``"fp32"``; the kernel that runs is logged at start-up.
        dtype: older spelling of ``precision`` (``auto``, ``float32``, ``bfloat16``).
        merge: fold a single adapter into the base weights (``merge_and_unload``, done in fp32
            before the cast): faster; for batch jobs. Serve keeps adapters unmerged.
        seed: seeds sampling; every ``generate`` call reseeds, so equal calls give equal output.

    Raises:
        ValueError: both ``adapter`` and ``adapters`` given, or an adapter named ``"base"``.
        FileNotFoundError: an adapter dir without ``adapter_config.json``.
    """

    def __init__(
        self,
        model: str,
        *,
        adapter: str | None = None,
        adapters: Mapping[str, str] | None = None,
        gguf_file: str | None = None,
        device: str = "auto",
        precision: str = "auto",
        dtype: str | None = None,
        merge: bool = False,
        seed: int = 0,
    ) -> None:
        from pathlib import Path

        from ray_icma.models import load_causal_lm

        if adapter and adapters:
            raise ValueError("give either adapter= (one LoRA dir) or adapters= ({name: dir}), not both")
        named = dict(adapters or ({"default": adapter} if adapter else {}))
        for name, path in named.items():
            if name == BASE_MODEL:
                raise ValueError(f"adapter name {BASE_MODEL!r} is reserved for the bare base model; rename it")
            if not (Path(path) / "adapter_config.json").is_file():
                raise FileNotFoundError(f"adapter {name!r}: {path} has no adapter_config.json (expected a peft LoRA dir)")
        if merge and len(named) > 1:
            raise ValueError("merge=True folds one adapter into the weights; with several adapters keep them unmerged")
        from ray_icma.precision import describe, model_dtype, resolve_precision

        self.model_spec = model
        self.device = resolve_device(device)
        self.seed = seed
        self.precision = resolve_precision(_precision_of(precision, dtype), self.device)
        lm, self.tokenizer = load_causal_lm(model, gguf_file=gguf_file, torch_dtype="float32")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.adapter_names: list[str] = list(named)
        self.merged = False
        if named:
            from peft import PeftModel

            first, *rest = named.items()
            lm = PeftModel.from_pretrained(lm, first[1], adapter_name=first[0], is_trainable=False)
            for name, path in rest:
                lm.load_adapter(path, adapter_name=name, is_trainable=False)
            if merge:  # on this process's own copy of the base weights, in fp32
                lm = lm.merge_and_unload()
                self.merged = True
        self.model = lm.to(device=self.device, dtype=model_dtype(self.precision)).eval()
        self.kernels = describe(self.precision, self.device)
        log.info("generator %s%s: %s", model, " (adapter merged)" if self.merged else "", self.kernels)
        self.default_adapter = self.adapter_names[0] if self.adapter_names else None
        self._lock = threading.Lock()  # set_adapter + generate must not interleave (Serve calls concurrently)

    # ------------------------------------------------------------------ public API
    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 256,
        num_beams: int = 1,
        do_sample: bool = False,
        temperature: float = 0.7,
        top_p: float = 1.0,
        top_k: int = 0,
        repetition_penalty: float = 1.0,
        adapter: str | None = None,
        batch_size: int = 8,
        stop: Sequence[str] | None = None,
    ) -> list[str]:
        """Decoded continuations (prompt removed), one per prompt, in prompt order.

        Args:
            prompts: the prompts, used verbatim (fit them to the context first).
            max_new_tokens: generation budget per prompt.
            num_beams: beam width (1 = greedy or sampling).
            do_sample: sample with ``temperature`` instead of greedy/beam search.
            temperature: sampling temperature (ICMA: 0.7); ignored unless ``do_sample``.
            top_p, top_k: nucleus / top-k sampling filters (ICMA: 0.85, 40; 1.0 / 0 = off).
            repetition_penalty: HF's penalty on already-seen tokens (ICMA cap2mol: 0.8; 1.0 = off).
            adapter: which loaded adapter to use; None = the default one, ``"base"`` = none.
            batch_size: prompts per forward pass; prompts are length-sorted to cut padding.
            stop: strings that end a sequence early (e.g. ``"\\n\\n"``), checked per row; they stay in the text.

        Raises:
            ValueError: unknown adapter name or a bad generation setting.
        """
        return [g.text for g in self.generate_detailed(
            prompts, max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=do_sample,
            temperature=temperature, top_p=top_p, top_k=top_k, repetition_penalty=repetition_penalty,
            adapter=adapter, batch_size=batch_size, stop=stop,
        )]

    def generate_task(self, task: str, prompts: Sequence[str], **kwargs: Any) -> list[str]:
        """:meth:`generate`, then :func:`ray_icma.prompts.parse_output` on each continuation.

        Stops at a blank line by default (``stop=("\\n\\n",)``): ICMA's answers are one line and
        anything after it is a hallucinated next block, so this only saves time.
        """
        from ray_icma.prompts import parse_output

        kwargs.setdefault("stop", ("\n\n",))
        return [parse_output(task, text) for text in self.generate(prompts, **kwargs)]

    def generate_detailed(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 256,
        num_beams: int = 1,
        do_sample: bool = False,
        temperature: float = 0.7,
        top_p: float = 1.0,
        top_k: int = 0,
        repetition_penalty: float = 1.0,
        adapter: str | None = None,
        batch_size: int = 8,
        stop: Sequence[str] | None = None,
    ) -> list[Generation]:
        """Like :meth:`generate` but with token counts (prompt and new, for throughput figures)."""
        self._check_settings(max_new_tokens, num_beams, temperature, batch_size)
        if not 0 < top_p <= 1 or top_k < 0 or repetition_penalty <= 0:
            raise ValueError(f"need 0 < top_p <= 1, top_k >= 0, repetition_penalty > 0 (got {top_p}, {top_k}, {repetition_penalty})")
        decoding = {"do_sample": do_sample, "temperature": temperature, "top_p": top_p, "top_k": top_k,
                    "repetition_penalty": repetition_penalty}
        prompts = [str(p) for p in prompts]
        if not prompts:
            return []
        out: list[Generation | None] = [None] * len(prompts)
        # Every use of the tokenizer is under the lock: a fast tokenizer keeps its padding setting in
        # the shared Rust object and re-sets it on every call, so a no-padding call racing a
        # ``padding=True`` call unpads that batch ("Unable to create tensor ... same length") or raises
        # "RuntimeError: Already borrowed" (huggingface/transformers#47085, huggingface/tokenizers#537).
        with self._lock:
            lengths = [len(ids) for ids in self.tokenizer(prompts, add_special_tokens=True)["input_ids"]]
            order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
            self._select_adapter(adapter)
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                texts, counts = self._generate_batch([prompts[i] for i in chunk], max_new_tokens, num_beams, decoding, stop)
                for i, text, n_new in zip(chunk, texts, counts):
                    out[i] = Generation(text=text, n_prompt_tokens=lengths[i], n_new_tokens=n_new)
        return out  # type: ignore[return-value]

    def load_adapter(self, name: str, path: str) -> None:
        """Load one more LoRA adapter on the live base model (peft ``load_adapter``; no base reload).

        The new adapter's weights are cast to the model's precision, exactly as the adapters given to
        ``__init__`` are, so it answers as a generator built with it would. Waits for a running
        ``generate`` call (the same lock), so a batch never sees a half-loaded adapter.

        Raises:
            ValueError: ``name`` is ``"base"`` or already loaded, or this generator merged its adapter.
            FileNotFoundError: ``path`` has no ``adapter_config.json``.
        """
        from pathlib import Path

        from peft import PeftModel

        from ray_icma.precision import model_dtype

        if name == BASE_MODEL:
            raise ValueError(f"adapter name {BASE_MODEL!r} is reserved for the bare base model; rename it")
        if not (Path(path) / "adapter_config.json").is_file():
            raise FileNotFoundError(f"adapter {name!r}: {path} has no adapter_config.json (expected a peft LoRA dir)")
        with self._lock:
            if self.merged:
                raise ValueError("this generator merged its adapter into the weights; it cannot load others")
            if name in self.adapter_names:
                raise ValueError(f"adapter {name!r} is already loaded; unload it first or use another name")
            if isinstance(self.model, PeftModel):
                self.model.load_adapter(path, adapter_name=name, is_trainable=False, autocast_adapter_dtype=False)
            else:  # the first adapter wraps the live base model (its weights stay where they are)
                self.model = PeftModel.from_pretrained(self.model, path, adapter_name=name, is_trainable=False,
                                                       autocast_adapter_dtype=False)
            self.model = self.model.to(device=self.device, dtype=model_dtype(self.precision)).eval()
            self.adapter_names.append(name)
            if self.default_adapter is None:
                self.default_adapter = name

    def unload_adapter(self, name: str) -> None:
        """Delete a loaded LoRA adapter from the base model (peft ``delete_adapter``); the base stays loaded.
        Removing the last one unwraps the base model. Waits for a running ``generate`` call.

        Raises:
            ValueError: ``name`` is not loaded.
        """
        with self._lock:
            if name not in self.adapter_names or self.merged:
                loaded = ", ".join(self.adapter_names) or "none"
                raise ValueError(f"adapter {name!r} is not loaded (loaded: {loaded})")
            self.adapter_names.remove(name)
            if self.adapter_names:
                self.model.delete_adapter(name)
            else:  # peft needs an active adapter to run: without any, back to the bare base model
                self.model = self.model.unload()
            if self.default_adapter == name:
                self.default_adapter = self.adapter_names[0] if self.adapter_names else None

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _check_settings(max_new_tokens: int, num_beams: int, temperature: float, batch_size: int) -> None:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {num_beams}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    def _select_adapter(self, adapter: str | None) -> None:
        """Activate ``adapter`` (None = default) or remember that the base model is wanted."""
        self._use_base = False
        if self.merged:  # one adapter, folded into the weights: nothing to switch
            if adapter not in (None, self.default_adapter):
                raise ValueError(f"adapter {adapter!r} is not available: this generator merged {self.default_adapter!r} into its weights")
            return
        if adapter == BASE_MODEL or (adapter is None and not self.adapter_names):
            self._use_base = True
            return
        if adapter is None:
            adapter = self.default_adapter
        if adapter not in self.adapter_names:
            loaded = ", ".join(self.adapter_names) or "none"
            raise ValueError(f"unknown adapter {adapter!r}; loaded adapters: {loaded} (or {BASE_MODEL!r} for the bare model)")
        self.model.set_adapter(adapter)

    def _generate_batch(self, prompts, max_new_tokens, num_beams, decoding, stop):
        import contextlib

        import torch

        use_base = getattr(self, "_use_base", not self.adapter_names)
        ctx = self.model.disable_adapter() if (use_base and self.adapter_names and not self.merged) else contextlib.nullcontext()
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=True).to(self.device)
        with torch.inference_mode(), ctx:
            if num_beams > 1:
                return self._hf_generate(enc, max_new_tokens, num_beams, decoding, stop)
            return self._decode(enc, max_new_tokens, decoding, stop)

    def _hf_generate(self, enc, max_new_tokens, num_beams, decoding, stop):
        """Beam search: transformers' ``generate`` (every beam runs to the batch's end)."""
        import torch

        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens, "num_beams": num_beams, "do_sample": decoding["do_sample"],
            "pad_token_id": self.tokenizer.pad_token_id, "eos_token_id": self.tokenizer.eos_token_id,
            "repetition_penalty": decoding["repetition_penalty"],
        }
        if decoding["do_sample"]:
            kwargs.update(temperature=decoding["temperature"], top_p=decoding["top_p"], top_k=decoding["top_k"] or None)
        else:  # silence "temperature is set but do_sample=False" from the model's generation_config
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if stop:
            kwargs.update(stop_strings=list(stop), tokenizer=self.tokenizer)
        torch.manual_seed(self.seed)
        output = self.model.generate(**enc, **kwargs)
        new_tokens = output[:, enc["input_ids"].shape[1]:]
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        counts = [_count_new(row.tolist(), self.tokenizer.pad_token_id, self.tokenizer.eos_token_id) for row in new_tokens]
        return texts, counts

    def _processors(self, decoding: dict) -> Any:
        from transformers.generation import (
            LogitsProcessorList,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        procs = LogitsProcessorList()
        if decoding["repetition_penalty"] != 1.0:
            procs.append(RepetitionPenaltyLogitsProcessor(decoding["repetition_penalty"]))
        if decoding["do_sample"]:
            if decoding["temperature"] != 1.0:
                procs.append(TemperatureLogitsWarper(decoding["temperature"]))
            if decoding["top_k"]:
                procs.append(TopKLogitsWarper(decoding["top_k"]))
            if decoding["top_p"] < 1.0:
                procs.append(TopPLogitsWarper(decoding["top_p"]))
        return procs

    def _decode(self, enc, max_new_tokens, decoding, stop):
        """Greedy or sampled decoding with a KV cache; a row leaves the batch when it is done.

        A row is done at EOS (not part of the text) or when its decoded continuation contains one
        of ``stop`` (kept in the text, as transformers' ``stop_strings`` does); its cache rows are
        dropped so the remaining rows run alone.
        """
        import torch
        from transformers import DynamicCache

        tok, eos = self.tokenizer, self.tokenizer.eos_token_id
        ids, mask = enc["input_ids"], enc["attention_mask"]
        procs = self._processors(decoding)
        rng = torch.Generator(device=self.device).manual_seed(self.seed) if decoding["do_sample"] else None
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        cache_kw = _cache_kwarg(self.model)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1,
                         **{cache_kw: cache})
        if cache.get_seq_length() != ids.shape[1]:  # a forward that ignored the cache: every later step would see one token
            raise RuntimeError(f"{type(self.model).__name__} did not fill the KV cache passed as `{cache_kw}` "
                               f"({cache.get_seq_length()} of {ids.shape[1]} positions); this transformers "
                               "version names the argument differently")
        logits = out.logits[:, -1, :].float()
        next_pos = positions[:, -1] + 1
        alive = list(range(ids.shape[0]))  # batch row -> prompt index
        generated: list[list[int]] = [[] for _ in alive]
        seqs = ids  # what the repetition penalty looks at: prompt + continuation, as in transformers
        tail = max((len(s) for s in stop), default=0) + 8 if stop else 0
        for step in range(max_new_tokens):
            scores = procs(seqs, logits) if procs else logits
            if rng is not None:
                nxt = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=rng).squeeze(1)
            else:
                nxt = scores.argmax(dim=-1)
            keep = []
            for row, token in enumerate(nxt.tolist()):
                i = alive[row]
                if token == eos:
                    continue
                generated[i].append(token)
                if stop:
                    text = tok.decode(generated[i][-tail:], skip_special_tokens=True)
                    if any(s in text for s in stop):
                        continue
                keep.append(row)
            if not keep or step == max_new_tokens - 1:
                break
            if len(keep) < len(alive):
                index = torch.tensor(keep, device=ids.device)
                cache.batch_select_indices(index)
                mask, seqs, nxt, next_pos = mask[index], seqs[index], nxt[index], next_pos[index]
                alive = [alive[row] for row in keep]
            seqs = torch.cat([seqs, nxt[:, None]], dim=1)
            mask = torch.cat([mask, mask.new_ones((len(alive), 1))], dim=1)
            out = self.model(input_ids=nxt[:, None], attention_mask=mask, position_ids=next_pos[:, None], use_cache=True,
                             **{cache_kw: cache})
            logits = out.logits[:, -1, :].float()
            next_pos = next_pos + 1
        texts = [tok.decode(g, skip_special_tokens=True) for g in generated]
        return texts, [len(g) for g in generated]


def _cache_kwarg(model: Any) -> str:
    """The forward argument that takes the KV cache: ``cache`` (transformers >= 5.24, which still accepts
    ``past_key_values`` with a deprecation warning) or ``past_key_values`` (earlier versions, which swallow
    an unknown ``cache=`` into ``**kwargs`` and decode every step without the prompt: garbage text)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(type(base).forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _count_new(ids: list[int], pad_id: int | None, eos_id: int | None) -> int:
    """Generated tokens before the first EOS or pad (pad often equals EOS, so neither is counted)."""
    for pos, tok in enumerate(ids):
        if tok == eos_id or tok == pad_id:
            return pos
    return len(ids)
