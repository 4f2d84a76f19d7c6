"""What a loader found wrong with a file, and what it loaded anyway.

Bad rows are never dropped silently: each one becomes a `Problem` naming the file, the line
and what is wrong. Lenient loading collects them in `LoadResult.problems`; strict loading
raises the first one as a `DataError` whose message is the same text.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ray_icma.data.records import MoleculeRecord

# Row-level problem kinds (one per row; the first check that fails wins).
COLUMNS = "columns"  # wrong number of columns / missing JSON keys
EMPTY_CID = "empty_cid"
EMPTY_SMILES = "empty_smiles"
EMPTY_TEXT = "empty_text"
BAD_SMILES = "bad_smiles"  # RDKit cannot parse (syntax or sanitization)
DUPLICATE_CID = "duplicate_cid"  # a CID seen on an earlier line (that earlier row is kept)
ENCODING = "encoding"  # bytes that are not UTF-8
BAD_JSON = "bad_json"  # a JSONL line that is not a JSON object

PROBLEM_KINDS = (COLUMNS, EMPTY_CID, EMPTY_SMILES, EMPTY_TEXT, BAD_SMILES, DUPLICATE_CID, ENCODING, BAD_JSON)


@dataclass(frozen=True, slots=True)
class Problem:
    """One bad row.

    Attributes:
        path: the file it is in.
        line: 1-based line number (TSV/JSONL, header included) or row number (Parquet).
        kind: one of `PROBLEM_KINDS`.
        message: what is wrong and what to do, without the location.
    """

    path: str
    line: int
    kind: str
    message: str

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


@dataclass(frozen=True, slots=True)
class Rejected:
    """A row a loader's check turned down: the problem kind and what is wrong (no location yet)."""

    kind: str
    message: str


class DataError(ValueError):
    """A file cannot be loaded (strict mode: its first bad row; any mode: unreadable file).

    ``str(err)`` is a one-line message naming the file (and line when there is one).
    """

    def __init__(self, message: str, problem: Problem | None = None) -> None:
        super().__init__(message)
        self.problem = problem

    @classmethod
    def from_problem(cls, problem: Problem) -> DataError:
        return cls(str(problem), problem)


@dataclass(slots=True)
class LoadResult:
    """The records a file gave, plus every row that was skipped and why.

    Attributes:
        records: good rows, in file order.
        problems: one per skipped row, in file order.
        path: the file loaded.
    """

    records: list[MoleculeRecord]
    problems: list[Problem] = field(default_factory=list)
    path: str = ""

    @property
    def n_skipped(self) -> int:
        return len(self.problems)

    @property
    def n_read(self) -> int:
        """Data rows read (header excluded), good and bad."""
        return len(self.records) + len(self.problems)

    def problem_counts(self) -> dict[str, int]:
        return dict(Counter(p.kind for p in self.problems))

    def summary(self) -> str:
        """One line: rows read, loaded, skipped (by kind)."""
        text = f"{self.path}: {self.n_read} rows read, {len(self.records)} loaded, {self.n_skipped} skipped"
        if self.problems:
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.problem_counts().items()))
            text += f" ({kinds})"
        return text

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)
