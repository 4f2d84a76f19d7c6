"""The six MoleculeNet sets ICMA predicts: their columns, label names and the question asked per label.

Questions follow the official ICMA code (``utils.retrieve_<set>_prompts``): each is a sentence with
the molecule in it, once as the in-context example's instruction ("Predict whether ...") and once
as the query line ("... finally predict whether ..."). ClinTox's FDA question says "is approved"
in examples and "can be approved" in the query line, as ICMA's code does. Tox21 assays carry
ICMA's plain-language names; SIDER's column names already are plain names.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PropertySet", "Question", "PROPERTY_SETS", "get_set"]


@dataclass(frozen=True)
class Question:
    """One yes/no question, with ``{mol}`` where the SMILES goes.

    Attributes:
        example: the clause after "Predict whether" in an in-context example.
        query: the clause after "finally predict whether" in the query line (default: ``example``).
    """

    example: str
    query: str | None = None

    def example_text(self, smiles: str) -> str:
        return "Predict whether " + self.example.format(mol=smiles)

    def query_text(self, smiles: str) -> str:
        return (self.query or self.example).format(mol=smiles)


@dataclass(frozen=True)
class PropertySet:
    """A MoleculeNet classification set.

    Attributes:
        name: ``bace``, ``bbbp``, ``clintox``, ``hiv``, ``sider``, ``tox21``.
        smiles_column: the CSV column holding the SMILES.
        labels: label column names, in file order.
        label_names: plain-language name per label (shown in prompts and API answers).
        questions: the question per label.
        extra_metric: ``"pr_auc"`` where the field also reports PR-AUC (HIV: few actives).
    """

    name: str
    smiles_column: str
    labels: tuple[str, ...]
    label_names: tuple[str, ...]
    questions: tuple[Question, ...]
    extra_metric: str | None = None

    @property
    def n_labels(self) -> int:
        return len(self.labels)

    def label_index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise ValueError(f"{self.name} has no label {label!r}; its labels: {', '.join(self.labels)}") from None


_TOX21 = (
    ("NR-AR", "Androgen receptor using the MDA cell line (NR-AR)"),
    ("NR-AR-LBD", "Androgen receptor ligand binding domain (NR-AR-LBD)"),
    ("NR-AhR", "Aryl hydrocarbon receptor (NR-AhR)"),
    ("NR-Aromatase", "Aromatase enzyme (NR-Aromatase)"),
    ("NR-ER", "Estrogen receptor alpha using the BG1 cell line (NR-ER)"),
    ("NR-ER-LBD", "Estrogen receptor alpha ligand binding domain (NR-ER-LBD)"),
    ("NR-PPAR-gamma", "Peroxisome proliferator-activated receptor gamma (NR-PPAR-gamma)"),
    ("SR-ARE", "Antioxidant response element (SR-ARE)"),
    ("SR-ATAD5", "Luciferase-tagged ATAD5 in human embryonic kidney cells (SR-ATAD5)"),
    ("SR-HSE", "Heat shock response (SR-HSE)"),
    ("SR-MMP", "Mitochondrial membrane potential (SR-MMP)"),
    ("SR-p53", "p53 transcription factor response (SR-p53)"),
)

_SIDER = (
    "Hepatobiliary disorders", "Metabolism and nutrition disorders", "Product issues", "Eye disorders",
    "Investigations", "Musculoskeletal and connective tissue disorders", "Gastrointestinal disorders",
    "Social circumstances", "Immune system disorders", "Reproductive system and breast disorders",
    "Neoplasms benign, malignant and unspecified (incl cysts and polyps)",
    "General disorders and administration site conditions", "Endocrine disorders",
    "Surgical and medical procedures", "Vascular disorders", "Blood and lymphatic system disorders",
    "Skin and subcutaneous tissue disorders", "Congenital, familial and genetic disorders",
    "Infections and infestations", "Respiratory, thoracic and mediastinal disorders", "Psychiatric disorders",
    "Renal and urinary disorders", "Pregnancy, puerperium and perinatal conditions", "Ear and labyrinth disorders",
    "Cardiac disorders", "Nervous system disorders", "Injury, poisoning and procedural complications",
)

_BACE_Q = "the qualitative binding result is active for a set of inhibitors of human β-secretase 1(BACE-1) for the molecule: {mol}"

PROPERTY_SETS: dict[str, PropertySet] = {
    "bace": PropertySet(
        "bace", "mol", ("Class",), ("inhibits human β-secretase 1 (BACE-1)",), (Question(_BACE_Q),)
    ),
    "bbbp": PropertySet(
        "bbbp", "smiles", ("p_np",), ("blood-brain barrier penetration",),
        (Question("the molecule: {mol} has the property of blood-brain barrier penetration(permeability)"),),
    ),
    "clintox": PropertySet(
        "clintox", "smiles", ("FDA_APPROVED", "CT_TOX"),
        ("approved by the FDA", "failed clinical trials for toxicity"),
        (
            Question("the drug molecule: {mol} is approved by the FDA", "the drug molecule: {mol} can be approved by the FDA"),
            Question("the drug molecule: {mol} failed clinical trials for toxicity reason"),
        ),
    ),
    "hiv": PropertySet(
        "hiv", "smiles", ("HIV_active",), ("inhibits HIV replication",),
        (Question("the molecule: {mol} inhibits HIV replication"),), extra_metric="pr_auc",
    ),
    "sider": PropertySet(
        "sider", "smiles", _SIDER, _SIDER,
        tuple(Question("the molecule: {mol} causes the side effect of " + name) for name in _SIDER),
    ),
    "tox21": PropertySet(
        "tox21", "smiles", tuple(c for c, _ in _TOX21), tuple(n for _, n in _TOX21),
        tuple(Question("the molecule: {mol} can activate or affect " + name) for _, name in _TOX21),
    ),
}


def get_set(name: str) -> PropertySet:
    """The spec of a set by name; ValueError naming the choices otherwise."""
    try:
        return PROPERTY_SETS[str(name).lower()]
    except KeyError:
        raise ValueError(f"unknown property data set {name!r}; choose one of {', '.join(PROPERTY_SETS)}") from None
