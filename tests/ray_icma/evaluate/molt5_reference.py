"""MolT5's evaluation scripts transcribed line by line (blender-nlp/MolT5 `evaluation/`), as the
independent reference the fast evaluator must equal exactly. Deliberately slow and literal:
per-sentence `tokenize(..., padding='max_length')`, nltk's default stemmer and global WordNet
loader, the legacy `AllChem.GetMorganFingerprint`, MolT5's own try/except bookkeeping.
(Under transformers 5 `tokenize` ignores truncation/padding kwargs; the bundled rows are all far
below 512 pieces, so this does not matter here.)"""
from __future__ import annotations

import csv

import numpy as np


def text_translation_metrics(input_file, text_model, text_trunc_length=512):
    from nltk.corpus import wordnet
    from nltk.translate.bleu_score import corpus_bleu
    from nltk.translate.meteor_score import meteor_score
    from rouge_score import rouge_scorer
    from transformers import BertTokenizerFast

    from ray_icma.evaluate.wordnet import ensure_wordnet

    ensure_wordnet()  # puts the generated corpus on nltk.data.path for the global `wordnet` loader
    outputs = []
    with open(input_file, encoding="utf8") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        for n, line in enumerate(reader):
            out_tmp = line["output"][6:] if line["output"].startswith("[CLS] ") else line["output"]
            outputs.append((line["SMILES"], line["ground truth"], out_tmp))
    text_tokenizer = BertTokenizerFast.from_pretrained(text_model)
    meteor_scores, references, hypotheses = [], [], []
    for i, (smi, gt, out) in enumerate(outputs):
        gt_tokens = text_tokenizer.tokenize(gt, truncation=True, max_length=text_trunc_length, padding="max_length")
        gt_tokens = list(filter(("[PAD]").__ne__, gt_tokens))
        gt_tokens = list(filter(("[CLS]").__ne__, gt_tokens))
        gt_tokens = list(filter(("[SEP]").__ne__, gt_tokens))
        out_tokens = text_tokenizer.tokenize(out, truncation=True, max_length=text_trunc_length, padding="max_length")
        out_tokens = list(filter(("[PAD]").__ne__, out_tokens))
        out_tokens = list(filter(("[CLS]").__ne__, out_tokens))
        out_tokens = list(filter(("[SEP]").__ne__, out_tokens))
        references.append([gt_tokens])
        hypotheses.append(out_tokens)
        meteor_scores.append(meteor_score([gt_tokens], out_tokens, wordnet=wordnet))
    bleu2 = corpus_bleu(references, hypotheses, weights=(0.5, 0.5))
    bleu4 = corpus_bleu(references, hypotheses, weights=(0.25, 0.25, 0.25, 0.25))
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    rouge_scores = [scorer.score(out, gt) for (smi, gt, out) in outputs]
    return {
        "bleu2": bleu2,
        "bleu4": bleu4,
        "rouge1": np.mean([rs["rouge1"].fmeasure for rs in rouge_scores]),
        "rouge2": np.mean([rs["rouge2"].fmeasure for rs in rouge_scores]),
        "rougeL": np.mean([rs["rougeL"].fmeasure for rs in rouge_scores]),
        "meteor": np.mean(meteor_scores),
    }


def mol_translation_and_fingerprint_metrics(input_file, morgan_r=2):
    from Levenshtein import distance as lev
    from nltk.translate.bleu_score import corpus_bleu
    from rdkit import Chem, DataStructs, RDLogger
    from rdkit.Chem import AllChem, MACCSkeys

    RDLogger.DisableLog("rdApp.*")
    try:
        # mol_translation_metrics.py
        outputs = []
        with open(input_file) as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            for n, line in enumerate(reader):
                outputs.append((line["description"], line["ground truth"], line["output"]))
        references, hypotheses = [], []
        for i, (smi, gt, out) in enumerate(outputs):
            references.append([[c for c in gt]])
            hypotheses.append([c for c in out])
        bleu_score = corpus_bleu(references, hypotheses)
        levs, num_exact, bad_mols = [], 0, 0
        for i, (smi, gt, out) in enumerate(outputs):
            try:
                m_out = Chem.MolFromSmiles(out)
                m_gt = Chem.MolFromSmiles(gt)
                if Chem.MolToInchi(m_out) == Chem.MolToInchi(m_gt):
                    num_exact += 1
            except Exception:
                bad_mols += 1
            levs.append(lev(out, gt))
        exact_match_score = num_exact / (i + 1)
        levenshtein_score = np.mean(levs)

        # fingerprint_metrics.py
        outputs, bad_mols = [], 0
        with open(input_file) as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            for n, line in enumerate(reader):
                try:
                    gt_m = Chem.MolFromSmiles(line["ground truth"])
                    ot_m = Chem.MolFromSmiles(line["output"])
                    if ot_m == None:  # noqa: E711 - as in MolT5
                        raise ValueError("Bad SMILES")
                    outputs.append((line["description"], gt_m, ot_m))
                except Exception:
                    bad_mols += 1
        validity_score = len(outputs) / (len(outputs) + bad_mols)
        maccs, rdk, morgan = [], [], []
        for i, (desc, gt_m, ot_m) in enumerate(outputs):
            maccs.append(DataStructs.FingerprintSimilarity(MACCSkeys.GenMACCSKeys(gt_m), MACCSkeys.GenMACCSKeys(ot_m), metric=DataStructs.TanimotoSimilarity))
            rdk.append(DataStructs.FingerprintSimilarity(Chem.RDKFingerprint(gt_m), Chem.RDKFingerprint(ot_m), metric=DataStructs.TanimotoSimilarity))
            morgan.append(DataStructs.TanimotoSimilarity(AllChem.GetMorganFingerprint(gt_m, morgan_r), AllChem.GetMorganFingerprint(ot_m, morgan_r)))
    finally:
        RDLogger.EnableLog("rdApp.*")
    return {
        "bleu": bleu_score,
        "exact": exact_match_score,
        "levenshtein": levenshtein_score,
        "maccs_fts": np.mean(maccs),
        "rdk_fts": np.mean(rdk),
        "morgan_fts": np.mean(morgan),
        "validity": validity_score,
    }
