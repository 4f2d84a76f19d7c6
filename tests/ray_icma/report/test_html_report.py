"""The HTML run report: sections, embedded plots, escaping, tolerance of missing parts."""
from __future__ import annotations

import base64
import re

import pytest

pytest.importorskip("matplotlib")

from ray_icma.report import SECTION_IDS, ReportData, loss_points, write_report


def _embedded_pngs(page: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_loss_points_accepts_every_history_shape():
    assert loss_points([3.0, 2.5]) == ([1.0, 2.0], [3.0, 2.5])
    assert loss_points([(10, 1.5), (20, 1.25)]) == ([10.0, 20.0], [1.5, 1.25])
    assert loss_points([{"step": 1, "loss": 2.0}, {"step": 2, "train_loss": 1.0}, {"step": 3, "loss": float("nan")}]) == ([1.0, 2.0], [2.0, 1.0])
    assert loss_points([{"step": 1}, "x"]) == ([], [])


def test_full_report_has_every_section_and_plot(tmp_path):
    history = [{"step": s, "loss": 3.0 / s} for s in range(1, 6)]
    metrics = {"ICMT 2-shot": {"bleu": 0.41, "exact": 0.1, "levenshtein": 30.5, "validity": 0.9},
               "retrieval top-1 copy": {"bleu": 0.35, "exact": 0.0, "levenshtein": 40.0, "validity": 1.0}}
    data = ReportData(
        title="unit <run>",
        run_dir=str(tmp_path),
        config={"model": {"name": "tiny"}},
        stages=[{"name": "data", "status": "ran", "seconds": 1.5, "detail": "6 queries"},
                {"name": "embed", "status": "skipped", "seconds": 0, "detail": "morgan retrieval"}],
        data=["queries.txt: 6 rows read, 6 loaded, 0 skipped"],
        retrieval={"cap2mol": {"retriever": "bm25", "k": 10, "queries": 6, "mean_top1_score": 12.5, "mean_topk_score": 8.0, "empty": 0,
                               "copy_baseline": metrics["retrieval top-1 copy"]}},
        training={"cap2mol": {"loss_history": history, "metrics": {"loss": 0.6}, "adapter_dir": "/x/adapter", "steps": 5}},
        metrics={"cap2mol": metrics},
        generation={"cap2mol": {"rows": 6, "invalid_smiles": 2, "tokens_per_second": 12.0}},
        samples={"cap2mol": [{"id": "1", "input": "<script>alert(1)</script>", "reference": "CCO", "prediction": "C&C"}]},
    )
    out = write_report(data, tmp_path / "report" / "index.html")
    page = out.read_text()
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in page
    assert page.index('id="summary"') < page.index('id="metrics"') < page.index('id="samples"')
    pngs = _embedded_pngs(page)
    assert len(pngs) == 2 and all(p.startswith(b"\x89PNG") for p in pngs)  # loss curve + cap2mol metrics
    assert (out.parent / "loss.png").is_file() and (out.parent / "metrics_cap2mol.png").is_file()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "C&amp;C" in page and "unit &lt;run&gt;" in page
    assert "30.5000" in page and "0.4100" in page  # metric table cells


def test_empty_report_still_renders(tmp_path):
    page = write_report(ReportData(title="empty"), tmp_path / "r.html").read_text()
    assert page.count("nothing recorded for this run") == len(SECTION_IDS) - 1  # the summary always has the run dir
    assert _embedded_pngs(page) == []
