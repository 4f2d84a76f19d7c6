"""Every manifest in cluster/ validates against the real Kubernetes, KubeRay and ECK schemas."""
from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.cluster import k8s_schemas

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"
OVERLAYS = ["base", "overlays/dev", "overlays/prod"]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> tuple[str, list[dict]]:
    try:
        docs = k8s_schemas.kustomize_build(CLUSTER / request.param)
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    return request.param, docs


def test_every_rendered_manifest_is_valid(rendered):
    name, docs = rendered
    kinds = sorted(d["kind"] for d in docs)
    assert {"RayCluster", "RayJob", "RayService", "Elasticsearch", "Namespace", "ConfigMap",
            "PersistentVolumeClaim"} <= set(kinds), kinds
    for doc in docs:
        try:
            k8s_schemas.validate(doc)
        except jsonschema.ValidationError as exc:
            pytest.fail(f"{name}: {doc['kind']}/{doc['metadata']['name']} invalid at "
                        f"{'/'.join(map(str, exc.absolute_path))}: {exc.message}")


def test_a_misspelled_field_fails():
    """The validator is strict: fields the schema does not declare are errors (CRD and core)."""
    docs = k8s_schemas.kustomize_build(CLUSTER / "base")
    ray = next(d for d in docs if d["kind"] == "RayCluster")
    ray["spec"]["headGroupSpec"]["rayStartParamz"] = {}
    with pytest.raises(jsonschema.ValidationError, match="rayStartParamz"):
        k8s_schemas.validate(ray)
    ray = next(d for d in docs if d["kind"] == "RayCluster")
    del ray["spec"]["headGroupSpec"]["rayStartParamz"]
    ray["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    with pytest.raises(jsonschema.ValidationError, match="imagePullPolice"):
        k8s_schemas.validate(ray)
    pvc = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    pvc["spec"]["accesModes"] = ["ReadWriteOnce"]
    with pytest.raises(Exception, match="accesModes"):
        k8s_schemas.validate(pvc)


def test_no_password_in_any_manifest():
    for overlay in OVERLAYS:
        for doc in k8s_schemas.kustomize_build(CLUSTER / overlay):
            text = yaml.safe_dump(doc)
            assert not re.search(r"(?i)password\s*[:=]\s*['\"]?\w", text.replace("RAY_ICMA_ES_PASSWORD", "")), doc["kind"]
            assert doc["kind"] != "Secret", "secrets come from ECK, not from manifests"


def test_prod_turns_on_elasticsearch_tls():
    dev = {d["kind"]: d for d in k8s_schemas.kustomize_build(CLUSTER / "overlays/dev")}
    prod = {d["kind"]: d for d in k8s_schemas.kustomize_build(CLUSTER / "overlays/prod")}
    assert dev["Elasticsearch"]["spec"]["http"]["tls"]["selfSignedCertificate"]["disabled"] is True
    assert "disabled" not in prod["Elasticsearch"]["spec"]["http"]["tls"]["selfSignedCertificate"]
    cm = prod["ConfigMap"]["data"]
    assert cm["RAY_ICMA_ES_URL"].startswith("https://") and cm["RAY_ICMA_ES_CA_CERTS"]
    gpu_groups = [g for g in prod["RayCluster"]["spec"]["workerGroupSpecs"] if g["groupName"] == "gpu"]
    assert gpu_groups and not [g for g in dev["RayCluster"]["spec"]["workerGroupSpecs"] if g["groupName"] == "gpu"]


def test_images_are_pinned_and_non_root():
    dockerfile = (CLUSTER / "image" / "Dockerfile").read_text()
    base = re.search(r"^ARG RAY_IMAGE=(\S+)", dockerfile, re.M).group(1)
    assert re.fullmatch(r"rayproject/ray:\d+\.\d+\.\d+-py311-cpu", base), base
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in {"root", "0"}
    for overlay in OVERLAYS:
        for doc in k8s_schemas.kustomize_build(CLUSTER / overlay):
            for image in re.findall(r"image: (\S+)", yaml.safe_dump(doc)):
                assert ":" in image and not image.endswith(":latest"), image


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_training_job_entrypoints_name_valid_configs(overlay):
    """A RayJob's `ray-icma train CONFIG key=value...` must validate, so a typo fails here, not on the GPUs.
    (Serve configs: tests/cluster/test_pipeline.py builds their deployment plan with Ray's own code.)"""
    from ray_icma.train import load_train_config

    from tests.cluster.pipeline import bash_statements, image_to_repo

    jobs = [d for d in k8s_schemas.kustomize_build(CLUSTER / overlay) if d["kind"] == "RayJob"]
    trains = [s for j in jobs for s in bash_statements(j["spec"]["entrypoint"]) if s[:2] == ["ray-icma", "train"]]
    assert len(trains) == 2
    for argv in trains:
        config, overrides = argv[2], argv[3:]
        assert config.startswith("/"), f"relative config path {config}: the job's working directory is not the image's"
        cfg = load_train_config(image_to_repo(config), overrides)
        assert str(cfg.run.storage_path).startswith("/mnt/icma/")
