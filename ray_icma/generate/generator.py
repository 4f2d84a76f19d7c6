"""One causal LM (+ optional LoRA adapters) that turns prompts into continuations.

Kept free of Ray on purpose: the Ray Data actors (`batch_generate.py`) and the Ray Serve
generator deployment both hold one of these, so batching, padding and adapter switching
behave the same offline and online.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["BASE_MODEL", "Generation", "Generator", "resolve_device"]

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


def _resolve_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
    try:
        return getattr(torch, dtype)
    except AttributeError:
        raise ValueError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16") from None


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
        dtype: ``"auto"`` (bf16 on GPUs that support it, else fp32) or a torch dtype name.
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
        dtype: str = "auto",
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
        self.model_spec = model
        self.device = resolve_device(device)
        self.seed = seed
        lm, self.tokenizer = load_causal_lm(model, gguf_file=gguf_file, torch_dtype=_resolve_dtype(dtype, self.device))
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.adapter_names: list[str] = list(named)
        if named:
            from peft import PeftModel

            first, *rest = named.items()
            lm = PeftModel.from_pretrained(lm, first[1], adapter_name=first[0], is_trainable=False)
            for name, path in rest:
                lm.load_adapter(path, adapter_name=name, is_trainable=False)
        self.model = lm.to(self.device).eval()
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
            adapter: which loaded adapter to use; None = the default one, ``"base"`` = none.
            batch_size: prompts per forward pass; prompts are length-sorted to cut padding.
            stop: strings that end a sequence early (e.g. ``"\\n\\n"``); they stay in the text.

        Raises:
            ValueError: unknown adapter name or a bad generation setting.
        """
        return [g.text for g in self.generate_detailed(
            prompts, max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=do_sample,
            temperature=temperature, adapter=adapter, batch_size=batch_size, stop=stop,
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
        adapter: str | None = None,
        batch_size: int = 8,
        stop: Sequence[str] | None = None,
    ) -> list[Generation]:
        """Like :meth:`generate` but with token counts (for throughput figures)."""
        self._check_settings(max_new_tokens, num_beams, temperature, batch_size)
        prompts = [str(p) for p in prompts]
        if not prompts:
            return []
        lengths = [len(ids) for ids in self.tokenizer(prompts, add_special_tokens=True)["input_ids"]]
        order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
        out: list[Generation | None] = [None] * len(prompts)
        with self._lock:
            self._select_adapter(adapter)
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                texts, counts = self._generate_batch([prompts[i] for i in chunk], max_new_tokens, num_beams, do_sample, temperature, stop)
                for i, text, n_new in zip(chunk, texts, counts):
                    out[i] = Generation(text=text, n_prompt_tokens=lengths[i], n_new_tokens=n_new)
        return out  # type: ignore[return-value]

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
        if adapter == BASE_MODEL or (adapter is None and not self.adapter_names):
            self._use_base = True
            return
        if adapter is None:
            adapter = self.default_adapter
        if adapter not in self.adapter_names:
            loaded = ", ".join(self.adapter_names) or "none"
            raise ValueError(f"unknown adapter {adapter!r}; loaded adapters: {loaded} (or {BASE_MODEL!r} for the bare model)")
        self.model.set_adapter(adapter)

    def _generate_batch(self, prompts, max_new_tokens, num_beams, do_sample, temperature, stop):
        import contextlib

        import torch

        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=True).to(self.device)
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "num_beams": num_beams,
            "do_sample": do_sample,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": self.tokenizer.eos_token_id,
        }
        if do_sample:
            kwargs["temperature"] = temperature
        else:  # silence "temperature is set but do_sample=False" from the model's generation_config
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if stop:
            kwargs.update(stop_strings=list(stop), tokenizer=self.tokenizer)
        use_base = getattr(self, "_use_base", not self.adapter_names)
        ctx = self.model.disable_adapter() if (use_base and self.adapter_names) else contextlib.nullcontext()
        torch.manual_seed(self.seed)
        with torch.inference_mode(), ctx:
            output = self.model.generate(**enc, **kwargs)
        new_tokens = output[:, enc["input_ids"].shape[1]:]
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        counts = [_count_new(row.tolist(), self.tokenizer.pad_token_id, self.tokenizer.eos_token_id) for row in new_tokens]
        return texts, counts


def _count_new(ids: list[int], pad_id: int | None, eos_id: int | None) -> int:
    """Generated tokens before the first EOS or pad (pad often equals EOS, so neither is counted)."""
    for pos, tok in enumerate(ids):
        if tok == eos_id or tok == pad_id:
            return pos
    return len(ids)
