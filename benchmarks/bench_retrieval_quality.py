"""Which retriever gives the most informative in-context examples? Score the top-1 retrieved
example as if it were the model's answer, with the MolT5 evaluator.

ChEBI-20, pool = validation (3,301), queries = test (3,300):

* mol2cap (query = molecule): the top-1 neighbour's caption vs the true caption, for random,
  Morgan, topological (ICMA/MolReGPT "morgan") and every GNN checkpoint in
  ``../shared/weights/pretrain-gnns``.
* cap2mol (query = caption): the top-1 neighbour's SMILES vs the true SMILES, for random,
  BM25 (bm25s, standard tokenizer) and BM25-icma (rank_bm25, ICMA's tokenizer).
* oracle rows (marked): retrieval with the *answer* (the true caption for mol2cap, the true
  molecule for cap2mol). No model may do that; the row shows how close the pool gets at best.

Writes ``benchmarks/results/retrieval_quality.md`` and ``retrieval_quality.png``.

Run:  .venv/bin/python benchmarks/bench_retrieval_quality.py [--shared ../shared] [--limit N]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import Timer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
MOL2CAP_COLUMNS = ("bleu2", "bleu4", "rouge1", "rouge2", "rougeL", "meteor")
CAP2MOL_COLUMNS = ("bleu", "exact", "levenshtein", "maccs_fts", "rdk_fts", "morgan_fts", "validity")


def top1(table, query_id, lookup, empty=""):
    ids, _ = table[query_id]
    return lookup[ids[0]] if ids else empty


def markdown(rows, columns, lower_better=("levenshtein",)):
    best = {}
    if not rows:
        return "(not run yet)"
    real = [r for r in rows if not r["oracle"]] or rows
    for c in columns:
        values = [r["metrics"][c] for r in real]
        best[c] = min(values) if c in lower_better else max(values)
    lines = ["| retriever | " + " | ".join(columns) + " | wall s | cpu s |", "|---" * (len(columns) + 3) + "|"]
    for r in rows:
        cells = []
        for c in columns:
            v = r["metrics"][c]
            text = f"{v:.3f}" if c != "levenshtein" else f"{v:.2f}"
            cells.append(f"**{text}**" if not r["oracle"] and v == best[c] else text)
        name = r["name"] + (" *(oracle)*" if r["oracle"] else "")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} |")
    return "\n".join(lines)


def plot(mol_rows, cap_rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(15, 6.5))
    for ax, rows, columns, title in (
        (axes[0], mol_rows, ("bleu2", "bleu4", "rouge1", "rouge2", "rougeL", "meteor"), "mol2cap: top-1 neighbour's caption"),
        (axes[1], cap_rows, ("bleu", "exact", "maccs_fts", "rdk_fts", "morgan_fts", "validity"), "cap2mol: top-1 neighbour's SMILES"),
    ):
        if not rows:
            ax.set_axis_off()
            continue
        width = 0.8 / len(rows)
        x = np.arange(len(columns))
        for i, r in enumerate(rows):
            values = [r["metrics"][c] for c in columns]
            ax.bar(x + i * width - 0.4 + width / 2, values, width, label=r["name"] + (" (oracle)" if r["oracle"] else ""),
                   hatch="//" if r["oracle"] else None, alpha=0.6 if r["oracle"] else 1.0)
        ax.set_xticks(x, columns)
        ax.set_ylim(0, 1)
        ax.set_title(title)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=2, frameon=False)
    fig.suptitle("ChEBI-20 retrieval quality (pool: validation, queries: test)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--limit", type=int, default=None, help="only the first N test queries (quick runs)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--tasks", default="mol2cap,cap2mol", help="comma-separated subset of mol2cap,cap2mol")
    parser.add_argument("--replot", action="store_true", help="only redraw the PNG from retrieval_quality.json")
    args = parser.parse_args()
    if args.replot:
        saved = json.loads((args.out / "retrieval_quality.json").read_text())
        plot(saved["mol2cap"], saved["cap2mol"], args.out / "retrieval_quality.png")
        return 0

    data = args.shared / "data" / "chebi20"
    if not (data / "test.txt").is_file():
        print(f"skip: {data}/test.txt not found (pass --shared)")
        return 0
    from ray_icma.data import load_records
    from ray_icma.evaluate import cap2mol_metrics, mol2cap_metrics
    from ray_icma.jobs.contexts import build_contexts

    tokenizer = args.shared / "tokenizers" / "scibert_scivocab_uncased"
    queries = load_records(data / "test.txt", validate_smiles=False).records[: args.limit]
    pool = load_records(data / "validation.txt").records
    captions = {r.cid: r.text for r in pool}
    smiles = {r.cid: r.smiles for r in pool}
    print(f"queries: {len(queries)} ChEBI-20 test, pool: {len(pool)} ChEBI-20 validation")

    weights = sorted((args.shared / "weights" / "pretrain-gnns").glob("*.pth"))
    mol_rows, cap_rows = [], []
    args.out.mkdir(parents=True, exist_ok=True)
    md, png = args.out / "retrieval_quality.md", args.out / "retrieval_quality.png"

    def save(done: bool) -> str:
        """Rewrite the report after every row, so a long run leaves partial results behind."""
        report = "\n".join([
            "# Retrieval quality on ChEBI-20 (top-1 retrieved example scored as the answer)",
            "",
            f"Pool: validation ({len(pool)}), queries: test ({len(queries)}). Produced by "
            "`benchmarks/bench_retrieval_quality.py`; best non-oracle value in bold. Oracle rows retrieve with "
            "the answer itself and only show how close the pool gets at best."
            + ("" if done else " **Partial: the run was still going.**"),
            "",
            "## mol2cap: caption of the most similar pool molecule vs the true caption",
            "",
            markdown(mol_rows, MOL2CAP_COLUMNS),
            "",
            "## cap2mol: SMILES of the pool item with the most similar caption vs the true SMILES",
            "",
            markdown(cap_rows, CAP2MOL_COLUMNS),
            "",
            "Levenshtein: lower is better. wall/cpu s: building the contexts (k=1) for all queries, wall clock and "
            "this process's CPU time (the machine is shared, so wall time varies with load).",
            "",
        ])
        md.write_text(report)
        (args.out / "retrieval_quality.json").write_text(json.dumps({"mol2cap": mol_rows, "cap2mol": cap_rows}, indent=2))
        return report

    def add(rows, task, name, retriever, lookup, references, metric_fn, oracle=False, query_task=None):
        with Timer() as t:
            table = build_contexts(queries, pool, query_task or task, retriever, k=1)
        metrics = metric_fn(references, [top1(table, q.cid, lookup) for q in queries])
        rows.append({"name": name, "metrics": metrics, "seconds": t.seconds, "cpu_seconds": t.cpu_seconds, "oracle": oracle})
        columns = MOL2CAP_COLUMNS if task == "mol2cap" else CAP2MOL_COLUMNS
        label = name + (" (oracle)" if oracle else "")
        print(f"{task} {label:42s} " + " ".join(f"{c}={metrics[c]:.3f}" for c in columns)
              + f"  (wall {t.seconds:.1f} s, cpu {t.cpu_seconds:.1f} s)", flush=True)
        save(done=False)

    true_captions, true_smiles = [q.text for q in queries], [q.smiles for q in queries]
    caption_metrics = lambda refs, preds: mol2cap_metrics(refs, preds, tokenizer=str(tokenizer))  # noqa: E731
    tasks = set(args.tasks.split(","))
    for retriever in (["random", "morgan", "topological"] + [f"gnn:{w}" for w in weights]) * ("mol2cap" in tasks):
        name = f"gnn {Path(retriever[4:]).stem}" if retriever.startswith("gnn:") else retriever
        add(mol_rows, "mol2cap", name, retriever, captions, true_captions, caption_metrics)
    # Oracle: retrieve with the true caption, i.e. "the pool's closest caption".
    if "mol2cap" in tasks:
        add(mol_rows, "mol2cap", "bm25 on the true caption", "bm25", captions, true_captions, caption_metrics, oracle=True, query_task="cap2mol")
    if "cap2mol" in tasks:
        for retriever in ("random", "bm25"):
            add(cap_rows, "cap2mol", retriever, retriever, smiles, true_smiles, cap2mol_metrics)
        add(cap_rows, "cap2mol", "morgan on the true molecule", "morgan", smiles, true_smiles, cap2mol_metrics, oracle=True, query_task="mol2cap")
        add(cap_rows, "cap2mol", "bm25-icma", "bm25-icma", smiles, true_smiles, cap2mol_metrics)  # slowest: rank_bm25

    report = save(done=True)
    plot(mol_rows, cap_rows, png)
    print(f"\nwrote {md} and {png}\n")
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
