"""How answers are decoded: one schema for the pipeline's ``generate.decoding``, ``ray-icma generate``
and :func:`ray_icma.generate.generate_predictions`.

A decoding is a named preset plus optional overrides of its settings::

    generate:
      decoding: icma                          # or greedy (the default)
      decoding: {preset: icma, temperature: 0.9, seed: 3}

Presets:

- ``greedy``: argmax decoding, one beam, no penalty; reproducible without a seed.
- ``icma``: ICMA's ``inference.py``: sampling at temperature 0.7, top_p 0.85, top_k 40, one beam,
  repetition_penalty 0.8 for cap2mol (1.0 for mol2cap), seed 42.

The sampling seed is ``seed`` when set, else the preset's (icma: 42), else the run's seed.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ray_icma.config import Section

__all__ = ["DECODING_PRESETS", "DecodingConfig", "as_decoding"]

Task = Literal["mol2cap", "cap2mol"]
#: the settings :meth:`ray_icma.generate.Generator.generate_detailed` takes, in this order
SETTINGS = ("do_sample", "num_beams", "temperature", "top_p", "top_k", "repetition_penalty")

#: Named presets. ``repetition_penalty`` is per task; ``seed`` (when present) is the sampling seed.
DECODING_PRESETS: dict[str, dict[str, Any]] = {
    "greedy": {"do_sample": False, "num_beams": 1, "temperature": 0.7, "top_p": 1.0, "top_k": 0,
               "repetition_penalty": {"mol2cap": 1.0, "cap2mol": 1.0}},
    "icma": {"do_sample": True, "num_beams": 1, "temperature": 0.7, "top_p": 0.85, "top_k": 40,
             "repetition_penalty": {"mol2cap": 1.0, "cap2mol": 0.8}, "seed": 42},
}


class DecodingConfig(Section):
    """A decoding preset and overrides of its settings (``null`` = the preset's value).

    A plain string is read as the preset name (``decoding: icma``).
    """

    preset: Literal["greedy", "icma"] = Field(
        "greedy", description="greedy (argmax, reproducible) | icma (ICMA's inference.py: sampling 0.7, top_p 0.85, top_k 40, "
        "repetition_penalty 0.8 for cap2mol, seed 42)")
    do_sample: bool | None = Field(None, description="sample instead of greedy/beam search (null: the preset's)")
    num_beams: int | None = Field(None, ge=1, description="beam width (null: the preset's, 1)")
    temperature: float | None = Field(None, gt=0, description="sampling temperature (null: the preset's, 0.7)")
    top_p: float | None = Field(None, gt=0, le=1, description="nucleus filter, 1.0 = off (null: the preset's)")
    top_k: int | None = Field(None, ge=0, description="top-k filter, 0 = off (null: the preset's)")
    repetition_penalty: float | dict[Task, float] | None = Field(
        None, description="HF repetition penalty, 1.0 = off; one value or per task {mol2cap: .., cap2mol: ..} (null: the preset's)")
    seed: int | None = Field(None, description="sampling seed (null: the preset's, icma 42; else the run's seed)")

    @model_validator(mode="before")
    @classmethod
    def _preset_name(cls, data: Any) -> Any:
        return {"preset": data} if isinstance(data, str) else data

    @field_validator("repetition_penalty")
    @classmethod
    def _positive_penalty(cls, value: float | dict[str, float] | None) -> float | dict[str, float] | None:
        values: list[float] = list(value.values()) if isinstance(value, dict) else [] if value is None else [value]
        if any(v <= 0 for v in values):
            raise ValueError(f"repetition_penalty must be > 0 (1.0 = off), got {value}")
        return value

    def for_task(self, task: str) -> dict[str, Any]:
        """The keyword arguments of ``Generator.generate_detailed`` for ``task`` (preset + overrides).

        Raises:
            ValueError: an unknown task.
        """
        if task not in ("mol2cap", "cap2mol"):
            raise ValueError(f"unknown task {task!r}; use mol2cap or cap2mol")
        preset = DECODING_PRESETS[self.preset]
        out = {}
        for key in SETTINGS:
            value = getattr(self, key)
            if isinstance(value, dict):  # a per-task override may leave the other task to the preset
                value = value.get(task)
            if value is None:
                value = preset[key]
            out[key] = value[task] if isinstance(value, dict) else value
        return out

    def sampling_seed(self, run_seed: int) -> int:
        """``seed`` when set, else the preset's (icma: 42), else ``run_seed``."""
        if self.seed is not None:
            return self.seed
        return int(DECODING_PRESETS[self.preset].get("seed", run_seed))


def as_decoding(decoding: DecodingConfig | str | Mapping[str, Any] | None) -> DecodingConfig:
    """A :class:`DecodingConfig` from itself, a preset name, a mapping, or None (greedy).

    Raises:
        ray_icma.config.ConfigError: an unknown preset, key or bad value (all listed at once).
    """
    if isinstance(decoding, DecodingConfig):
        return decoding
    from ray_icma.config import validate_config

    data: Any = {} if decoding is None else decoding
    if isinstance(data, str):
        data = {"preset": data}
    return validate_config(DecodingConfig, data, source="decoding")
