"""Generation: a Ray-free `Generator` (shared by Ray Data and Ray Serve) and batch generation
over a split with a Ray Data actor pool that writes the predictions JSONL `ray-icma evaluate` reads."""
from ray_icma.generate.batch_generate import DECODING_PRESETS, PredictBatches, decoding_settings, generate_predictions, meta_path, read_icl_rows, smiles_is_valid
from ray_icma.generate.generator import BASE_MODEL, Generation, Generator, resolve_device

__all__ = [
    "BASE_MODEL",
    "Generation",
    "Generator",
    "PredictBatches",
    "DECODING_PRESETS",
    "decoding_settings",
    "generate_predictions",
    "meta_path",
    "read_icl_rows",
    "resolve_device",
    "smiles_is_valid",
]
