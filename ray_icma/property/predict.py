"""Predict per-label probabilities for new molecules: the serving and `ray-icma property predict` path.

The same steps as evaluation, for SMILES nobody has labelled: nearest training molecules
(fingerprint index built once per set), ICMA prompts for every label of the set, P(Yes) from
the model (+ adapter). A SMILES RDKit cannot parse is a `BadSmiles` error naming it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["BadSmiles", "PropertyPredictor", "SetPool"]


class BadSmiles(ValueError):
    """A query SMILES that RDKit cannot parse (the message names it and says why)."""


@dataclass
class SetPool:
    """One set's training split, indexed for neighbour search."""

    name: str
    records: list
    index: Any
    canonical: list[str]

    @classmethod
    def build(cls, name: str, records: Sequence, retriever: str = "morgan") -> "SetPool":
        from retrieval.indexes import FingerprintIndex

        from ray_icma.property.neighbours import canonical_smiles

        if retriever not in ("morgan", "topological"):
            raise ValueError(f"serving retrieves with a fingerprint index: retriever must be morgan or topological, got {retriever!r}")
        records = list(records)
        index = FingerprintIndex(kind=retriever).build([r.smiles for r in records], ids=[r.id for r in records])
        return cls(name, records, index, [canonical_smiles(r.smiles) for r in records])


class PropertyPredictor:
    """Per-label P(Yes) for SMILES, for every configured set.

    Args:
        pools: set name -> training records (from `load_property_splits`).
        model: model spec; adapter: LoRA adapter dir (None: the base model).
        n_shot, k: examples per prompt, neighbours searched.
        retriever: ``morgan`` or ``topological``.
        scorer_kwargs: passed to `YesNoScorer` (batch_size, precision, cutoff_len, device).
    """

    def __init__(self, pools: Mapping[str, Sequence], *, model: str = "smollm2-135m", adapter: str | None = None, n_shot: int = 2,
                 k: int = 12, retriever: str = "morgan", scorer: Any = None, **scorer_kwargs: Any) -> None:
        from ray_icma.property.datasets import get_set
        from ray_icma.property.scoring import YesNoScorer

        self.pools = {get_set(name).name: SetPool.build(get_set(name).name, recs, retriever) for name, recs in pools.items()}
        self.n_shot, self.k = n_shot, k
        self.scorer = scorer if scorer is not None else YesNoScorer(model, adapter=adapter, **scorer_kwargs)
        self.model, self.adapter = model, adapter

    @property
    def datasets(self) -> list[str]:
        return sorted(self.pools)

    def _pool(self, dataset: str) -> SetPool:
        key = str(dataset).lower()
        if key not in self.pools:
            raise KeyError(f"unknown dataset {dataset!r}; this predictor serves {', '.join(self.datasets) or 'no set'}")
        return self.pools[key]

    def neighbours(self, dataset: str, smiles: Sequence[str]) -> list[list[str]]:
        """Pool ids per query, most similar first, without copies of the query molecule."""
        from ray_icma.data.smiles_check import smiles_error
        from ray_icma.property.neighbours import canonical_smiles

        pool = self._pool(dataset)
        for s in smiles:
            reason = smiles_error(s) if s and s.strip() else "empty SMILES"
            if reason is not None:
                raise BadSmiles(f"RDKit cannot parse SMILES {s!r}: {reason}")
        hits = pool.index.search(list(smiles), k=min(self.k + 8, len(pool.records)))
        out = []
        for i, s in enumerate(smiles):
            own = canonical_smiles(s)
            ids = [pool.records[j].id for j, _ in hits.row(i) if pool.canonical[j] != own]
            out.append(ids[: self.k])
        return out

    def predict(self, dataset: str, smiles: Sequence[str]) -> list[dict]:
        """One ``{"smiles", "probabilities": {label: P(Yes)}, "neighbours": [...]}`` per SMILES.

        Raises:
            KeyError: a set this predictor does not serve. BadSmiles: an unparsable SMILES.
        """
        from ray_icma.property.datasets import get_set
        from ray_icma.property.prompts import build_property_rows
        from ray_icma.property.records import PropertyRecord

        pool = self._pool(dataset)
        spec = get_set(pool.name)
        smiles = [s.strip() for s in smiles]
        found = self.neighbours(pool.name, smiles)
        queries = [PropertyRecord(f"query:{i}", s, ()) for i, s in enumerate(smiles)]
        by_id = {r.id: r for r in pool.records}
        rows = build_property_rows(queries, by_id, {q.id: n for q, n in zip(queries, found)}, spec, self.n_shot, known_only=False)
        probs, _ = self.scorer.score(rows)
        out = [{"smiles": s, "probabilities": {}, "neighbours": n[: self.n_shot]} for s, n in zip(smiles, found)]
        for row, p in zip(rows, probs):
            out[int(row["query_id"].split(":")[1])]["probabilities"][row["label"]] = float(p)
        return out
