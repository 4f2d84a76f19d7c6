"""Nearest training molecules for property prompts, through the caption tasks' molecule retrievers.

Retrievers: ``morgan`` (Morgan r=2, 2048 bits, Tanimoto), ``topological`` (ICMA/MolReGPT's RDKit
topological fingerprint), ``gnn:<checkpoint.pth>`` (pretrained GNN embeddings, cosine in FAISS),
``random`` -- the same names and code as ``ray-icma contexts build --task mol2cap``.

Neighbours only ever come from the pool given (the training split). A query never gets itself:
neither its own row (same id) nor another row holding the same molecule (same canonical SMILES),
so a molecule that MoleculeNet lists twice cannot leak its own label into its prompt.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ray_icma.property.records import PropertyRecord

__all__ = ["MOLECULE_RETRIEVERS", "canonical_smiles", "retrieve_neighbours"]

MOLECULE_RETRIEVERS = ("morgan", "topological", "gnn:<checkpoint.pth>", "random")


def canonical_smiles(smiles: str) -> str:
    """RDKit canonical SMILES (the input itself when RDKit cannot parse it)."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    return Chem.MolToSmiles(mol) if mol is not None else smiles


def retrieve_neighbours(
    queries: Sequence[PropertyRecord],
    pool: Sequence[PropertyRecord],
    retriever: str = "morgan",
    k: int = 16,
    *,
    seed: int = 0,
) -> tuple[dict[str, list[str]], dict[str, list[float]]]:
    """Up to ``k`` pool ids per query, most similar first, and their scores.

    Args:
        queries: molecules needing examples (training rows when building training prompts).
        pool: the training split.
        retriever: see `MOLECULE_RETRIEVERS`.
        k: neighbours kept per query.
        seed: seed of the ``random`` retriever.

    Returns:
        ``(ids, scores)``: dicts query id -> list, best first.
    """
    from ray_icma.data.records import MoleculeRecord
    from ray_icma.jobs.contexts import build_contexts

    if not pool:
        raise ValueError("the pool (training split) is empty")
    canon_pool = {r.id: canonical_smiles(r.smiles) for r in pool}
    canon_query = {r.id: canonical_smiles(r.smiles) for r in queries}
    copies = Counter(canon_pool.values())
    extra = max((copies.get(canon_query[q.id], 0) for q in queries), default=0)
    as_records = lambda rs: [MoleculeRecord(cid=r.id, smiles=r.smiles, text="") for r in rs]  # noqa: E731
    table = build_contexts(as_records(queries), as_records(pool), "mol2cap", retriever, k=min(k + extra, len(pool)), seed=seed)
    ids: dict[str, list[str]] = {}
    scores: dict[str, list[float]] = {}
    for q in queries:
        found, found_scores = table[q.id]
        kept = [(n, s) for n, s in zip(found, found_scores) if n != q.id and canon_pool[n] != canon_query[q.id]][:k]
        ids[q.id] = [n for n, _ in kept]
        scores[q.id] = [s for _, s in kept]
    return ids, scores
