"""cap2mol metrics: hand-computed cases, Tanimoto recomputed from raw bits/counts, and equality
with a literal transcription of MolT5's two scripts."""
from __future__ import annotations

import math

import pytest

from ray_icma.evaluate import cap2mol_metrics, read_predictions

from .molt5_reference import mol_translation_and_fingerprint_metrics


def test_identical_smiles_score_perfectly():
    # all >= 4 characters: nltk's corpus_bleu counts a hypothesis without 4-grams as 0 of 1 (max(1, 0))
    smiles = ["CCCO", "c1ccccc1C(=O)O", "C[C@H](N)C(=O)O"]
    assert cap2mol_metrics(smiles, smiles) == {
        "bleu": 1.0, "exact": 1.0, "levenshtein": 0.0,
        "maccs_fts": 1.0, "rdk_fts": 1.0, "morgan_fts": 1.0, "validity": 1.0,
    }


def test_hand_counted_rows():
    refs = ["CCO", "CCN", "CCCC"]
    preds = ["OCC", "CCC", "XYZW"]  # ethanol rewritten, propane for ethylamine, not SMILES
    m = cap2mol_metrics(refs, preds)
    assert m["exact"] == pytest.approx(1 / 3)  # same InChI for OCC/CCO only; unparsable rows count as misses
    assert m["levenshtein"] == pytest.approx((2 + 1 + 4) / 3)  # CCO->OCC 2 substitutions, N->C 1, 4 disjoint chars
    assert m["validity"] == pytest.approx(2 / 3)


def test_character_bleu_by_hand():
    # every 1..4-gram of "CCCC" is in "CCCCC": precisions 1, brevity penalty exp(1 - 5/4)
    m = cap2mol_metrics(["CCCCC"], ["CCCC"])
    assert m["bleu"] == pytest.approx(math.exp(-0.25))
    assert m["exact"] == 0.0 and m["levenshtein"] == 1.0


def test_fingerprint_similarities_match_tanimoto_recomputed_from_bits():
    from rdkit import Chem
    from rdkit.Chem import AllChem, MACCSkeys

    ref, pred = "CC(=O)Oc1ccccc1C(=O)O", "OC(=O)c1ccccc1O"  # aspirin vs salicylic acid
    m = cap2mol_metrics([ref], [pred])
    a, b = Chem.MolFromSmiles(ref), Chem.MolFromSmiles(pred)

    def bits(fp):
        return set(fp.GetOnBits())

    for key, fn in (("maccs_fts", MACCSkeys.GenMACCSKeys), ("rdk_fts", Chem.RDKFingerprint)):
        x, y = bits(fn(a)), bits(fn(b))
        assert m[key] == pytest.approx(len(x & y) / len(x | y))
    # MolT5's Morgan: the legacy count fingerprint; Tanimoto on counts = sum(min) / sum(max)
    ca = AllChem.GetMorganFingerprint(a, 2).GetNonzeroElements()
    cb = AllChem.GetMorganFingerprint(b, 2).GetNonzeroElements()
    keys = set(ca) | set(cb)
    expected = sum(min(ca.get(k, 0), cb.get(k, 0)) for k in keys) / sum(max(ca.get(k, 0), cb.get(k, 0)) for k in keys)
    assert m["morgan_fts"] == pytest.approx(expected)
    assert 0 < m["morgan_fts"] < 1


def test_no_parsable_output_gives_nan_similarities():
    m = cap2mol_metrics(["CCO"], ["C1CC"])  # unclosed ring
    assert m["validity"] == 0.0 and m["exact"] == 0.0
    assert all(math.isnan(m[k]) for k in ("maccs_fts", "rdk_fts", "morgan_fts"))


def test_unparsable_reference_is_left_out_of_fts(caplog):
    m = cap2mol_metrics(["CCO", "not-a-smiles"], ["CCO", "CCO"])
    assert m["validity"] == 1.0 and m["exact"] == 0.5 and m["maccs_fts"] == 1.0
    assert "1 reference SMILES do not parse" in caplog.text


def test_equals_literal_molt5_transcription(cap2mol_tsv):
    preds = read_predictions(cap2mol_tsv)
    ours = cap2mol_metrics(preds.references, preds.predictions)
    theirs = mol_translation_and_fingerprint_metrics(cap2mol_tsv)
    assert ours == {k: float(v) for k, v in theirs.items()}  # bit-identical
    assert ours["validity"] == pytest.approx(20 / 24)  # the slice's 4 unparsable outputs
    assert ours["exact"] >= 1 / 24


@pytest.mark.parametrize(("refs", "preds"), [(["CCO"], []), ([], [])])
def test_bad_arguments(refs, preds):
    with pytest.raises(ValueError):
        cap2mol_metrics(refs, preds)
