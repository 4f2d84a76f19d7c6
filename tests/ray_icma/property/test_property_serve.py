"""`POST /v1/property/{dataset}`: per-label probabilities, 422 for unknown sets and bad SMILES.

In-process: the app's FastAPI routes through a real Serve handle in Serve's local testing mode
(nothing is deployed on a cluster), with the tiny random Llama as the model.
"""
from __future__ import annotations

import pytest

pytest.importorskip("rdkit")
pytest.importorskip("fastapi")
pytest.importorskip("torch")


@pytest.fixture()
def client_and_predictor(clintox_root):
    from fastapi.testclient import TestClient
    from ray import serve

    from serve.property_app import PropertyPredictorDeployment, make_property_api

    config = {"datasets": ["clintox"], "split": "icma", "data_root": str(clintox_root), "model": "tiny-random-llama", "n_shot": 2}
    handle = serve.run(serve.deployment(PropertyPredictorDeployment, name="PropertyPredictor").bind(config),
                       name="property-test", _local_testing_mode=True)
    with TestClient(make_property_api(lambda: handle)) as client:
        yield client, handle


def test_probabilities_per_label(client_and_predictor):
    client, handle = client_and_predictor
    response = client.post("/clintox", json={"smiles": "CC(=O)Oc1ccccc1C(=O)O"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dataset"] == "clintox" and body["label_names"]["FDA_APPROVED"] == "approved by the FDA"
    (result,) = body["results"]
    assert set(result["probabilities"]) == {"FDA_APPROVED", "CT_TOX"}
    assert all(0.0 < p < 1.0 for p in result["probabilities"].values())
    assert len(result["neighbours"]) == 2 and all(n.startswith("train:") for n in result["neighbours"])
    direct = handle.predict.remote("clintox", ["CC(=O)Oc1ccccc1C(=O)O"]).result()[0]["probabilities"]
    assert result["probabilities"] == pytest.approx(direct)
    many = client.post("/CLINTOX", json={"smiles": ["CCO", "c1ccccc1"]})
    assert many.status_code == 200 and len(many.json()["results"]) == 2


def test_unknown_dataset_is_422(client_and_predictor):
    client, _ = client_and_predictor
    unknown = client.post("/muv", json={"smiles": "CCO"})
    assert unknown.status_code == 422 and "unknown dataset 'muv'" in unknown.json()["detail"]
    not_served = client.post("/tox21", json={"smiles": "CCO"})
    assert not_served.status_code == 422 and "not served" in not_served.json()["detail"]
    assert client.get("/").json() == {"datasets": ["clintox"]}


def test_bad_smiles_is_422_naming_it(client_and_predictor):
    client, _ = client_and_predictor
    bad = client.post("/clintox", json={"smiles": ["CCO", "C1CC(N"]})
    assert bad.status_code == 422
    assert "smiles[1] 'C1CC(N' is not a valid SMILES" in bad.json()["detail"]
    valence = client.post("/clintox", json={"smiles": "C(C)(C)(C)(C)C"})
    assert valence.status_code == 422 and "valence" in valence.json()["detail"].lower()
    assert client.post("/clintox", json={"smiles": []}).status_code == 422
