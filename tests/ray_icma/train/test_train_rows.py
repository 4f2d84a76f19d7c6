"""Driver-side data preparation: records + contexts -> seeded, shuffled in-context rows."""
from pathlib import Path

from ray_icma.data import load_records
from ray_icma.train import build_train_rows, load_train_config

CI_CONFIG = Path(__file__).resolve().parents[3] / "configs/train/tiny/ci_deepspeed_zero2.yaml"


def test_rows_with_contexts_sampled_and_seeded(chebi20_pool_file, tmp_path):
    from ray_icma.jobs.contexts import ContextTable

    records = load_records(chebi20_pool_file).records
    cids = [r.cid for r in records]
    table = ContextTable({c: (cids[:i] + cids[i + 1 : i + 11], [0.9] * len(cids[:i] + cids[i + 1 : i + 11])) for i, c in enumerate(cids)}, task="cap2mol", retriever="bm25")
    ctx = table.write(tmp_path / "ctx.jsonl")
    overrides = [f"data.train={chebi20_pool_file}", f"data.contexts={ctx}", "data.task=cap2mol", "data.n_shot=4", "data.max_rows=20"]
    rows = build_train_rows(load_train_config(CI_CONFIG, overrides))
    again = build_train_rows(load_train_config(CI_CONFIG, overrides))
    other_seed = build_train_rows(load_train_config(CI_CONFIG, overrides + ["seed=1"]))
    assert len(rows) == 20 and rows == again and rows != other_seed
    by_cid = {r.cid: r for r in records}
    for row in rows:
        assert row["task"] == "cap2mol" and len(row["examples"]) == 4
        assert row["input"] == by_cid[row["id"]].text and row["reference"] == by_cid[row["id"]].smiles
        assert by_cid[row["id"]].smiles not in [e[1] for e in row["examples"]]
        assert row["prompt"].startswith("Generate a molecule for the caption: ")


def test_zero_shot_rows_by_default(chebi20_pool_file):
    rows = build_train_rows(load_train_config(CI_CONFIG, [f"data.train={chebi20_pool_file}"]))
    assert len(rows) == 32 and all(r["examples"] == [] for r in rows)
    assert all(r["prompt"].startswith("Generate a caption for the molecule: ") for r in rows)
