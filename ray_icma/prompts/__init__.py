"""ICMA prompts: in-context example blocks + query line, targets, token-budget fitting, output parsing."""
from ray_icma.prompts.icl_prompt import (
    DEFAULT_ANSWER_RESERVE,
    build_prompt,
    build_target,
    count_tokens,
    fit_prompt,
    parse_output,
)
from ray_icma.prompts.icl_rows import ICMA_SELECTION_WINDOW, build_icl_rows, record_io, selection_window
from ray_icma.prompts.templates import TASKS, TEMPLATES

__all__ = [
    "TASKS",
    "TEMPLATES",
    "DEFAULT_ANSWER_RESERVE",
    "build_prompt",
    "build_target",
    "parse_output",
    "fit_prompt",
    "count_tokens",
    "build_icl_rows",
    "selection_window",
    "ICMA_SELECTION_WINDOW",
    "record_io",
]
