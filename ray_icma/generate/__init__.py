"""Generation: a Ray-free `Generator` (shared by Ray Data and Ray Serve), the decoding settings
(`DecodingConfig`: presets greedy and icma), and batch generation over a split with a Ray Data
actor pool that writes the predictions JSONL `ray-icma evaluate` reads."""
from ray_icma.generate.batch_generate import PredictBatches, generate_predictions, meta_path, read_icl_rows, smiles_is_valid
from ray_icma.generate.decoding import DECODING_PRESETS, DecodingConfig, as_decoding
from ray_icma.generate.generator import BASE_MODEL, Generation, Generator, resolve_device

__all__ = [
    "BASE_MODEL",
    "Generation",
    "Generator",
    "PredictBatches",
    "DECODING_PRESETS",
    "DecodingConfig",
    "as_decoding",
    "generate_predictions",
    "meta_path",
    "read_icl_rows",
    "resolve_device",
    "smiles_is_valid",
]
