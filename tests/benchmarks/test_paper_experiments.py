"""benchmarks/paper_experiments.py's own rules that decide what a row means: the generation budget
("auto" must not truncate the answers it is compared on) and one results folder per preset (a
setting name under another preset must not overwrite this one's result)."""
from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pe():
    spec = importlib.util.spec_from_file_location("paper_experiments_under_test", ROOT / "benchmarks" / "paper_experiments.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses / typing resolve the module by name
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop(spec.name, None)


def _words(text: str) -> dict:
    return {"input_ids": text.split()}


def test_auto_answer_budget_covers_the_pools_95th_percentile(pe):
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 300, size=400)
    answers = [" ".join(["w"] * int(n)) for n in lengths]
    budget = pe.answer_budget("auto", _words, answers)
    assert budget % 8 == 0
    assert budget >= np.percentile(lengths, 95) + 2  # the 95th-percentile answer and its stop fit
    assert budget < np.percentile(lengths, 95) + 2 + 8  # and no more than one rounding step beyond
    assert (lengths <= budget).mean() >= 0.95
    assert pe.answer_budget(40, _words, answers) == 40  # a number is taken as given
    with pytest.raises(ValueError, match="pool"):
        pe.answer_budget("auto", _words, ["", ""])


def test_every_preset_has_its_own_results_and_work_folders(pe):
    got = {size: pe.folders(size) for size in pe.PRESETS}
    assert got["cpu"] == (pe.DEFAULT_OUT, pe.DEFAULT_WORK)  # the committed CPU tables stay where they are
    outs = [out for out, _ in got.values()]
    works = [work for _, work in got.values()]
    assert len(set(outs)) == len(outs) and len(set(works)) == len(works)
    assert got["quick"][0].is_relative_to(got["quick"][1])  # smoke results stay out of the repo's results
    assert pe.folders("gpu", out="/tmp/x", work="/tmp/y") == (Path("/tmp/x"), Path("/tmp/y"))


def test_long_cpu_preset_generates_whole_answers_at_icmas_cutoff(pe):
    p = pe.PRESETS["cpu-long"]
    assert p["generate"]["max_new_tokens"] == "auto" and p["cutoff_len"] == 1024
    assert p["n_queries"] >= 500  # the floor per task and setting
    (s,) = [s for s in pe.build_settings(p, ["main"], ["cap2mol"]) if s["arm"] == "icmt"]
    (c,) = [s for s in pe.build_settings(pe.PRESETS["cpu"], ["main"], ["cap2mol"]) if s["arm"] == "icmt"]
    assert s["name"] == c["name"] and pe.setting_hash(s) != pe.setting_hash(c)


def _row(name: str, arm: str, ids: list[str], retriever: str = "bm25", **extra) -> dict:
    return {"name": name, "ids": ids, "setting": {"arm": arm, "dataset": "chebi20", "task": "cap2mol", "retriever": retriever,
                                                  "generate": {"max_new_tokens": 40}}, **extra}


