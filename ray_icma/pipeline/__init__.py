"""The end-to-end `ray-icma pipeline`: data -> retrieval contexts -> ICMT LoRA training ->
Ray Data generation -> MolT5 evaluation -> HTML report, resumable stage by stage."""
from ray_icma.pipeline.config import STAGES, PipelineConfig, load_pipeline_config
from ray_icma.pipeline.report_data import collect_report_data, retrieval_stats
from ray_icma.pipeline.runner import PipelineResult, StageChangedError, run_pipeline

__all__ = [
    "STAGES",
    "PipelineConfig",
    "PipelineResult",
    "StageChangedError",
    "collect_report_data",
    "load_pipeline_config",
    "retrieval_stats",
    "run_pipeline",
]
