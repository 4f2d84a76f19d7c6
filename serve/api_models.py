"""Request and response bodies of the HTTP API (they make the OpenAPI schema).

Input checks live here, so FastAPI answers every bad body with a 422 whose `detail` names the
field and the problem, in one format: unparsable SMILES, empty or oversize captions, unknown
tasks, too many batch items, wrong JSON.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from serve.configs import Strategy, Task

__all__ = [
    "MAX_BATCH_ITEMS",
    "MAX_CAPTION_CHARS",
    "MAX_SMILES_CHARS",
    "Mol2CapRequest",
    "Cap2MolRequest",
    "RetrieveRequest",
    "Mol2CapBatchRequest",
    "Cap2MolBatchRequest",
    "RetrieveBatchRequest",
    "Example",
    "Mol2CapResponse",
    "Cap2MolResponse",
    "RetrieveResponse",
    "Mol2CapBatchResponse",
    "Cap2MolBatchResponse",
    "RetrieveBatchResponse",
    "ErrorResponse",
    "HealthResponse",
    "ReadyResponse",
    "check_smiles",
]

MAX_BATCH_ITEMS = 32
MAX_SMILES_CHARS = 1_000
MAX_CAPTION_CHARS = 4_000
MAX_NEW_TOKENS = 256  # ICMA generates at most 256 tokens


def check_smiles(smiles: str) -> str:
    """The stripped SMILES if RDKit parses it; ValueError with the reason otherwise."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    text = smiles.strip()
    if not text:
        raise ValueError("SMILES is empty")
    if any(ch.isspace() for ch in text):
        raise ValueError(f"SMILES {text[:80]!r} contains whitespace; send one molecule per item")
    if Chem.MolFromSmiles(text) is None:
        raise ValueError(f"SMILES {text[:80]!r} could not be parsed by RDKit (check brackets, ring closures, valences)")
    return text


def _check_caption(caption: str) -> str:
    text = caption.strip()
    if not text:
        raise ValueError("caption is empty (only whitespace); send the molecule's description")
    return text


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _GenerationOptions(_Body):
    n_shot: int | None = Field(default=None, ge=0, le=10, description="In-context examples (default per task: 2 / 4).")
    strategy: Strategy | None = Field(default=None, description="Example selection (default: the reranker's).")
    seed: int | None = Field(
        default=None, ge=0, le=2**63 - 1, description="Random-walk seed; default derived from the request id (echoed)."
    )
    adapter: str | None = Field(
        default=None, min_length=1, max_length=128, description="LoRA adapter name (default per task; \"base\" = the bare base model)."
    )
    max_new_tokens: int | None = Field(default=None, ge=1, le=MAX_NEW_TOKENS, description="Generation budget.")


class Mol2CapRequest(_GenerationOptions):
    """Caption a molecule."""

    smiles: str = Field(min_length=1, max_length=MAX_SMILES_CHARS, description="The molecule, as SMILES.")

    @field_validator("smiles")
    @classmethod
    def _parsable(cls, value: str) -> str:
        return check_smiles(value)


class Cap2MolRequest(_GenerationOptions):
    """Design a molecule from a caption."""

    caption: str = Field(min_length=1, max_length=MAX_CAPTION_CHARS, description="Natural-language description.")

    @field_validator("caption")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return _check_caption(value)


class RetrieveRequest(_Body):
    """Retrieve and re-rank in-context examples only (no generation)."""

    task: Task = Field(description="`mol2cap` (query is SMILES) or `cap2mol` (query is a caption).")
    query: str = Field(min_length=1, max_length=MAX_CAPTION_CHARS, description="SMILES or caption, per task.")
    k: int | None = Field(default=None, ge=1, le=100, description="Candidates returned (default: retriever's candidate_k).")
    n_shot: int | None = Field(default=None, ge=0, le=10, description="Examples selected from the candidates.")
    strategy: Strategy | None = Field(default=None, description="Example selection strategy.")
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1, description="Random-walk seed (echoed).")

    @model_validator(mode="after")
    def _query_fits_task(self) -> "RetrieveRequest":
        if self.task == "mol2cap":
            if len(self.query) > MAX_SMILES_CHARS:
                raise ValueError(f"a mol2cap query is a SMILES of at most {MAX_SMILES_CHARS} characters")
            self.query = check_smiles(self.query)
        else:
            self.query = _check_caption(self.query)
        return self


def _batch(what: str):
    return Field(min_length=1, max_length=MAX_BATCH_ITEMS, description=f"1 to {MAX_BATCH_ITEMS} {what}.")


class Mol2CapBatchRequest(_Body):
    items: list[Mol2CapRequest] = _batch("mol2cap requests")


class Cap2MolBatchRequest(_Body):
    items: list[Cap2MolRequest] = _batch("cap2mol requests")


class RetrieveBatchRequest(_Body):
    items: list[RetrieveRequest] = _batch("retrieve requests")


# -- responses -------------------------------------------------------------------------------
class Example(BaseModel):
    """One pool entry used (or offered) as an in-context example."""

    cid: str = Field(description="Pool record id.")
    input: str = Field(description="Example input for the task (SMILES for mol2cap, caption for cap2mol).")
    output: str = Field(description="Example output for the task.")
    score: float = Field(description="Retrieval similarity (BM25 or Tanimoto / cosine).")
    rank: int = Field(description="0-based rank among the retrieved candidates.")


class _Common(BaseModel):
    request_id: str = Field(description="X-Request-ID of this request (echoed in the response header).")
    index_version: str = Field(description="Retriever index version that answered.")
    n_shot: int = Field(description="Examples requested.")
    strategy: Strategy = Field(description="Selection strategy used.")
    seed: int = Field(description="Random-walk seed used; send it back to reproduce the selection.")
    examples: list[Example] = Field(description="The in-context examples, in prompt order (most similar last).")
    timings_ms: dict[str, float] | None = Field(default=None, description="Per-stage timings (with ?debug=true).")


class _Generated(_Common):
    adapter: str | None = Field(description="LoRA adapter used (null: base model).")
    adapters_version: str = Field(description="Adapter set version that answered.")
    n_examples_in_prompt: int = Field(description="Examples that fit the prompt budget.")


class Mol2CapResponse(_Generated):
    caption: str = Field(description="Generated caption.")


class Cap2MolResponse(_Generated):
    smiles: str = Field(description="Generated SMILES (as written by the model).")
    valid: bool = Field(description="Whether RDKit parses the generated SMILES.")
    canonical_smiles: str | None = Field(description="RDKit canonical form when valid.")


class RetrieveResponse(_Common):
    task: Task = Field(description="The task.")
    candidates: list[Example] = Field(description="Retrieved candidates, best first.")


class Mol2CapBatchResponse(BaseModel):
    items: list[Mol2CapResponse]


class Cap2MolBatchResponse(BaseModel):
    items: list[Cap2MolResponse]


class RetrieveBatchResponse(BaseModel):
    items: list[RetrieveResponse]


class ErrorResponse(BaseModel):
    """Body of 501/503/504 answers (a Retry-After header comes with 503)."""

    detail: str = Field(description="What failed and what to do.")


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    ready: bool = Field(description="Indexes loaded, model loaded, Elasticsearch reachable when configured.")
    retriever: dict = Field(description="Retriever status.")
    generator: dict | None = Field(description="Generator info (null in a retrieval-only app).")
