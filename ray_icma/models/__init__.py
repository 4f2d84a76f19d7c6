"""Model loading (Hub ids, local dirs, GGUF, presets), a tiny random Llama for tests, LoRA presets."""
from ray_icma.models.adapters import adapter_base_model, load_with_adapter
from ray_icma.models.loader import MODEL_PRESETS, PRESET_HUB_IDS, hub_id, load_causal_lm, load_tokenizer, prepare_tokenizer, resolve_spec
from ray_icma.models.lora import apply_lora, linear_module_names, lora_config
from ray_icma.models.smollm2 import SMOLLM2_SPEC, cache_dir, smollm2_gguf, smollm2_model_dir, smollm2_tokenizer
from ray_icma.models.tiny import TINY_SPEC, tiny_random_llama

__all__ = [
    "MODEL_PRESETS",
    "SMOLLM2_SPEC",
    "TINY_SPEC",
    "load_causal_lm",
    "load_tokenizer",
    "PRESET_HUB_IDS",
    "hub_id",
    "resolve_spec",
    "load_with_adapter",
    "adapter_base_model",
    "prepare_tokenizer",
    "smollm2_gguf",
    "smollm2_tokenizer",
    "smollm2_model_dir",
    "cache_dir",
    "tiny_random_llama",
    "lora_config",
    "linear_module_names",
    "apply_lora",
]
