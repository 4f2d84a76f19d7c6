"""Ray Data batch generation on the real cluster: predictions file, order, invalid SMILES, bad rows."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("rdkit")

from ray_icma.data import load_records
from ray_icma.generate import generate_predictions, meta_path, read_icl_rows, smiles_is_valid
from ray_icma.prompts import build_icl_rows

pytestmark = pytest.mark.ray_cluster


@pytest.fixture(scope="module")
def records(chebi20_test_file, chebi20_pool_file):
    queries = load_records(chebi20_test_file).records[:5]
    pool = load_records(chebi20_pool_file).records
    return queries, pool


def _rows(task, records, n_shot=2):
    from ray_icma.jobs.contexts import build_contexts

    queries, pool = records
    contexts = build_contexts(queries, pool, task, k=4)
    return build_icl_rows(queries, pool, contexts, task, n_shot)


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_smiles_is_valid_uses_rdkit():
    assert smiles_is_valid("CCO") and smiles_is_valid("c1ccccc1")
    assert not smiles_is_valid("C1CC") and not smiles_is_valid("") and not smiles_is_valid("not a molecule")


def test_cap2mol_predictions_file_counts_invalid_smiles(ray_cluster, records, tmp_path):
    rows = _rows("cap2mol", records)
    # a row whose example is not an (input, output) pair: reported in 'error', not dropped
    rows.append({**rows[0], "id": "bad-row", "examples": [["only one item"]]})
    out = generate_predictions(rows, tmp_path / "cap2mol.jsonl", model="tiny-random-llama", batch_size=2, concurrency=1,
                               max_new_tokens=6, progress=False)
    got = _read(out)
    assert [r["id"] for r in got] == [r["id"] for r in rows]  # every row, in input order
    for row, src in zip(got, rows):
        assert {"id", "task", "input", "reference", "prediction", "n_examples", "valid"} <= set(row)
        assert row["task"] == "cap2mol" and row["input"] == src["input"] and row["reference"] == src["reference"]
        assert row["valid"] == smiles_is_valid(row["prediction"])
    bad = got[-1]
    assert bad["error"].startswith("prompt:") and bad["prediction"] == ""
    assert all(r["error"] == "" for r in got[:-1])
    assert all(r["n_examples"] <= 2 for r in got)
    meta = json.loads(meta_path(out).read_text())
    assert meta["rows"] == len(rows)
    assert meta["invalid_smiles"] == sum(not r["valid"] for r in got) > 0  # counted, not dropped
    assert meta["errors"] == 1

    from ray_icma.evaluate import evaluate_file

    result = evaluate_file(out)
    assert result["task"] == "cap2mol" and result["rows"] == len(rows)


def test_mol2cap_from_jsonl_rows_zero_shot(ray_cluster, records, tmp_path):
    queries, pool = records
    rows = build_icl_rows(queries, pool, None, "mol2cap", 0)
    rows_file = tmp_path / "rows.jsonl"
    rows_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_icl_rows(rows_file) == rows
    out = generate_predictions(rows_file, tmp_path / "mol2cap.jsonl", model="tiny-random-llama", batch_size=4,
                               concurrency=1, max_new_tokens=4, decoding={"num_beams": 2}, progress=False)
    got = _read(out)
    assert [r["id"] for r in got] == [q.cid for q in queries]
    assert all("valid" not in r and r["n_examples"] == 0 for r in got)
    meta = json.loads(meta_path(out).read_text())
    assert meta["decoding"] == "greedy" and meta["decoding_settings"]["mol2cap"]["num_beams"] == 2


def test_cli_icma_decoding_and_precision_reach_the_generator(ray_cluster, chebi20_test_file, tmp_path):
    """`--decoding icma --precision fp32`: the actors' sampled answers equal an in-process Generator
    run with ICMA's inference.py settings written out here (seed 42), and differ from greedy;
    `--precision bf16` makes the actors run bf16 (each precision is asked explicitly, so a setting
    that did not arrive would show as the other one, whatever `auto` picks on this machine)."""
    from typer.testing import CliRunner

    from ray_icma.allocator import find_allocator
    from ray_icma.cli.app import app
    from ray_icma.generate import Generator

    runner = CliRunner()
    base = ["generate", "--task", "cap2mol", "--queries", str(chebi20_test_file), "--model", "tiny-random-llama",
            "--n-shot", "0", "--max-new-tokens", "8", "--batch-size", "1", "--limit", "3"]
    icma_out = tmp_path / "icma.jsonl"
    result = runner.invoke(app, base + ["--out", str(icma_out), "--decoding", "icma", "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    got = _read(icma_out)
    meta = json.loads(meta_path(icma_out).read_text())
    assert meta["decoding"] == "icma" and meta["seed"] == 42 and meta["resolved_precision"] == ["fp32"]
    lib = find_allocator() or ""  # the CPU actors run on the allocator ray_icma.allocator picks here
    assert meta["allocator"] == [next((n for n in ("tcmalloc", "jemalloc") if n in lib), "system")]
    assert meta["decoding_settings"]["cap2mol"]["repetition_penalty"] == 0.8

    queries = load_records(chebi20_test_file).records[:3]
    prompts = [r["prompt"] for r in build_icl_rows(queries, [], None, "cap2mol", 0)]
    generator = Generator("tiny-random-llama", device="cpu", precision="fp32", seed=42)
    common = dict(max_new_tokens=8, batch_size=1, stop=("\n\n",))
    icma = generator.generate(prompts, do_sample=True, temperature=0.7, top_p=0.85, top_k=40, num_beams=1,
                              repetition_penalty=0.8, **common)
    greedy = generator.generate(prompts, **common)
    assert [r["raw"] for r in got] == icma  # ICMA's sampling, reproduced token for token
    assert icma != greedy

    bf16_out = tmp_path / "bf16.jsonl"
    result = runner.invoke(app, base + ["--out", str(bf16_out), "--precision", "bf16", "--limit", "1"])
    assert result.exit_code == 0, result.output
    meta = json.loads(meta_path(bf16_out).read_text())
    assert meta["resolved_precision"] == ["bf16"] and meta["decoding"] == "greedy" and meta["seed"] == 0


def test_rows_without_required_fields_are_rejected(records, tmp_path):
    with pytest.raises(ValueError, match="lacks reference"):
        generate_predictions([{"id": "1", "task": "mol2cap", "input": "CCO", "prompt": "x"}], tmp_path / "p.jsonl",
                             model="tiny-random-llama", progress=False)


def test_cli_generate_then_evaluate_reads_it(ray_cluster, chebi20_test_file, tmp_path):
    from typer.testing import CliRunner

    from ray_icma.cli.app import app

    out = tmp_path / "cli.jsonl"
    result = CliRunner().invoke(app, ["generate", "--task", "cap2mol", "--queries", str(chebi20_test_file), "--model", "tiny-random-llama",
                                      "--n-shot", "0", "--out", str(out), "--max-new-tokens", "4", "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert "invalid SMILES" in result.output and f"ray-icma evaluate {out}" in result.output
    assert len(_read(out)) == 2


def test_cli_generate_errors_are_one_line(chebi20_test_file, tmp_path):
    from typer.testing import CliRunner

    from ray_icma.cli.app import app

    runner = CliRunner()
    base = ["generate", "--queries", str(chebi20_test_file), "--out", str(tmp_path / "p.jsonl")]
    bad_task = runner.invoke(app, base + ["--task", "translate"])
    assert bad_task.exit_code == 2 and "is not one of" in bad_task.output  # a bad choice: usage error
    no_pool = runner.invoke(app, base + ["--task", "mol2cap", "--n-shot", "2"])
    assert no_pool.exit_code == 1 and "--pool and --contexts" in no_pool.output
    bad_adapter = runner.invoke(app, base + ["--task", "mol2cap", "--n-shot", "0", "--adapter", str(tmp_path)])
    assert bad_adapter.exit_code == 1 and "adapter_config.json" in bad_adapter.output
    bad_preset = runner.invoke(app, base + ["--task", "mol2cap", "--n-shot", "0", "--decoding", "beam"])
    assert bad_preset.exit_code == 2 and "is not one of" in bad_preset.output
    bad_window = runner.invoke(app, base + ["--task", "mol2cap", "--n-shot", "0", "--window", "wide"])
    assert bad_window.exit_code == 2 and "integer >= 1 or icma" in bad_window.output
    assert all("Traceback" not in r.output for r in (bad_task, no_pool, bad_adapter, bad_preset, bad_window))
