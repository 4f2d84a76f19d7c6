"""Offline validation of Kubernetes manifests against the real schemas, strict about unknown fields.

Core kinds: the `kubernetes-validate` package (Kubernetes' own OpenAPI as JSON Schema, strict variant).
Custom resources: the CRDs shipped in the KubeRay, ECK and prometheus-operator Go modules (fetched by scripts/setup.sh
through the Go module proxy), with `additionalProperties: false` added wherever the CRD does not
preserve unknown fields, so a misspelled or missing-from-schema field fails as kubeconform -strict would.
"""
from __future__ import annotations

import copy
import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import jsonschema
import yaml

K8S_VERSION = "1.33"
CRD_MODULES = {
    "kuberay": ("github.com/ray-project/kuberay/ray-operator@v1.5.0", [
        "config/crd/bases/ray.io_rayclusters.yaml",
        "config/crd/bases/ray.io_rayjobs.yaml",
        "config/crd/bases/ray.io_rayservices.yaml",
    ]),
    "eck": ("github.com/elastic/cloud-on-k8s/v3@v3.5.0", ["config/crds/v1/all-crds.yaml"]),
    "prometheus-operator": ("github.com/prometheus-operator/prometheus-operator@v0.85.0", [
        "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",
        "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
    ]),
}


def go_env(name: str) -> str | None:
    go = shutil.which("go")
    if not go:
        return None
    return subprocess.run([go, "env", name], capture_output=True, text=True, check=True).stdout.strip()


def crd_files() -> list[Path]:
    """Paths of the CRD YAML files; raises FileNotFoundError naming the setup step when missing."""
    modcache = os.environ.get("GOMODCACHE") or go_env("GOMODCACHE")
    if not modcache:
        raise FileNotFoundError("Go is not installed: the CRD schemas come from Go modules (scripts/setup.sh)")
    files = []
    for module, paths in CRD_MODULES.values():
        for rel in paths:
            path = Path(modcache) / module / rel
            if not path.is_file():
                raise FileNotFoundError(f"{path} missing: run scripts/setup.sh (go mod download {module})")
            files.append(path)
    return files


def kustomize_bin() -> str:
    found = shutil.which("kustomize")
    if found:
        return found
    gopath = go_env("GOPATH")
    if gopath and (Path(gopath) / "bin" / "kustomize").is_file():
        return str(Path(gopath) / "bin" / "kustomize")
    raise FileNotFoundError("kustomize not found: run scripts/setup.sh (go install sigs.k8s.io/kustomize/kustomize/v5)")


def kustomize_build(path: Path) -> list[dict]:
    out = subprocess.run([kustomize_bin(), "build", str(path)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"kustomize build {path} failed:\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _strict(schema: dict) -> dict:
    """Copy of an OpenAPI v3 schema that rejects properties it does not declare."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (node.get("type") == "object" and "properties" in node
                    and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


@lru_cache(maxsize=1)
def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> strict JSON schema, from every served version of every CRD."""
    schemas = {}
    for path in crd_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
            for version in doc["spec"]["versions"]:
                schema = version["schema"]["openAPIV3Schema"]
                schema = _strict(schema)
                # metadata is validated by the API server's ObjectMeta, not the CRD: accept any object there.
                schema.setdefault("properties", {})["metadata"] = {"type": "object"}
                schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def validate(doc: dict) -> None:
    """Raise jsonschema.ValidationError (or LookupError for an unknown kind) if ``doc`` is invalid."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in crd_schemas():
        jsonschema.Draft7Validator(crd_schemas()[key]).validate(doc)
        return
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.utils.SchemaNotFoundError as exc:
        raise LookupError(exc.message) from exc
