"""The ICMA app over real HTTP on 127.0.0.1: every route, its answers checked against the libraries
run in this process, and every kind of bad input answered with a specific 4xx."""
from __future__ import annotations

import json

import pytest
import requests

pytestmark = [pytest.mark.ray_cluster]


@pytest.fixture(scope="module")
def queries(chebi20_test_file):
    from ray_icma.data import load_records

    return load_records(chebi20_test_file).records[:5]


def post(url: str, path: str, body, **kw) -> requests.Response:
    return requests.post(f"{url}{path}", json=body, timeout=120, **kw)


def assert_422(resp: requests.Response, *needles: str) -> None:
    assert resp.status_code == 422, resp.text
    text = json.dumps(resp.json())
    assert "Traceback" not in text
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text}"


def test_health_ready_and_openapi(icma_app):
    assert requests.get(f"{icma_app}/healthz", timeout=10).json() == {"status": "ok"}
    ready = requests.get(f"{icma_app}/readyz", timeout=30)
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["ready"] and body["retriever"]["pool_size"] == 300 and body["retriever"]["text_backend"] == "bm25s"
    assert set(body["generator"]["adapters"]) == {"mol2cap", "cap2mol"}
    spec = requests.get(f"{icma_app}/openapi.json", timeout=10).json()
    for path in ("/v1/mol2cap", "/v1/cap2mol", "/v1/retrieve", "/v1/mol2cap/batch", "/v1/cap2mol/batch",
                 "/v1/retrieve/batch", "/healthz", "/readyz"):
        assert path in spec["paths"], path
    req = spec["components"]["schemas"]["Mol2CapRequest"]
    assert req["required"] == ["smiles"] and all("description" in p for p in req["properties"].values())
    assert "503" in spec["paths"]["/v1/cap2mol"]["post"]["responses"]
    assert spec["components"]["schemas"]["Mol2CapBatchRequest"]["properties"]["items"]["maxItems"] == 32


def test_retrieve_matches_the_libraries(icma_app, pool_records, queries):
    """Candidates are exactly the library's top-k; examples are exactly select_examples' choice."""
    from retrieval.bm25 import build_bm25_index
    from retrieval.indexes import FingerprintIndex
    from retrieval.rerank import select_examples

    fp = FingerprintIndex(kind="morgan").build([r.smiles for r in pool_records], [r.cid for r in pool_records])
    bm = build_bm25_index("bm25s")
    bm.index([r.text for r in pool_records], [r.cid for r in pool_records])
    for task, query, index in (("mol2cap", queries[0].smiles, fp), ("cap2mol", queries[0].text, bm)):
        resp = post(icma_app, "/v1/retrieve", {"task": task, "query": query, "k": 10, "n_shot": 3,
                                                "strategy": "probabilistic", "seed": 7})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        hits = index.search([query], 10).row(0)
        assert [c["cid"] for c in body["candidates"]] == [pool_records[p].cid for p, _ in hits]
        assert [c["score"] for c in body["candidates"]] == pytest.approx([s for _, s in hits], rel=1e-5)
        chosen = select_examples(list(range(10)), 3, strategy="probabilistic", seed=7, reverse=True)
        assert [e["cid"] for e in body["examples"]] == [body["candidates"][i]["cid"] for i in chosen]
        assert body["seed"] == 7 and body["strategy"] == "probabilistic" and body["timings_ms"] is None
        first = body["candidates"][0]
        rec = next(r for r in pool_records if r.cid == first["cid"])
        assert (first["input"], first["output"]) == ((rec.smiles, rec.text) if task == "mol2cap" else (rec.text, rec.smiles))


def test_seed_defaults_to_request_id_and_is_reproducible(icma_app, queries):
    body = {"task": "cap2mol", "query": queries[1].text, "strategy": "probabilistic", "n_shot": 4}
    a = post(icma_app, "/v1/retrieve", body, headers={"X-Request-ID": "same-id"})
    b = post(icma_app, "/v1/retrieve", body, headers={"X-Request-ID": "same-id"})
    c = post(icma_app, "/v1/retrieve", {**body, "seed": a.json()["seed"]})
    assert a.headers["X-Request-ID"] == "same-id" and a.json()["request_id"] == "same-id"
    assert a.json()["seed"] == b.json()["seed"] and a.json()["examples"] == b.json()["examples"]
    assert c.json()["examples"] == a.json()["examples"]
    other = post(icma_app, "/v1/retrieve", body, headers={"X-Request-ID": "another-id"})
    assert other.json()["seed"] != a.json()["seed"]
    fresh = post(icma_app, "/v1/retrieve", body)
    assert fresh.headers.get("X-Request-ID") and fresh.json()["request_id"] == fresh.headers["X-Request-ID"]


