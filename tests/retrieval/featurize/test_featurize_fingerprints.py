"""Fingerprints: bulk Tanimoto must equal RDKit's pairwise calls exactly."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from retrieval.featurize import fingerprints, morgan_fingerprints, tanimoto, topological_fingerprints


@pytest.fixture(scope="module")
def pool_smiles(chebi20_pool_file) -> list[str]:
    return pd.read_csv(chebi20_pool_file, sep="\t")["SMILES"].tolist()


def test_topological_equals_pairwise_fingerprint_similarity(pool_smiles):
    smiles = pool_smiles[:150]
    fps = topological_fingerprints(smiles)
    lengths = {fp.GetNumBits() for fp in fps.fps}
    assert len(lengths) >= 3  # folding really produced several lengths to compare across
    expected = np.array([[DataStructs.FingerprintSimilarity(a, b) for b in fps.fps] for a in fps.fps[:40]])
    got = tanimoto(fps.fps[:40], fps)
    assert np.array_equal(got, expected)  # bit-for-bit, so rankings and ties are identical


def test_topological_is_rdkit_fingerprintmol_defaults():
    from rdkit.Chem.Fingerprints import FingerprintMols

    fp = topological_fingerprints(["CC(=O)Oc1ccccc1C(=O)O"]).fps[0]
    ref = FingerprintMols.FingerprintMol(Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O"))
    assert fp.ToBitString() == ref.ToBitString()


def test_morgan_matches_manual_tanimoto(pool_smiles):
    fps = morgan_fingerprints(pool_smiles[:30])
    assert all(fp.GetNumBits() == 2048 for fp in fps.fps)
    bits = np.array([[int(c) for c in fp.ToBitString()] for fp in fps.fps], dtype=bool)
    inter = (bits[:, None, :] & bits[None, :, :]).sum(-1)
    union = (bits[:, None, :] | bits[None, :, :]).sum(-1)
    assert np.allclose(tanimoto(fps, fps), inter / union)
    ref = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048).GetFingerprint(Chem.MolFromSmiles(pool_smiles[0]))
    assert fps.fps[0] == ref


def test_invalid_smiles_give_none_and_zero_rows():
    fps = fingerprints(["CCO", "C1CC", ""], "morgan")
    assert fps.valid.tolist() == [True, False, False] and fps.n_invalid == 2
    sims = tanimoto(fps, fps)
    assert sims[0, 0] == 1.0 and not sims[1:].any() and not sims[:, 1:].any()


def test_unknown_kind():
    with pytest.raises(ValueError, match="morgan"):
        fingerprints(["C"], "maccs")
