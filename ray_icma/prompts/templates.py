"""The prompt strings of the official ICMA code, one place, no logic.

In-context prompts mirror ICMA's `utils.retrieve_m2c_prompts` / `retrieve_c2m_prompts`; the
zero-shot prompts (the "direct fine-tuning" baseline) mirror its `dataset.ZeroShotDataset`,
which is what `icma_train.py` trains on without `--retrieval`. Note the two tasks differ on
purpose in small ways that the official code has too: the mol2cap query line ends with
``". \\n"`` and the zero-shot cap2mol instruction is "Generate a molecule that:".
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TASKS", "TaskTemplate", "TEMPLATES"]


@dataclass(frozen=True)
class TaskTemplate:
    """Format strings for one task.

    Attributes:
        example: one in-context example block, fields ``{input}`` and ``{output}``.
        query: the line after the examples, field ``{input}``.
        zero_shot: the whole prompt when there are no examples, field ``{input}``.
        answer_prefix: what the target starts with; the model learns to write it.
    """

    example: str
    query: str
    zero_shot: str
    answer_prefix: str


TEMPLATES: dict[str, TaskTemplate] = {
    "mol2cap": TaskTemplate(
        example="Generate a caption for the molecule: {input}\nCaption: {output}\n\n",
        query=(
            "Based on the above examples, analyse the similarities and differences between the "
            "examples and finally generate a caption for the molecule: {input}. \n"
        ),
        zero_shot="Generate a caption for the molecule: {input}\n",
        answer_prefix="Caption: ",
    ),
    "cap2mol": TaskTemplate(
        example="Generate a molecule for the caption: {input}\nMolecule: {output}\n\n",
        query=(
            "Based on the above examples, analyse the similarities and differences between the "
            "examples and finally generate a molecule for the caption: {input}\n"
        ),
        zero_shot="Generate a molecule that: {input}\n",
        answer_prefix="Molecule: ",
    ),
}

TASKS: tuple[str, ...] = tuple(TEMPLATES)
