"""SMILES -> torch_geometric graph with the Hu et al. (2020) / Mole-BERT index features.

The pretrained GNNs of snap-stanford/pretrain-gnns and Mole-BERT embed each atom as
(atomic-number index, chirality index) and each bond as (bond-type index, direction index);
this module reproduces ``mol_to_graph_data_obj_simple`` from pretrain-gnns ``chem/loader.py``
so that their checkpoints see exactly the inputs they were trained on.

Where the original raised (it calls ``list.index`` and fails on anything outside its lists),
this module makes a defined choice and counts it:

* dummy / query atoms (``*``, atomic number 0) get index 119, the mask token the models were
  pre-trained to read as "unknown atom" (``MaskAtom`` in pretrain-gnns / Mole-BERT);
* bond types other than single/double/triple/aromatic (dative, zero, ...) get index 5, the
  masked-bond token;
* chirality tags other than CW/CCW (``CHI_OTHER`` and RDKit's newer non-tetrahedral tags) get
  index 0 (unspecified), and bond directions other than NONE/ENDUPRIGHT/ENDDOWNRIGHT (wedges,
  either-double) get index 0 (none): the embedding tables have no row for them.

A SMILES string RDKit cannot parse raises :class:`FeaturizationError`; the batch function
returns a validity mask and a count instead of raising.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from torch_geometric.data import Data

NUM_ATOM_TYPE = 120  # atomic numbers 1..118 -> 0..117, 118 unused, 119 = mask / unknown atom
NUM_CHIRALITY_TAG = 3
NUM_BOND_TYPE = 6  # 0..3 single/double/triple/aromatic, 4 self-loop, 5 mask / unknown bond
NUM_BOND_DIRECTION = 3

MASK_ATOM_INDEX = 119
SELF_LOOP_BOND_INDEX = 4
MASK_BOND_INDEX = 5

_CHIRALITY_INDEX = {"CHI_UNSPECIFIED": 0, "CHI_TETRAHEDRAL_CW": 1, "CHI_TETRAHEDRAL_CCW": 2}
_BOND_TYPE_INDEX = {"SINGLE": 0, "DOUBLE": 1, "TRIPLE": 2, "AROMATIC": 3}
_BOND_DIR_INDEX = {"NONE": 0, "ENDUPRIGHT": 1, "ENDDOWNRIGHT": 2}

UNKNOWN_ATOM_POLICIES = ("mask", "error")


class FeaturizationError(ValueError):
    """A SMILES string that cannot become a graph (unparsable, empty, or rejected atoms)."""


@dataclass(frozen=True)
class GraphBatch:
    """Graphs for a batch of SMILES, with the failures reported rather than raised.

    Attributes:
        graphs: one ``Data`` per input, ``None`` where featurization failed.
        valid: bool array [n], True where ``graphs[i]`` is a graph.
        errors: ``{input position: reason}`` for every invalid input.
        n_masked_atoms: atoms mapped to the unknown-atom index (119) over the whole batch.
    """

    graphs: list
    valid: np.ndarray
    errors: dict[int, str] = field(default_factory=dict)
    n_masked_atoms: int = 0

    @property
    def n_invalid(self) -> int:
        return int((~self.valid).sum())


def _atom_index(atomic_num: int, smiles: str, unknown_atom: str) -> tuple[int, bool]:
    if 1 <= atomic_num <= 118:
        return atomic_num - 1, False
    if unknown_atom == "error":
        raise FeaturizationError(
            f"SMILES {smiles!r} has an atom with atomic number {atomic_num} (e.g. '*'), outside the "
            "vocabulary 1..118; pass unknown_atom='mask' to map it to the mask index 119"
        )
    return MASK_ATOM_INDEX, True


def _parse(smiles: str):
    from rdkit import Chem, RDLogger

    if not isinstance(smiles, str) or not smiles.strip():
        raise FeaturizationError(f"empty or non-string SMILES: {smiles!r}")
    RDLogger.DisableLog("rdApp.*")
    try:
        mol = Chem.MolFromSmiles(smiles)
    finally:
        RDLogger.EnableLog("rdApp.*")
    if mol is None:
        raise FeaturizationError(f"RDKit cannot parse SMILES {smiles!r}")
    if mol.GetNumAtoms() == 0:
        raise FeaturizationError(f"SMILES {smiles!r} has no atoms")
    return mol


def mol_to_graph(mol, *, smiles: str = "", unknown_atom: str = "mask") -> "Data":
    """Featurize an RDKit molecule like pretrain-gnns ``mol_to_graph_data_obj_simple``.

    Args:
        mol: an RDKit ``Mol`` (as parsed, hydrogens implicit).
        smiles: only used in error messages.
        unknown_atom: ``"mask"`` maps atomic number 0 (``*``) to index 119; ``"error"`` raises.

    Returns:
        ``Data(x=long[n_atoms, 2], edge_index=long[2, 2*n_bonds], edge_attr=long[2*n_bonds, 2])``
        with each bond stored in both directions (i->j then j->i) and ``n_masked_atoms`` set.

    Raises:
        FeaturizationError: for an unknown atom under ``unknown_atom="error"``.
    """
    import torch
    from torch_geometric.data import Data

    if unknown_atom not in UNKNOWN_ATOM_POLICIES:
        raise ValueError(f"unknown_atom must be one of {UNKNOWN_ATOM_POLICIES}, got {unknown_atom!r}")
    atoms = []
    n_masked = 0
    for atom in mol.GetAtoms():
        index, masked = _atom_index(atom.GetAtomicNum(), smiles, unknown_atom)
        n_masked += masked
        atoms.append((index, _CHIRALITY_INDEX.get(str(atom.GetChiralTag()), 0)))
    x = torch.tensor(atoms, dtype=torch.long).reshape(-1, 2)

    edges, features = [], []
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        feature = (
            _BOND_TYPE_INDEX.get(str(bond.GetBondType()), MASK_BOND_INDEX),
            _BOND_DIR_INDEX.get(str(bond.GetBondDir()), 0),
        )
        edges += [(i, j), (j, i)]
        features += [feature, feature]
    edge_index = torch.tensor(edges, dtype=torch.long).reshape(-1, 2).t().contiguous()
    edge_attr = torch.tensor(features, dtype=torch.long).reshape(-1, 2)
    return Data(x=x, edge_index=edge_index, edge_attr=edge_attr, n_masked_atoms=n_masked)


def smiles_to_graph(smiles: str, *, unknown_atom: str = "mask") -> "Data":
    """Parse one SMILES and featurize it (see :func:`mol_to_graph`).

    Raises:
        FeaturizationError: unparsable or empty SMILES, or an unknown atom under ``"error"``.
    """
    return mol_to_graph(_parse(smiles), smiles=smiles, unknown_atom=unknown_atom)


def smiles_to_graphs(smiles: Sequence[str], *, unknown_atom: str = "mask") -> GraphBatch:
    """Featurize many SMILES; failures become ``None`` + ``valid=False`` + a reason, never raise."""
    graphs: list = []
    errors: dict[int, str] = {}
    masked = 0
    for position, s in enumerate(smiles):
        try:
            graph = smiles_to_graph(s, unknown_atom=unknown_atom)
        except FeaturizationError as exc:
            graphs.append(None)
            errors[position] = str(exc)
            continue
        masked += int(graph.n_masked_atoms)
        graphs.append(graph)
    valid = np.array([g is not None for g in graphs], dtype=bool)
    return GraphBatch(graphs=graphs, valid=valid, errors=errors, n_masked_atoms=masked)
