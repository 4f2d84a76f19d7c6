"""SMILES -> graph features, checked against hand-derived values and RDKit's own perception."""
from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem

from retrieval.featurize import (
    MASK_ATOM_INDEX,
    MASK_BOND_INDEX,
    FeaturizationError,
    smiles_to_graph,
    smiles_to_graphs,
)


def test_ethanol_atoms_bonds_and_both_edge_directions():
    g = smiles_to_graph("CCO")
    assert g.x.tolist() == [[5, 0], [5, 0], [7, 0]]  # C (6) -> 5, O (8) -> 7, no chirality
    assert g.edge_index.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]  # i->j then j->i per bond
    assert g.edge_attr.tolist() == [[0, 0]] * 4  # single, no direction
    assert int(g.n_masked_atoms) == 0


@pytest.mark.parametrize(
    "smiles, bond_type",
    [("CC", 0), ("C=O", 1), ("C#N", 2), ("c1ccccc1", 3)],
)
def test_bond_type_indices(smiles, bond_type):
    g = smiles_to_graph(smiles)
    assert g.edge_attr[:, 0].unique().tolist() == [bond_type]
    assert g.edge_index.shape[1] == 2 * Chem.MolFromSmiles(smiles).GetNumBonds()


def test_benzene_counts():
    g = smiles_to_graph("c1ccccc1")
    assert g.x.shape == (6, 2) and g.edge_index.shape == (2, 12)


def test_chirality_indices_follow_rdkit_tags():
    ccw = smiles_to_graph("C[C@H](N)O")  # '@' is CHI_TETRAHEDRAL_CCW in RDKit
    cw = smiles_to_graph("C[C@@H](N)O")
    assert ccw.x[1, 1].item() == 2 and cw.x[1, 1].item() == 1
    assert ccw.x[[0, 2, 3], 1].tolist() == [0, 0, 0]


def test_bond_directions_match_rdkit():
    smiles = "F/C=C/F"
    mol = Chem.MolFromSmiles(smiles)
    names = {"NONE": 0, "ENDUPRIGHT": 1, "ENDDOWNRIGHT": 2}
    expected = [names[str(b.GetBondDir())] for b in mol.GetBonds()]
    g = smiles_to_graph(smiles)
    assert g.edge_attr[::2, 1].tolist() == expected
    assert any(expected)  # the example really carries a direction


def test_dummy_atom_maps_to_mask_and_is_counted():
    g = smiles_to_graph("*CC(=O)O")
    assert g.x[0].tolist() == [MASK_ATOM_INDEX, 0]
    assert int(g.n_masked_atoms) == 1
    with pytest.raises(FeaturizationError, match="atomic number 0"):
        smiles_to_graph("*CC", unknown_atom="error")


def test_dative_bond_maps_to_mask_bond():
    g = smiles_to_graph("[NH3]->[Cu+2]")
    assert str(Chem.MolFromSmiles("[NH3]->[Cu+2]").GetBondWithIdx(0).GetBondType()) == "DATIVE"
    assert g.edge_attr[:, 0].tolist() == [MASK_BOND_INDEX, MASK_BOND_INDEX]


def test_molecule_without_bonds():
    g = smiles_to_graph("[Na+].[Cl-]")
    assert g.x.tolist() == [[10, 0], [16, 0]]
    assert g.edge_index.shape == (2, 0) and g.edge_attr.shape == (0, 2)


@pytest.mark.parametrize("bad", ["C1CC", "not a smiles", "", "   "])
def test_unparsable_smiles_raise(bad):
    with pytest.raises(FeaturizationError):
        smiles_to_graph(bad)


def test_batch_reports_invalid_rows_without_raising():
    batch = smiles_to_graphs(["CCO", "C1CC", "*C", ""])
    assert batch.valid.tolist() == [True, False, True, False]
    assert batch.n_invalid == 2 and set(batch.errors) == {1, 3}
    assert batch.graphs[1] is None and batch.n_masked_atoms == 1


def test_real_pool_featurizes(chebi20_pool_file):
    import pandas as pd

    smiles = pd.read_csv(chebi20_pool_file, sep="\t")["SMILES"].tolist()
    batch = smiles_to_graphs(smiles)
    mols = [Chem.MolFromSmiles(s) for s in smiles]
    assert batch.valid.tolist() == [m is not None for m in mols]
    for graph, mol in zip(batch.graphs[:50], mols[:50]):
        assert graph.x.shape[0] == mol.GetNumAtoms()
        assert graph.edge_index.shape[1] == 2 * mol.GetNumBonds()
        assert int(graph.x[:, 0].max()) < 120
        assert graph.edge_attr.numel() == 0 or int(graph.edge_attr[:, 0].max()) < 6
    assert np.all([int(g.x[:, 1].max()) <= 2 for g in batch.graphs if g is not None])