def _tsv(out: Path, name: str, outputs: list[str]) -> None:
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    lines = ["description\tground truth\toutput"] + [f"q{i}\tref{i}\t{o}" for i, o in enumerate(outputs)]
    (out / "predictions" / f"{name}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_copy_relation_counts_copies_and_cut_copies_against_the_same_retrievers_copy(pe, tmp_path):
    ids = ["1", "2", "3", "4"]
    copy = ["CCCCCCCCCCCCOC(=O)C", "c1ccccc1O", "CCN(CC)CCOC(=O)c1ccccc1", "OCC(O)CO"]
    _tsv(tmp_path, "c", copy)
    _tsv(tmp_path, "c-random", ["N", "N", "N", "N"])  # another retriever's copy: never the reference
    # identical, too short to call a prefix (< 10 characters), cut after 11 characters, different
    _tsv(tmp_path, "m", ["CCCCCCCCCCCCOC(=O)C", "c1ccccc1", "CCN(CC)CCOC", "OCC(O)CN"])
    def stats(exact, morgan):  # per-query statistics as score() stores them (BLEU counts: every n-gram matched)
        return {"bleu_counts": [[1] * 10] * 4, "exact": exact, "levenshtein": [0] * 4, "validity": [1] * 4,
                "maccs_fts": morgan, "rdk_fts": morgan, "morgan_fts": morgan}

    res = {"c-random": _row("c-random", "copy", ids, retriever="random"),
           "c": _row("c", "copy", ids, row_stats=stats([1, 1, 1, 0], [0.5, 0.8, 0.8, 0.8])),
           "m": _row("m", "icmt", ids, generation={"max_new_tokens": 176, "rows_at_max_new_tokens": 1},
                     row_stats=stats([1, 0, 0, 1], [0.5, 0.2, 0.2, 0.2])),
           "r": _row("r", "icmt", ids, reused_from="m"),                # the same result under another name: listed once
           "other": _row("other", "icmt", ["9", "8", "7", "6"])}        # other queries: no copy row to compare with
    _tsv(tmp_path, "r", ["x"] * 4)
    _tsv(tmp_path, "other", ["x"] * 4)
    (got,) = pe.copy_relation(res, tmp_path)
    # the headline metrics on the 3 queries whose output is not the copy's (the first query is left out)
    assert got == {"row": "m", "copy_row": "c", "n": 4, "identical": 1, "prefix": 1, "max_new_tokens": 176, "at_max_new_tokens": 1,
                   "where_different": {"bleu": [1.0, 1.0], "exact": [0.333, 0.667], "morgan_fts": [0.2, 0.8]}}
    table = pe.copy_relation_markdown([got])
    assert "| `m` | `c` | 4 | 1 | 1 | 176 | 1 | bleu 1.000 vs 1.000; exact 0.333 vs 0.667; morgan_fts 0.200 vs 0.800 |" in table


def test_ablation_directions_judge_each_claim_from_paired_intervals(pe):
    rng = np.random.default_rng(1)
    n = 40
    ids = [str(i) for i in range(n)]
    base = rng.uniform(0.2, 0.6, size=n)

    def row(name, group, arm="icmt", morgan=0.0, matched=3, **setting):
        stats = {"bleu_counts": [[matched, 4] * 4 + [4, 4]] * n, "exact": [0] * n, "levenshtein": [1] * n, "validity": [1] * n,
                 "maccs_fts": list(base + morgan), "rdk_fts": list(base + morgan), "morgan_fts": list(base + morgan)}
        s = {"group": group, "dataset": "chebi20", "task": "cap2mol", "arm": arm, "n_shot": 2, "reverse": True,
             "retriever": "bm25", "model": "smollm2-135m", "bootstrap": 200, "seed": 0, **setting}
        return name, {"name": name, "ids": ids, "setting": s, "row_stats": stats}

    res = dict([
        row("one", "nshot", n_shot=1), row("two", "nshot", morgan=0.2, n_shot=2), row("four", "nshot", n_shot=4),  # names not in n order
        row("on", "reversal"), row("off", "reversal", reverse=False),
        row("rand", "retriever", retriever="random"), row("bm25", "retriever", morgan=0.1),
        row("rand-copy", "retriever", arm="copy", morgan=0.5, retriever="random"),  # copy rows are not trained rows
        row("small", "model"), row("large", "model", morgan=0.2, matched=2, model="gemma3-270m"),
        row("code", "strategy"), row("top", "strategy", morgan=0.3, strategy="top"),  # no claimed direction
        row("icmt", "main", morgan=0.3),
    ])
    got = {line.split("**")[0].removeprefix("- chebi20 cap2mol, "): line.split("**")[1] for line in pe.directions(res)}
    assert got == {
        "more examples help: `two` vs `one`: ": "confirmed",     # Morgan FTS up, BLEU and exact equal
        "more examples help: `four` vs `two`: ": "refuted",      # Morgan FTS back down
        "better retrieval helps (than random examples): `bm25` vs `rand`: ": "confirmed",
        "sequence reversal helps: `on` vs `off`: ": "not separable",
        "a larger model helps: `large` vs `small`: ": "mixed",  # Morgan FTS up, BLEU down
    }


def _chebi_file(path: Path, rows: list[tuple[str, str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("CID\tSMILES\tdescription\n" + "".join(f"{c}\t{s}\t{d}\n" for c, s, d in rows), encoding="utf-8")


def test_records_cache_serves_a_machine_without_the_sources_and_is_rebuilt_when_they_change(pe, tmp_path, monkeypatch):
    """A lent GPU machine has neither ../shared nor RDKit: it reads the records the preparing machine cached,
    and a cache whose sources changed is not trusted where the sources are present."""
    shared, work = tmp_path / "shared", tmp_path / "work"
    monkeypatch.setattr(pe, "SHARED", shared)
    monkeypatch.setattr(pe, "DATASETS", {"toy": {"pool": "p.txt", "queries": "q.txt", "label": "toy"}})
    monkeypatch.setattr(pe, "_CACHE", {})
    pool = [("1", "CCO", "The molecule is ethanol."), ("2", "CCC", "The molecule is propane.")]
    queries = [("3", "CCN", "The molecule is ethylamine."), ("4", "CO", "The molecule is methanol."), ("5", "C", "The molecule is methane.")]
    _chebi_file(shared / "p.txt", pool)
    _chebi_file(shared / "q.txt", queries)

    q1, p1 = pe.load_dataset("toy", 2, 0, work)
    assert len(q1) == 2 and [r.cid for r in p1] == ["1", "2"]
    assert (work / "records" / "toy-q2s0.json").is_file()

    (shared / "p.txt").unlink(), (shared / "q.txt").unlink()
    monkeypatch.setattr(pe, "_CACHE", {})
    assert pe.dataset_available("toy", 2, 0, work) and not pe.dataset_available("toy", 2, 0, tmp_path / "other")
    assert pe.load_dataset("toy", 2, 0, work) == (q1, p1)  # the same records, from the cache alone

    _chebi_file(shared / "p.txt", [("1", "CCO", "The molecule is ethanol, changed.")] + pool[1:])
    _chebi_file(shared / "q.txt", queries)
    monkeypatch.setattr(pe, "_CACHE", {})
    _, p2 = pe.load_dataset("toy", 2, 0, work)
    assert p2[0].text == "The molecule is ethanol, changed."

    (shared / "p.txt").unlink()
    monkeypatch.setattr(pe, "_CACHE", {})
    with pytest.raises(FileNotFoundError, match="no records cache"):
        pe.load_dataset("toy", 2, 0, tmp_path / "empty")  # neither the sources nor a cache


def test_deferred_scoring_writes_pending_results_that_score_only_finishes(pe, tmp_path, monkeypatch, capsys):
    """The lent-GPU path: ``--defer-scoring`` leaves predictions and an unscored result (nothing needs RDKit or
    NLTK), a rerun skips it, and ``--score-only`` turns it into the scored result without producing again."""
    import json

    shared, work, out = tmp_path / "shared", tmp_path / "work", tmp_path / "out"
    monkeypatch.setattr(pe, "SHARED", shared)
    monkeypatch.setattr(pe, "DATASETS", {"toy": {"pool": "p.txt", "queries": "q.txt", "label": "toy"}})
    monkeypatch.setattr(pe, "_CACHE", {})
    _chebi_file(shared / "p.txt", [("1", "CCO", "The molecule is ethanol."), ("2", "CCC", "The molecule is propane.")])
    _chebi_file(shared / "q.txt", [("3", "CCN", "The molecule is ethylamine."), ("4", "CO", "The molecule is methanol.")])
    ctx = work / "contexts" / "toy-mol2cap-morgan-q20s0-k10.jsonl"
    ctx.parent.mkdir(parents=True)
    ctx.write_text("".join(json.dumps({"query_id": q, "task": "mol2cap", "retriever": "morgan", "neighbors": n, "scores": [0.9, 0.1]}) + "\n"
                           for q, n in (("3", ["1", "2"]), ("4", ["2", "1"]))), encoding="utf-8")
    args = ["--size", "quick", "--datasets", "toy", "--tasks", "mol2cap", "--only", "main-toy-mol2cap-copy", "--out", str(out), "--work", str(work)]

    assert pe.main(args + ["--defer-scoring"]) == 0
    pending = out / "pending" / "main-toy-mol2cap-copy.json"
    assert pending.is_file() and not (out / "settings").exists()
    assert json.loads(pending.read_text())["preds"] == ["The molecule is ethanol.", "The molecule is propane."]
    assert json.loads(pending.read_text())["top1_scores"] == [0.9, 0.9]  # how similar each copied item was
    assert (out / "predictions" / "main-toy-mol2cap-copy.tsv").read_text().splitlines()[1] == "CCN\tThe molecule is ethylamine.\tThe molecule is ethanol."
    capsys.readouterr()
    assert pe.main(args + ["--defer-scoring"]) == 0
    assert "waiting to be scored" in capsys.readouterr().out

    assert pe.main(args + ["--score-only"]) == 0
    result = json.loads((out / "settings" / "main-toy-mol2cap-copy.json").read_text())
    assert not pending.exists() and "preds" not in result
    assert 0 < result["metrics"]["bleu2"] <= 1 and result["timings"]["total_s"] >= result["timings"]["produce_s"]


def test_budget_group_differs_from_the_main_icmt_row_only_in_its_token_budget(pe):
    p = pe.PRESETS["cpu-long"]
    (main,) = [s for s in pe.build_settings(p, ["main"], ["mol2cap"]) if s["arm"] == "icmt"]
    (main_copy,) = [s for s in pe.build_settings(p, ["main"], ["mol2cap"]) if s["arm"] == "copy"]
    rows = pe.build_settings(p, ["budget"], ["mol2cap"])
    (copy,) = [s for s in rows if s["arm"] == "copy"]
    trained = [s for s in rows if s["arm"] == "icmt"]
    assert pe.setting_hash(copy) == pe.setting_hash(main_copy)  # the main table's copy row, reused
    budgets = [s["train"]["token_budget"] for s in trained]
    assert budgets == [p["train"]["token_budget"] * m for m in pe.BUDGET_MULTIPLES] and len(set(budgets)) > 1
    assert pe.setting_hash(trained[0]) == pe.setting_hash(main)  # 1x is the main ICMT row, reused by its hash
    for s in trained[1:]:  # everything but the budget equals the main row
        other = {**s, "train": {**s["train"], "token_budget": main["train"]["token_budget"]}}
        assert pe.setting_hash(other) == pe.setting_hash(main)
    # the group's reference row (the first by name) is the smallest budget: differences read "more tokens - 1x"
    assert sorted(s["name"] for s in trained)[0] == trained[0]["name"]


def test_folders_flag_prints_the_folders_the_run_uses(pe, capsys):
    for size in pe.PRESETS:
        assert pe.main(["--size", size, "--folders"]) == 0
        out, work = capsys.readouterr().out.split()
        assert (ROOT / out, ROOT / work) == pe.folders(size)


_SMILES = [f"{'C' * n}{end}" for end in ("O", "N", "Cl", "S", "C(=O)O", "C(N)=O") for n in (3, 4, 5, 6)]  # 24 distinct


def _toy_selection_run(pe, tmp_path, monkeypatch, *, arm: str, select: str, **train) -> dict:
    """``train_setting`` of one cap2mol row on a 24-molecule toy pool with the tiny random model (no ../shared)."""
    work, _, row = _toy_trained_rows(pe, tmp_path, monkeypatch)
    s = row(f"toy-{arm}-{select}", arm=arm, **{"train.select": select, "train.token_budget": 2_000, "train.val_rows": 6,
                                               "train.patience": 10**9, **{f"train.{k}": v for k, v in train.items()}})
    return pe.train_setting(s, work, "cpu", lambda _line: None)


def _toy_trained_rows(pe, tmp_path, monkeypatch) -> tuple[Path, Path, Any]:
    """A 24-molecule cap2mol pool (each row's contexts: itself first, as ICMA's training lists, then its next two),
    one query, and a maker of trained rows (tiny random model, no ../shared): ``(work, out, row)``."""
    import json

    shared, work, out = tmp_path / "shared", tmp_path / "work", tmp_path / "out"
    monkeypatch.setattr(pe, "SHARED", shared)
    monkeypatch.setattr(pe, "DATASETS", {"toy": {"pool": "p.txt", "queries": "q.txt", "label": "toy"}})
    monkeypatch.setattr(pe, "_CACHE", {})
    pool = [(str(i + 1), smi, f"The molecule is toy compound number {i + 1} with smiles {smi}.") for i, smi in enumerate(_SMILES)]
    _chebi_file(shared / "p.txt", pool)
    _chebi_file(shared / "q.txt", [("99", "CCCCC", "The molecule is pentane.")])
    ids = [c for c, _, _ in pool]
    (work / "contexts").mkdir(parents=True)
    for split, queries in (("pool", ids), ("q1s0", ["99"])):
        (work / "contexts" / f"toy-cap2mol-bm25-{split}-k10.jsonl").write_text("".join(
            json.dumps({"query_id": c, "task": "cap2mol", "retriever": "bm25", "scores": [1.0] * 3,
                        "neighbors": [c, ids[(i + 1) % len(ids)], ids[(i + 2) % len(ids)]] if c in ids else ids[:3]}) + "\n"
            for i, c in enumerate(queries)), encoding="utf-8")

    def row(name: str, arm: str = "icmt", **over: Any) -> dict:
        over = {"train.token_budget": 1_000, "train.val_rows": 4, "train.eval_every": 2, "generate.max_new_tokens": 8, **over}
        return pe._setting(pe.PRESETS["quick"], group="select", dataset="toy", task="cap2mol", arm=arm, name=name,
                           model="tiny-random-llama", n_queries=1, precision="fp32", cutoff_len=256, **over)
    return work, out, row


def test_val_bleu_selection_keeps_the_checkpoint_whose_validation_answers_scored_best(pe, tmp_path, monkeypatch):
    """``train.select: val_bleu`` scores greedy answers to the validation rows at every evaluation and keeps the
    best-scoring checkpoint, not the lowest-loss one (scores scripted here: the real ones of a random model tie)."""
    scripted = iter([0.10, 0.30, 0.90, 0.20] + [0.05] * 100)
    monkeypatch.setattr(pe, "headline_value", lambda task, refs, preds: next(scripted))
    got = _toy_selection_run(pe, tmp_path, monkeypatch, arm="finetune", select="val_bleu")  # 0-shot: no copy score
    curve = got["curve"]
    assert len(curve) >= 5 and [p["val_bleu"] for p in curve[:4]] == [0.10, 0.30, 0.90, 0.20]
    assert (got["select"], got["best_val_bleu"], got["best_step"]) == ("val_bleu", 0.90, curve[2]["step"])
    assert got["best_val_loss"] == curve[2]["val_loss"] and got["copy_val_bleu"] is None
    assert min(p["val_loss"] for p in curve) < curve[2]["val_loss"]  # by loss another checkpoint would have been kept


def test_val_bleu_selection_scores_real_answers_and_leaves_the_training_run_unchanged(pe, tmp_path, monkeypatch):
    """Generating for the score must not change the run it scores (the generator reseeds torch's RNG, which the
    LoRA dropout draws from): the validation losses equal those of the same setting kept by loss; the score is
    MolT5's BLEU of the real greedy answers, and the copy's score on the same rows is recorded."""
    by_loss = _toy_selection_run(pe, tmp_path / "a", monkeypatch, arm="icmt", select="val_loss")
    by_bleu = _toy_selection_run(pe, tmp_path / "b", monkeypatch, arm="icmt", select="val_bleu")
    assert [p["val_loss"] for p in by_bleu["curve"]] == [p["val_loss"] for p in by_loss["curve"]]
    assert [p["train_loss"] for p in by_bleu["curve"]] == [p["train_loss"] for p in by_loss["curve"]]
    assert all(0.0 <= p["val_bleu"] <= 1.0 for p in by_bleu["curve"]) and "val_bleu" not in by_loss["curve"][0]
    assert 0.0 < by_bleu["copy_val_bleu"] <= 1.0  # copies of similar SMILES share characters
    assert "select" not in by_loss  # a row kept by loss reads as before the switch existed


def test_select_group_differs_from_the_budget_groups_longest_row_only_in_how_it_keeps_its_checkpoint(pe):
    p = pe.PRESETS["cpu-long"]
    budget = {s["name"].rsplit("-", 1)[-1]: s for s in pe.build_settings(p, ["budget"], ["cap2mol"])}
    rows = {s["name"].removeprefix("select-chebi20-cap2mol-"): s for s in pe.build_settings(p, ["select"], ["cap2mol"])}
    assert set(rows) == {"copy", f"{pe.BUDGET_MULTIPLES[-1]}x-val-loss", f"{pe.BUDGET_MULTIPLES[-1]}x-val-bleu"}
    longest = budget[f"{pe.BUDGET_MULTIPLES[-1]}x"]
    assert pe.setting_hash(rows["copy"]) == pe.setting_hash(budget["copy"])
    assert pe.setting_hash(rows[f"{pe.BUDGET_MULTIPLES[-1]}x-val-loss"]) == pe.setting_hash(longest)  # reused, not rerun
    bleu = rows[f"{pe.BUDGET_MULTIPLES[-1]}x-val-bleu"]
    assert bleu["train"]["select"] == "val_bleu"
    assert {**bleu, "train": {k: v for k, v in bleu["train"].items() if k not in ("select", "patience")}} == \
        {**longest, "train": {k: v for k, v in longest["train"].items() if k != "patience"}, "group": "select", "name": bleu["name"]}
    # in the paired differences the row kept by loss is the reference: "kept by BLEU - kept by loss"
    n = 10
    stats = {"bleu_counts": [[3, 4] * 4 + [4, 4]] * n, **{m: [0.5] * n for m in ("exact", "levenshtein", "validity",
                                                                               "maccs_fts", "rdk_fts", "morgan_fts")}}
    labels = [label for label, _ in pe._comparisons([{"name": s["name"], "setting": s, "ids": list(range(n)), "row_stats": stats}
                                                     for s in rows.values()])]
    loss_name, bleu_name = rows[f"{pe.BUDGET_MULTIPLES[-1]}x-val-loss"]["name"], bleu["name"]
    assert f"{bleu_name} − {loss_name}" in labels and f"{loss_name} − {bleu_name}" not in labels


def test_copy_gap_by_similarity_bins_queries_by_the_copied_items_retrieval_score(pe, tmp_path):
    """Model minus copy within quantile bins of the copy's top-1 retrieval score: the bins follow the scores (not
    the query order), a query without a retrieved item is left out, each bin's difference is its own queries', and
    each bin counts the queries whose output is the copied answer (read from the two rows' prediction TSVs)."""
    rng = np.random.default_rng(3)
    n = 41
    scores = list(rng.permutation(np.linspace(0.05, 0.95, n - 1))) + [None]
    base = rng.uniform(0.3, 0.5, size=n)
    shift = np.array([0.0 if x is None else (0.2 if x < 0.5 else -0.2) for x in scores])  # better where dissimilar

    def row(name, arm, fts, **extra):
        stats = {"bleu_counts": [[3, 4] * 4 + [4, 4]] * n, "exact": [0] * n, "levenshtein": [1] * n, "validity": [1] * n,
                 "maccs_fts": list(fts), "rdk_fts": list(fts), "morgan_fts": list(fts)}
        s = {"group": "main", "dataset": "chebi20", "task": "cap2mol", "arm": arm, "retriever": "bm25", "bootstrap": 200, "seed": 0}
        return name, {"name": name, "ids": [str(i) for i in range(n)], "setting": s, "row_stats": stats, **extra}

    res = dict([row("icmt", "icmt", base + shift), row("copy", "copy", base, top1_scores=scores)])
    copied = [f"C{i}" for i in range(n)]
    same = [x is not None and x >= 0.7 for x in scores]  # the model repeats its example where it is most similar
    for name, outputs in (("copy", copied), ("icmt", [c if s else f"O{i}" for i, (c, s) in enumerate(zip(copied, same))])):
        (tmp_path / "predictions").mkdir(exist_ok=True)
        (tmp_path / "predictions" / f"{name}.tsv").write_text(
            pe.TSV_HEADER["cap2mol"] + "\n" + "".join(f"q{i}\tC{i}\t{o}\n" for i, o in enumerate(outputs)))
    assert all(x["identical"] is None for x in pe.copy_gap_by_similarity(res, bins=4))  # no folder, no count
    got = pe.copy_gap_by_similarity(res, tmp_path, bins=4)
    assert [x["n"] for x in got] == [10, 10, 10, 10]  # the query without a score is in no bin
    assert all(a["hi"] < b["lo"] for a, b in zip(got, got[1:]))
    known = np.array([x is not None for x in scores])
    for x in got:
        inside = [i for i in range(n) if known[i] and x["lo"] <= scores[i] <= x["hi"]]
        assert len(inside) == x["n"]
        model, copy_ = x["metrics"]["morgan_fts"]
        assert model == pytest.approx(float(np.mean((base + shift)[inside]))) and copy_ == pytest.approx(float(np.mean(base[inside])))
        assert x["identical"] == sum(same[i] for i in inside)
    diffs = [x["diff"]["morgan_fts"] for x in got]
    assert diffs[0][1] > 0 and diffs[1][1] > 0 and diffs[2][2] < 0 and diffs[3][2] < 0  # low-score bins better, high worse
    assert pe.copy_gap_markdown(got).count("| **0.200 [") == 2  # the two dissimilar bins: bold, outside 0
    assert [x["identical"] for x in got][:2] == [0, 0] and "| 10 | 0 (0%) |" in pe.copy_gap_markdown(got)


def test_copy_rate_by_similarity_counts_each_model_rows_copied_outputs_per_bin_of_its_own_copys_scores(pe, tmp_path):
    """Per model row, the share of outputs equal to its copy's answer in each quartile of that copy's top-1 score: the
    copy is the one of the row's own retriever, a reused row is listed once (under the row it reuses), and a row
    whose copy has no scores, or that has no predictions, is left out; a copy of the row's own group comes first."""
    n = 8
    ids = [str(i) for i in range(n)]
    scores = [0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4]  # quartiles: {1, 3}, {5, 7}, {6, 4}, {2, 0}

    def row(name, arm, retriever, outputs, group="g", **extra):
        s = {"group": group, "dataset": "chebi20", "task": "cap2mol", "arm": arm, "retriever": retriever}
        if outputs is not None:
            (tmp_path / "predictions").mkdir(exist_ok=True)
            (tmp_path / "predictions" / f"{name}.tsv").write_text(
                pe.TSV_HEADER["cap2mol"] + "\n" + "".join(f"q{i}\tR{i}\t{o}\n" for i, o in enumerate(outputs)))
        return name, {"name": name, "ids": ids, "setting": s, **extra}

    copied = [f"C{i}" for i in range(n)]
    other = [f"X{i}" for i in range(n)]  # another retriever's copy: its answers are not this row's copies
    res = dict([
        row("a-copy-elsewhere", "copy", "bm25", other, group="h", top1_scores=scores),  # first loaded and by name, another group
        row("copy-bm25", "copy", "bm25", copied, top1_scores=scores),
        row("copy-random", "copy", "random", other, top1_scores=scores[::-1]),
        row("copy-noscores", "copy", "morgan", copied),
        row("icmt", "icmt", "bm25", [c if i in (0, 2, 4) else "M" for i, c in enumerate(copied)]),
        row("icmt-again", "icmt", "bm25", copied, reused_from="icmt"),
        row("icmt-random", "icmt", "random", [o if i % 2 else "M" for i, o in enumerate(other)]),
        row("icmt-morgan", "icmt", "morgan", copied),
        row("untrained", "untrained", "bm25", None),
    ])
    got = {x["row"]: x for x in pe.copy_rate_by_similarity(res, tmp_path, bins=4)}
    assert set(got) == {"icmt", "icmt-random"}
    assert got["icmt"]["copy_row"] == "copy-bm25" and got["icmt"]["bins"] == [0.0, 0.0, 0.5, 1.0] and got["icmt"]["all"] == 3 / 8
    # random's scores run the other way: its odd queries (copied) are its two most similar bins, bm25's two least
    assert got["icmt-random"]["copy_row"] == "copy-random" and got["icmt-random"]["bins"] == [0.0, 0.0, 1.0, 1.0]
    assert "| `icmt` | `copy-bm25` | 8 | 0% | 0% | 50% | 100% | 38% |" in pe.copy_rate_markdown(list(got.values()))
    # the "against their retrieval copy" table compares each row with the same copy (scores not needed there)
    assert {x["row"]: x["copy_row"] for x in pe.copy_relation(res, tmp_path)} == {
        "icmt": "copy-bm25", "icmt-random": "copy-random", "icmt-morgan": "copy-noscores"}


def test_deferred_scoring_refuses_rows_that_score_while_training(pe, tmp_path, monkeypatch, capsys):
    """A machine that defers scoring lacks the scorers a ``val_bleu`` row needs during training: refused at once,
    not after its training has started."""
    def must_not_run(*args, **kwargs):
        raise AssertionError("a row was produced")

    monkeypatch.setattr(pe, "produce_setting", must_not_run)
    with pytest.raises(SystemExit):
        pe.main(["--size", "cpu-long", "--groups", "select", "--tasks", "cap2mol", "--defer-scoring",
                 "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")])
    assert "select-chebi20-cap2mol-4x-val-bleu" in capsys.readouterr().err


def test_decoding_group_decodes_the_main_icmt_model_differently_and_trains_it_once(pe):
    """The decoding rows differ from the main ICMT row only in ``generate.decoding``: the greedy row *is* the main row
    (reused by its full hash), the sampled rows share its training hash (one model for all three), and anything that
    changes the training, or a decoding that picks the checkpoint (``val_bleu``), changes the training hash."""
    p = pe.PRESETS["cpu-long"]
    main = {s["arm"]: s for s in pe.build_settings(p, ["main"], ["cap2mol"])}
    rows = {s["name"].removeprefix("decoding-chebi20-cap2mol-"): s for s in pe.build_settings(p, ["decoding"], ["cap2mol"])}
    assert set(rows) == {"copy", "greedy", *pe.DECODING_ROWS}
    assert pe.setting_hash(rows["copy"]) == pe.setting_hash(main["copy"])
    assert pe.setting_hash(rows["greedy"]) == pe.setting_hash(main["icmt"])
    for tag, decoding in pe.DECODING_ROWS.items():
        s = rows[tag]
        assert s["generate"]["decoding"] == decoding and pe.setting_hash(s) != pe.setting_hash(main["icmt"])
        assert {**s, "generate": main["icmt"]["generate"], "group": "main", "name": main["icmt"]["name"]} == main["icmt"]
        assert pe.training_hash(s) == pe.training_hash(main["icmt"])
    assert pe.training_hash(main["copy"]) is None and pe.training_hash(main["untrained"]) is None
    longer = {**rows["icma"], "train": {**rows["icma"]["train"], "token_budget": 1}}
    assert pe.training_hash(longer) != pe.training_hash(rows["icma"])
    by_bleu = [{**s, "train": {**s["train"], "select": "val_bleu"}} for s in (rows["greedy"], rows["icma"])]
    assert pe.training_hash(by_bleu[0]) != pe.training_hash(by_bleu[1])  # its validation answers are decoded too


def test_a_row_that_only_decodes_differently_reuses_the_stored_model(pe, tmp_path, monkeypatch):
    """The second row is generated from the first row's adapter, not trained again; a model stored before training
    hashes were kept is found through its row's result; a row whose training differs is trained."""
    import json

    work, out, row = _toy_trained_rows(pe, tmp_path, monkeypatch)
    greedy = row("toy-greedy")
    first = pe.produce_setting(greedy, work, out, "cpu", lambda _line: None)
    stored = json.loads((work / "models" / "toy-greedy" / "train.json").read_text())
    assert stored["train_hash"] == pe.training_hash(greedy) and first["timings"]["train_s"] > 0

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(pe, "train_setting", no_training)
    sampled = row("toy-icma", **{"generate.decoding": "icma"})
    said: list[str] = []
    second = pe.produce_setting(sampled, work, out, "cpu", said.append)
    assert second["training"]["trained_for"] == "toy-greedy" and second["timings"]["train_s"] == 0.0
    assert second["training"]["curve"] == first["training"]["curve"] and "toy-greedy" in said[0]
    assert second["generation"]["decoding"]["do_sample"] is True and first["generation"]["decoding"]["do_sample"] is False
    assert not (work / "models" / "toy-icma").exists()

    # a train.json written before training hashes were kept: matched through the row's result (same full hash)
    (work / "models" / "toy-greedy" / "train.json").write_text(json.dumps({k: v for k, v in stored.items() if k != "train_hash"}))
    assert pe.find_trained(sampled, work, out)[1] == "toy-greedy"  # its pending (unscored) result vouches for it
    pe.pending_path(out, "toy-greedy").unlink()
    assert pe.find_trained(sampled, work, out) is None  # no result of toy-greedy: nothing to vouch for it
    (out / "settings").mkdir(parents=True)
    (out / "settings" / "toy-greedy.json").write_text(json.dumps({"hash": pe.setting_hash(greedy), "setting": greedy}))
    assert pe.find_trained(sampled, work, out)[1] == "toy-greedy"
    (out / "settings" / "toy-greedy.json").write_text(json.dumps({"hash": "0" * 16, "setting": greedy}))
    assert pe.find_trained(sampled, work, out) is None  # a result of another config under that name vouches for nothing

    other = row("toy-other-lr", **{"generate.decoding": "icma", "train.lr": 1e-3})
    with pytest.raises(AssertionError, match="trained again"):
        pe.produce_setting(other, work, out, "cpu", lambda _line: None)


def test_tuning_group_sets_lora_against_full_fine_tuning_of_the_same_row(pe):
    p = pe.PRESETS["cpu-long"]
    main = {s["arm"]: s for s in pe.build_settings(p, ["main"], ["mol2cap"])}
    rows = {s["name"].removeprefix("tuning-chebi20-mol2cap-"): s for s in pe.build_settings(p, ["tuning"], ["mol2cap"])}
    assert set(rows) == {"copy", "lora", "full", "full-top"}
    assert {**rows["full-top"], "strategy": "code", "name": rows["full"]["name"]} == rows["full"]
    assert pe.setting_hash(rows["copy"]) == pe.setting_hash(main["copy"]) and pe.setting_hash(rows["lora"]) == pe.setting_hash(main["icmt"])
    full = rows["full"]
    assert full["train"]["disable_lora"] is True and full["train"]["lr"] == pe.FULL_FINETUNE_LR < main["icmt"]["train"]["lr"]
    assert {**full, "train": {**full["train"], "disable_lora": False, "lr": main["icmt"]["train"]["lr"]},
            "group": "main", "name": main["icmt"]["name"]} == main["icmt"]
    # in the paired differences the LoRA row (the main one) is the reference: "full - lora", whatever the names
    n = 10
    stats = {"bleu_counts": [[3, 4] * 4 + [4, 4]] * n, **{m: [0.5] * n for m in ("meteor", "rouge1", "rouge2", "rougeL")}}
    labels = [label for label, _ in pe._comparisons([{"name": s["name"], "setting": s, "ids": list(range(n)), "row_stats": stats}
                                                     for s in rows.values()])]
    assert f"{full['name']} − {rows['lora']['name']}" in labels and f"{rows['lora']['name']} − {full['name']}" not in labels


@pytest.mark.parametrize("task", ["mol2cap", "cap2mol"])
def test_combined_group_is_the_main_row_with_each_tasks_helping_levers_and_the_main_row_as_reference(pe, task):
    p = pe.PRESETS["cpu-long"]
    main = {s["arm"]: s for s in pe.build_settings(p, ["main"], [task])}
    rows = {s["name"].removeprefix(f"combined-chebi20-{task}-"): s for s in pe.build_settings(p, ["combined"], [task])}
    assert set(rows) == {"copy", "main", *(tag for tag, _ in pe.COMBINED[task])}
    assert pe.setting_hash(rows["copy"]) == pe.setting_hash(main["copy"]) and pe.setting_hash(rows["main"]) == pe.setting_hash(main["icmt"])
    for tag, over in pe.COMBINED[task]:
        combined, undone = rows[tag], copy.deepcopy(rows[tag])
        for key in over:  # undo each lever: what is left is the main row
            if key.startswith("train."):
                undone["train"][key[6:]] = main["icmt"]["train"].get(key[6:])
            else:
                undone[key] = main["icmt"][key]
        undone["train"] = {k: v for k, v in undone["train"].items() if v is not None}
        assert {**undone, "group": "main", "name": main["icmt"]["name"]} == main["icmt"]
        assert combined["model"] == "gemma3-270m" and combined["strategy"] == "top"
    if task == "mol2cap":  # with and without full fine-tuning
        assert rows["gemma-full-top"]["train"]["disable_lora"] is True and rows["gemma-top"]["train"]["disable_lora"] is False
    else:
        assert pe.selection(rows["gemma-top-val-bleu"]) == "val_bleu"
    n = 10
    stats = {"bleu_counts": [[3, 4] * 4 + [4, 4]] * n, **{m: [0.5] * n for m in ("meteor", "rouge1", "rouge2", "rougeL",
                                                                                 "morgan_fts", "maccs_fts", "rdk_fts", "exact", "validity", "levenshtein")}}
    labels = [label for label, _ in pe._comparisons([{"name": s["name"], "setting": s, "ids": list(range(n)), "row_stats": stats}
                                                     for s in rows.values()])]
    for tag, _ in pe.COMBINED[task]:
        assert f"{rows[tag]['name']} − {rows['main']['name']}" in labels


def test_full_fine_tuning_row_trains_every_weight_and_generates_from_the_saved_model(pe, tmp_path, monkeypatch):
    """``train.disable_lora``: no adapter, a whole model saved and generated from (ICMA's ``--disable_lora``)."""
    from ray_icma.models import load_causal_lm

    work, out, row = _toy_trained_rows(pe, tmp_path, monkeypatch)
    full = row("toy-full", **{"train.disable_lora": True})
    got = pe.produce_setting(full, work, out, "cpu", lambda _line: None)
    stored = pe.find_trained(full, work, out)[0]
    assert stored["adapter_dir"] is None and (Path(stored["model_dir"]) / "config.json").is_file()
    trained, _ = load_causal_lm(stored["model_dir"], torch_dtype="float32")
    base, _ = load_causal_lm("tiny-random-llama", torch_dtype="float32")
    moved = [n for (n, a), b in zip(trained.named_parameters(), base.parameters()) if not bool((a == b).all())]
    assert any("embed" in n for n in moved) and any("mlp" in n for n in moved)  # not only adapters: every kind of weight
    assert got["training"]["steps"] > 0 and len(got["generation"]) > 0
