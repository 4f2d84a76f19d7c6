"""Molecular property prediction by in-context molecule tuning (ICMA's MoleculeNet tasks).

BACE, BBBP, ClinTox, HIV, SIDER, Tox21: records with missing labels, ICMA's split and a
Bemis-Murcko scaffold split, ICMA's Yes/No prompts with retrieved neighbours, LoRA tuning on Ray
Train, P(Yes) scoring on Ray Data, ROC-AUC/PR-AUC with bootstrap intervals, and k-NN vote and
random-forest baselines.

    from ray_icma.property import load_property_splits, run_property
    splits, _ = load_property_splits("bbbp", "scaffold", root="../shared/data/moleculenet")
"""
from ray_icma.property.datasets import PROPERTY_SETS, PropertySet, Question, get_set
from ray_icma.property.prompts import build_property_rows, property_task, property_template
from ray_icma.property.records import PropertyRecord, load_property_file, write_property_records
from ray_icma.property.splits import SPLIT_KINDS, load_property_splits, murcko_scaffold, scaffold_split

__all__ = [
    "PROPERTY_SETS",
    "PropertySet",
    "PropertyRecord",
    "Question",
    "SPLIT_KINDS",
    "build_property_rows",
    "get_set",
    "load_property_file",
    "load_property_splits",
    "murcko_scaffold",
    "property_task",
    "property_template",
    "scaffold_split",
    "write_property_records",
]
