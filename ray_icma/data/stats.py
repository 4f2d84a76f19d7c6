"""Counts that `ray-icma data inspect` prints for a loaded file."""
from __future__ import annotations

from dataclasses import dataclass

from ray_icma.data.problems import BAD_SMILES, LoadResult


@dataclass(frozen=True, slots=True)
class FileStats:
    """What a file holds.

    Attributes:
        rows: data rows read (header excluded), good and bad.
        records: rows loaded.
        unique_cids: distinct CIDs among loaded records.
        valid_smiles: loaded records whose SMILES RDKit parses (None when not checked).
        invalid_smiles: rows skipped because RDKit rejected their SMILES.
        mean_text_chars: mean caption length in characters over loaded records.
        mean_text_words: the same in whitespace-separated words.
        problems: skipped rows by kind.
    """

    rows: int
    records: int
    unique_cids: int
    valid_smiles: int | None
    invalid_smiles: int
    mean_text_chars: float
    mean_text_words: float
    problems: dict[str, int]


def file_stats(result: LoadResult, *, smiles_checked: bool = True) -> FileStats:
    """Summarise `result` (loaded with ``validate_smiles=smiles_checked``)."""
    records = result.records
    n = len(records)
    return FileStats(
        rows=result.n_read,
        records=n,
        unique_cids=len({r.cid for r in records}),
        valid_smiles=n if smiles_checked else None,
        invalid_smiles=sum(p.kind == BAD_SMILES for p in result.problems),
        mean_text_chars=sum(len(r.text) for r in records) / n if n else 0.0,
        mean_text_words=sum(len(r.text.split()) for r in records) / n if n else 0.0,
        problems=result.problem_counts(),
    )
