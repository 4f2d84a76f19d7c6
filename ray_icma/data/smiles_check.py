"""Does RDKit parse this SMILES? (the same test MolT5's validity metric uses).

A SMILES is bad when ``Chem.MolFromSmiles`` returns None, i.e. a syntax error or a failed
sanitization (impossible valence, unkekulizable aromatic ring). The string is never edited:
ChEBI-20 has SMILES with doubled backslashes (``[C@]\\\\4(...)``, 484 of 3,300 test rows);
RDKit reads them as the same molecule as the single-backslash form and MolT5/ICMA pass them
on unchanged, so they are valid and stay as they are. RDKit's own error logging is switched
off; the reason for a failure goes into the message instead.
"""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _chem():
    try:
        from rdkit import Chem, RDLogger
    except ImportError as exc:  # pragma: no cover - rdkit is installed in every test env
        raise ImportError(
            "SMILES validation needs RDKit: pip install 'ray-icma[chem]' "
            "(or load with validate_smiles=False)"
        ) from exc
    RDLogger.DisableLog("rdApp.*")
    return Chem


def smiles_error(smiles: str) -> str | None:
    """Why RDKit cannot parse `smiles`, or None when it can.

    Args:
        smiles: a SMILES string, as given.

    Returns:
        None for a valid SMILES, else a short reason ("syntax error" or RDKit's sanitization
        message, e.g. "Explicit valence for atom # 1 N, 4, is greater than permitted").
    """
    chem = _chem()
    if chem.MolFromSmiles(smiles) is not None:
        return None
    # Only failures pay for the diagnosis: parse without sanitizing to tell the two apart.
    mol = chem.MolFromSmiles(smiles, sanitize=False)
    if mol is None:
        return "syntax error"
    try:
        chem.SanitizeMol(mol)
    except Exception as exc:  # noqa: BLE001 - RDKit raises several exception types here
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return "RDKit rejected it"  # pragma: no cover - MolFromSmiles failed but sanitizing passes


def is_valid_smiles(smiles: str) -> bool:
    """True when RDKit parses `smiles` (with sanitization)."""
    return _chem().MolFromSmiles(smiles) is not None