def test_mol2cap_generates_with_the_task_adapter(icma_app, queries):
    resp = post(icma_app, "/v1/mol2cap?debug=true", {"smiles": queries[0].smiles})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert isinstance(body["caption"], str)
    assert body["adapter"] == "mol2cap" and body["n_shot"] == 2 and len(body["examples"]) == 2
    assert set(body["timings_ms"]) == {"retrieve", "rerank", "generate", "total"}
    assert body["timings_ms"]["total"] >= body["timings_ms"]["generate"] > 0
    # sequence reversal: the most similar example stands last
    assert body["examples"][-1]["score"] >= body["examples"][0]["score"]
    base = post(icma_app, "/v1/mol2cap", {"smiles": queries[0].smiles, "adapter": "base", "seed": body["seed"]})
    other = post(icma_app, "/v1/mol2cap", {"smiles": queries[0].smiles, "adapter": "cap2mol", "seed": body["seed"]})
    assert base.status_code == other.status_code == 200
    assert base.json()["adapter"] is None and other.json()["adapter"] == "cap2mol"
    assert base.json()["timings_ms"] is None


def test_cap2mol_reports_validity_with_rdkit(icma_app, queries):
    from rdkit import Chem

    resp = post(icma_app, "/v1/cap2mol", {"caption": queries[2].text, "max_new_tokens": 12})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["adapter"] == "cap2mol" and len(body["examples"]) == 4
    mol = Chem.MolFromSmiles(body["smiles"]) if body["smiles"] else None
    assert body["valid"] == (mol is not None)
    assert body["canonical_smiles"] == (Chem.MolToSmiles(mol) if mol is not None else None)


def test_batch_routes_and_their_limit(icma_app, queries):
    items = [{"smiles": q.smiles, "max_new_tokens": 4} for q in queries[:3]]
    resp = post(icma_app, "/v1/mol2cap/batch", {"items": items})
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["items"]) == 3
    resp = post(icma_app, "/v1/cap2mol/batch", {"items": [{"caption": q.text, "max_new_tokens": 4} for q in queries[:2]]})
    assert resp.status_code == 200 and len(resp.json()["items"]) == 2
    resp = post(icma_app, "/v1/retrieve/batch", {"items": [{"task": "mol2cap", "query": q.smiles} for q in queries]})
    assert resp.status_code == 200 and [len(i["examples"]) for i in resp.json()["items"]] == [2] * 5
    assert_422(post(icma_app, "/v1/retrieve/batch", {"items": [{"task": "mol2cap", "query": "C"}] * 33}), "32")
    assert_422(post(icma_app, "/v1/mol2cap/batch", {"items": []}), "items")
    bad_item = [{"smiles": "CCO"}, {"smiles": "C1CC"}]
    assert_422(post(icma_app, "/v1/mol2cap/batch", {"items": bad_item}), "RDKit", '"items", 1')


@pytest.mark.parametrize(
    "path, body, needles",
    [
        ("/v1/mol2cap", {"smiles": "C1CC(=O"}, ("RDKit", "C1CC(=O")),
        ("/v1/mol2cap", {"smiles": "CCO CCN"}, ("whitespace",)),
        ("/v1/mol2cap", {"smiles": ""}, ("smiles",)),
        ("/v1/cap2mol", {"caption": "   "}, ("caption is empty",)),
        ("/v1/cap2mol", {"caption": "x" * 4001}, ("4000",)),
        ("/v1/retrieve", {"task": "property", "query": "CCO"}, ("mol2cap", "cap2mol")),
        ("/v1/retrieve", {"task": "mol2cap", "query": "notasmiles"}, ("RDKit", "notasmiles")),
        ("/v1/mol2cap", {"smiles": "CCO", "n_shot": 11}, ("n_shot",)),
        ("/v1/mol2cap", {"smiles": "CCO", "strategy": "best"}, ("strategy",)),
        ("/v1/mol2cap", {"smiles": "CCO", "max_new_tokens": 100000}, ("max_new_tokens",)),
        ("/v1/mol2cap", {"smiles": "CCO", "adapter": "nope"}, ("unknown adapter", "mol2cap", "cap2mol")),
        ("/v1/mol2cap", {"smiles": "CCO", "temperature": 2}, ("temperature",)),
        ("/v1/mol2cap", {"caption": "CCO"}, ("smiles", "missing")),
        ("/v1/mol2cap", ["CCO"], ("dict",)),
    ],
)
def test_bad_input_is_a_specific_422(icma_app, path, body, needles):
    assert_422(post(icma_app, path, body), *needles)


def test_wrong_json_and_wrong_method(icma_app):
    resp = requests.post(f"{icma_app}/v1/cap2mol", data=b'{"caption": ', headers={"content-type": "application/json"},
                         timeout=30)
    assert_422(resp, "JSON decode error")
    assert requests.get(f"{icma_app}/v1/cap2mol", timeout=30).status_code == 405
    assert requests.post(f"{icma_app}/v1/nothing", json={}, timeout=30).status_code == 404
