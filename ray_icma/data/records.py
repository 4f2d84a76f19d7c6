"""The one typed record every loader produces, whatever the source file looked like."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class MoleculeRecord:
    """One molecule with its text.

    Attributes:
        cid: PubChem CID (string, as in the source file).
        smiles: the SMILES string as given (not canonicalised).
        text: the description (caption splits) or IUPAC name (iupac splits).
        source: data set and split, e.g. ``"chebi20/test"``.
    """

    cid: str
    smiles: str
    text: str
    source: str = ""

    def to_dict(self) -> dict:
        return asdict(self)
