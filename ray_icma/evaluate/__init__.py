"""MolT5-exact evaluation of molecule <-> caption translation (ChEBI-20 style).

mol2cap: BLEU-2/4, ROUGE-1/2/L, METEOR over SciBERT word pieces; cap2mol: character BLEU,
InChI exact match, Levenshtein, MACCS/RDK/Morgan fingerprint Tanimoto, validity. Each number is
computed the way MolT5's `evaluation/*.py` scripts compute it, so results compare with published
tables.
"""
from ray_icma.evaluate.molecule_metrics import CAP2MOL_METRICS, cap2mol_metrics
from ray_icma.evaluate.predictions import TASKS, PredictionFileError, Predictions, read_predictions
from ray_icma.evaluate.report import plot_runs, print_table, run_names, write_json
from ray_icma.evaluate.runner import evaluate_file, evaluate_predictions
from ray_icma.evaluate.text_metrics import MOL2CAP_METRICS, mol2cap_metrics
from ray_icma.evaluate.tokenizer import DEFAULT_TOKENIZER, TokenizerLoadError
from ray_icma.evaluate.wordnet import WordNetMissingError, ensure_wordnet

__all__ = [
    "CAP2MOL_METRICS",
    "DEFAULT_TOKENIZER",
    "MOL2CAP_METRICS",
    "TASKS",
    "PredictionFileError",
    "Predictions",
    "TokenizerLoadError",
    "WordNetMissingError",
    "cap2mol_metrics",
    "ensure_wordnet",
    "evaluate_file",
    "evaluate_predictions",
    "mol2cap_metrics",
    "plot_runs",
    "print_table",
    "read_predictions",
    "run_names",
    "write_json",
]
