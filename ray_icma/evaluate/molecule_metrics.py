"""Caption-to-molecule metrics, computed exactly as MolT5's `mol_translation_metrics.py` and
`fingerprint_metrics.py`.

- BLEU: nltk `corpus_bleu` over characters (`list(reference)` vs `list(prediction)`), default weights.
- Exact: share of ALL rows whose output and reference give the same RDKit InChI; rows where
  either SMILES does not parse count as misses.
- Levenshtein: mean `Levenshtein.distance(prediction, reference)` over all rows, raw strings.
- MACCS / RDK / Morgan FTS: mean Tanimoto over the rows whose output parses
  (`MACCSkeys.GenMACCSKeys`, `Chem.RDKFingerprint`, radius-2 Morgan count fingerprints, the
  sparse-count vectors `AllChem.GetMorganFingerprint(m, 2)` returned; the generator API gives the
  identical vectors without the deprecated call). NaN when no output parses, like `np.mean([])`.
- Validity: parsed outputs / all rows (`fingerprint_metrics.py`'s formula). An empty string parses
  (to an empty molecule) in RDKit, and so counts as valid there too.

MolT5's fingerprint script crashes on a reference SMILES that does not parse; we instead leave
such rows out of the FTS means and log how many.
"""
from __future__ import annotations

import logging
import math
import warnings

import numpy as np

from ray_icma.evaluate.text_metrics import check_pairs

__all__ = ["CAP2MOL_METRICS", "cap2mol_metrics"]

log = logging.getLogger(__name__)

#: Metric keys returned by `cap2mol_metrics`, in MolT5's reporting order.
CAP2MOL_METRICS = ("bleu", "exact", "levenshtein", "maccs_fts", "rdk_fts", "morgan_fts", "validity")


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def cap2mol_metrics(references: list[str], predictions: list[str]) -> dict[str, float]:
    """Score generated SMILES against reference SMILES the way MolT5 does.

    Args:
        references: ground-truth SMILES.
        predictions: generated SMILES, paired with `references` by position.

    Returns:
        `{"bleu", "exact", "levenshtein", "maccs_fts", "rdk_fts", "morgan_fts", "validity"}`;
        Levenshtein is an edit distance (lower is better), the rest lie in [0, 1].

    Raises:
        ValueError: the lists differ in length, are empty or hold non-strings.
    """
    from Levenshtein import distance as levenshtein
    from nltk.translate.bleu_score import corpus_bleu
    from rdkit import Chem, DataStructs
    from rdkit.Chem import MACCSkeys, rdFingerprintGenerator
    from rdkit.rdBase import BlockLogs

    check_pairs(references, predictions)
    n = len(references)
    with warnings.catch_warnings():  # nltk warns when an n-gram order has no match; the score stays ~0
        warnings.filterwarnings("ignore", message=r"\s*The hypothesis contains 0 counts", category=UserWarning)
        bleu = corpus_bleu([[list(gt)] for gt in references], [list(out) for out in predictions])
    levs = [levenshtein(out, gt) for gt, out in zip(references, predictions)]

    morgan = rdFingerprintGenerator.GetMorganGenerator(radius=2)
    num_exact = 0
    valid = 0
    bad_references = 0
    maccs, rdk, morg = [], [], []
    blocker = BlockLogs()  # MolT5 silences RDKit's parse errors the same way (RDLogger.DisableLog)
    try:
        for gt, out in zip(references, predictions):
            m_out = Chem.MolFromSmiles(out)
            m_gt = Chem.MolFromSmiles(gt)
            if m_out is not None and m_gt is not None:
                try:
                    if Chem.MolToInchi(m_out) == Chem.MolToInchi(m_gt):
                        num_exact += 1
                except Exception:  # noqa: BLE001 - MolT5 counts any InChI failure as a miss
                    pass
            if m_out is None:
                continue
            valid += 1
            if m_gt is None:
                bad_references += 1
                continue
            maccs.append(
                DataStructs.FingerprintSimilarity(
                    MACCSkeys.GenMACCSKeys(m_gt), MACCSkeys.GenMACCSKeys(m_out), metric=DataStructs.TanimotoSimilarity
                )
            )
            rdk.append(
                DataStructs.FingerprintSimilarity(
                    Chem.RDKFingerprint(m_gt), Chem.RDKFingerprint(m_out), metric=DataStructs.TanimotoSimilarity
                )
            )
            morg.append(
                DataStructs.TanimotoSimilarity(morgan.GetSparseCountFingerprint(m_gt), morgan.GetSparseCountFingerprint(m_out))
            )
    finally:
        del blocker
    if bad_references:
        log.warning("%d reference SMILES do not parse; their rows are left out of the FTS means", bad_references)

    return {
        "bleu": float(bleu),
        "exact": num_exact / n,
        "levenshtein": float(np.mean(levs)),
        "maccs_fts": _mean(maccs),
        "rdk_fts": _mean(rdk),
        "morgan_fts": _mean(morg),
        "validity": valid / n,
    }
