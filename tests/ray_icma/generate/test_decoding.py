"""The one decoding schema (presets greedy/icma + overrides) and the precision setting, as the
pipeline config and `generate_predictions` read them. No model runs here (fast tier); the run that
checks the generator really receives them is in test_batch_generate.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from ray_icma.config import ConfigError
from ray_icma.generate import DecodingConfig, as_decoding
from ray_icma.pipeline import load_pipeline_config

ROOT = Path(__file__).resolve().parents[3]
PIPELINE_CONFIGS = sorted((ROOT / "configs" / "pipeline").glob("*.yaml"))
QUICKSTART = ROOT / "configs" / "pipeline" / "quickstart.yaml"

#: ICMA's inference.py, written out here (not read from the module under test)
ICMA = {"do_sample": True, "num_beams": 1, "temperature": 0.7, "top_p": 0.85, "top_k": 40}


def test_icma_preset_is_icma_inference_settings_per_task():
    icma = as_decoding("icma")
    assert icma.for_task("cap2mol") == {**ICMA, "repetition_penalty": 0.8}
    assert icma.for_task("mol2cap") == {**ICMA, "repetition_penalty": 1.0}
    assert icma.sampling_seed(run_seed=7) == 42  # ICMA's seed unless one is given
    greedy = as_decoding(None)
    assert greedy.preset == "greedy" and greedy.for_task("cap2mol")["do_sample"] is False
    assert greedy.for_task("cap2mol")["repetition_penalty"] == 1.0 and greedy.sampling_seed(run_seed=7) == 7


def test_overrides_replace_single_settings_of_the_preset():
    d = as_decoding({"preset": "icma", "temperature": 1.3, "seed": 5, "repetition_penalty": {"mol2cap": 1.2}})
    assert d.for_task("mol2cap") == {**ICMA, "temperature": 1.3, "repetition_penalty": 1.2}
    assert d.for_task("cap2mol")["repetition_penalty"] == 0.8  # the task the override leaves out keeps the preset's
    assert d.sampling_seed(run_seed=0) == 5
    beams = as_decoding({"num_beams": 3, "repetition_penalty": 1.1})
    assert beams.for_task("cap2mol") == {"do_sample": False, "num_beams": 3, "temperature": 0.7, "top_p": 1.0, "top_k": 0,
                                         "repetition_penalty": 1.1}


@pytest.mark.parametrize(("bad", "words"), [
    ("beam", "preset"),
    ({"preset": "icma", "temprature": 1.0}, "did you mean 'temperature'"),
    ({"top_p": 1.5}, "top_p"),
    ({"repetition_penalty": {"cap2mol": 0}}, "repetition_penalty must be > 0"),
    ({"num_beams": 0}, "num_beams"),
])
def test_bad_decoding_is_one_clear_config_error(bad, words):
    with pytest.raises(ConfigError) as err:
        as_decoding(bad)
    assert words in str(err.value)


def test_every_packaged_pipeline_config_parses_with_decoding_and_precision():
    assert PIPELINE_CONFIGS
    for path in PIPELINE_CONFIGS:
        if path.name.startswith("property_"):
            continue  # property configs are another schema (ray_icma.property)
        cfg = load_pipeline_config(path)
        assert isinstance(cfg.generate.decoding, DecodingConfig) and cfg.generate.precision in ("auto", "bf16", "fp32")


def test_pipeline_generate_section_takes_decoding_and_precision_overrides():
    cfg = load_pipeline_config(QUICKSTART, ["generate.decoding=icma", "generate.precision=bf16", "train.precision=fp32"])
    assert cfg.generate.decoding.for_task("cap2mol") == {**ICMA, "repetition_penalty": 0.8}
    assert cfg.generate.precision == "bf16" and cfg.train.precision == "fp32"
    nested = load_pipeline_config(QUICKSTART, ["generate.decoding.preset=icma", "generate.decoding.top_k=5"])
    assert nested.generate.decoding.for_task("mol2cap")["top_k"] == 5 and nested.generate.decoding.preset == "icma"


def test_pipeline_decoding_and_precision_errors_name_the_key():
    with pytest.raises(ConfigError) as err:
        load_pipeline_config(QUICKSTART, ["generate.decoding=beam", "generate.precision=fp16"])
    assert "generate.decoding.preset" in str(err.value) and "generate.precision" in str(err.value)
    with pytest.raises(ConfigError, match="num_beams moved into generate.decoding"):
        load_pipeline_config(QUICKSTART, ["generate.num_beams=2"])
