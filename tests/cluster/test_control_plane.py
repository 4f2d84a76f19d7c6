"""Both overlays on a real control plane: kube-apiserver v1.34 (admission, CRD schemas with defaulting,
server-side apply, RBAC) on kine, with the KubeRay v1.5.0 operator reconciling.

scripts/test.sh starts it (scripts/start_k8s.sh) and exports RAY_ICMA_KUBECONFIG; the CRDs (KubeRay,
ECK, prometheus-operator) are installed by scripts/k8s_crds.sh. There is no kubelet, scheduler or
controller-manager: Pods stay Pending, which is all this test needs -- it checks what the operator
*makes* of each custom resource. Each run applies into namespaces of its own (the overlay's namespace
plus a suffix), so reruns on a live control plane never see an earlier run's objects.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.cluster import k8s_schemas
from tests.conftest import _missing_service

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
OVERLAYS = ["overlays/dev", "overlays/prod"]
DEFAULT_KUBECONFIG = Path(os.environ.get("RAY_ICMA_HOME", Path.home() / ".cache" / "ray-icma")) / "k8s" / "run-6444" / "kubeconfig"
RAY_KINDS = ("RayCluster", "RayJob", "RayService")
RECONCILE_TIMEOUT_S = 180

pytestmark = pytest.mark.slow  # needs the control plane scripts/test.sh starts


def _kubectl_bin() -> str:
    venv = Path(sys.executable).parent / "kubectl"
    return str(venv) if venv.exists() else (shutil.which("kubectl") or "kubectl")


class Kube:
    def __init__(self, kubeconfig: str):
        self.kubeconfig = kubeconfig
        self.bin = _kubectl_bin()

    def run(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        done = subprocess.run([self.bin, "--kubeconfig", self.kubeconfig, *args], input=stdin, capture_output=True,
                              text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({done.returncode}):\n{done.stderr}\n{done.stdout[-2000:]}")
        return done

    def get(self, what: str, namespace: str) -> list[dict]:
        return json.loads(self.run("get", what, "-n", namespace, "-o", "json").stdout)["items"]


@pytest.fixture(scope="module")
def kube() -> Kube:
    path = os.environ.get("RAY_ICMA_KUBECONFIG") or (str(DEFAULT_KUBECONFIG) if DEFAULT_KUBECONFIG.is_file() else None)
    if not path:
        _missing_service("no Kubernetes control plane: RAY_ICMA_KUBECONFIG is not set (scripts/start_k8s.sh)")
    k = Kube(path)
    ready = k.run("get", "--raw", "/readyz", check=False, timeout=30)
    if ready.returncode != 0:
        _missing_service(f"the control plane in {path} is not ready: {ready.stderr.strip()[-300:]}")
    crds = k.run("get", "crd", "-o", "name").stdout
    for crd in ("rayclusters.ray.io", "rayjobs.ray.io", "rayservices.ray.io", "elasticsearches.elasticsearch.k8s.elastic.co",
                "podmonitors.monitoring.coreos.com", "servicemonitors.monitoring.coreos.com"):
        assert f"customresourcedefinition.apiextensions.k8s.io/{crd}" in crds, f"CRD {crd} not installed (scripts/k8s_crds.sh)"
    return k


def _render(overlay: str, suffix: str) -> tuple[str, list[dict]]:
    docs = k8s_schemas.kustomize_build(CLUSTER / overlay)
    ns = next(d for d in docs if d["kind"] == "Namespace")["metadata"]["name"]
    new = f"{ns}-{suffix}"
    for d in docs:
        if d["kind"] == "Namespace":
            d["metadata"]["name"] = new
        elif d["metadata"].get("namespace") == ns:
            d["metadata"]["namespace"] = new
        for subject in d.get("subjects", []):  # RoleBindings name their ServiceAccounts' namespace
            if subject.get("namespace") == ns:
                subject["namespace"] = new
    return new, docs


def _apply(kube: Kube, docs: list[dict]) -> subprocess.CompletedProcess:
    return kube.run("apply", "--server-side", "--field-manager=ray-icma-gitops", "-f", "-",
                    stdin=yaml.safe_dump_all(docs), check=False)


class Applied:
    def __init__(self, overlay, namespace, docs, first, second, generations_before, generations_after, objects):
        self.overlay, self.namespace, self.docs = overlay, namespace, docs
        self.first, self.second = first, second
        self.generations_before, self.generations_after = generations_before, generations_after
        self.objects = objects  # kind -> list of live objects after reconciliation


def _generations(kube: Kube, ns: str) -> dict[str, int]:
    out = {}
    for kind in ("rayclusters", "rayjobs", "rayservices", "elasticsearches", "networkpolicies", "poddisruptionbudgets",
                 "podmonitors", "servicemonitors"):
        for item in kube.get(kind, ns):
            out[f"{item['kind']}/{item['metadata']['name']}"] = item["metadata"].get("generation")
    return out


def _expected_clusters(docs: list[dict]) -> dict[str, tuple[str, dict]]:
    """Owner (kind/name) -> (kind, cluster spec) for every Ray cluster the operator must create."""
    out = {}
    for d in docs:
        name = f"{d['kind']}/{d['metadata']['name']}"
        if d["kind"] == "RayCluster":
            out[name] = d["spec"]
        elif d["kind"] == "RayJob" and "rayClusterSpec" in d["spec"]:
            out[name] = d["spec"]["rayClusterSpec"]
        elif d["kind"] == "RayService":
            out[name] = d["spec"]["rayClusterConfig"]
    return out


def _owner_of(cluster: dict) -> str:
    for ref in cluster["metadata"].get("ownerReferences", []):
        return f"{ref['kind']}/{ref['name']}"
    return f"RayCluster/{cluster['metadata']['name']}"


@pytest.fixture(scope="module", params=OVERLAYS)
def applied(request, kube) -> Applied:
    overlay = request.param
    ns, docs = _render(overlay, uuid.uuid4().hex[:6])
    try:
        # What a cluster admin and the controller-manager provide: the namespace's default ServiceAccount
        # (no controller-manager here) and the Secrets cluster/README.md tells you to create.
        kube.run("create", "namespace", ns)
        kube.run("create", "serviceaccount", "default", "-n", ns)
        kube.run("create", "secret", "generic", "icma-ray-token", "-n", ns, f"--from-literal=auth_token={uuid.uuid4().hex}")
        first = _apply(kube, docs)
        expected = _expected_clusters(docs)
        deadline = time.monotonic() + RECONCILE_TIMEOUT_S
        while True:  # until every expected cluster has its head and minimum workers as Pods
            clusters = kube.get("rayclusters", ns)
            pods = kube.get("pods", ns)
            owners = {_owner_of(c): c for c in clusters}
            complete = first.returncode == 0 and set(owners) >= set(expected) and all(
                sum(1 for p in pods if p["metadata"]["labels"].get("ray.io/cluster") == c["metadata"]["name"])
                >= 1 + sum(g.get("replicas", 0) for g in c["spec"].get("workerGroupSpecs", []))
                for c in owners.values()
            )
            if complete or time.monotonic() > deadline:
                break
            time.sleep(2)
        before = _generations(kube, ns)
        second = _apply(kube, docs)
        time.sleep(2)
        after = _generations(kube, ns)
        objects = {kind: kube.get(kind, ns) for kind in ("rayclusters", "rayjobs", "rayservices", "pods", "services",
                                                         "events", "serviceaccounts", "roles", "rolebindings",
                                                         "networkpolicies", "poddisruptionbudgets", "podmonitors",
                                                         "servicemonitors", "elasticsearches", "configmaps")}
        yield Applied(overlay, ns, docs, first, second, before, after, objects)
    finally:
        for kind in ("rayservices", "rayjobs", "rayclusters", "pods"):
            kube.run("delete", kind, "--all", "-n", ns, "--wait=false", check=False)


def test_first_apply_is_accepted(applied):
    assert applied.first.returncode == 0, f"{applied.overlay}: server-side apply rejected:\n{applied.first.stderr}"
    applied_names = set(re.findall(r"^(\S+) serverside-applied$", applied.first.stdout, re.M))
    assert len(applied_names) == len(applied.docs), applied.first.stdout


def test_no_custom_resource_failed_validation(applied):
    for kind in ("rayclusters", "rayjobs", "rayservices"):
        for item in applied.objects[kind]:
            status = json.dumps(item.get("status", {}))
            assert "ValidationFailed" not in status, f"{item['kind']}/{item['metadata']['name']}: {status}"
            assert item.get("status", {}).get("jobDeploymentStatus") != "Failed", status


def test_no_warning_event_says_invalid(applied):
    warnings = [e for e in applied.objects["events"] if e.get("type") == "Warning"]
    invalid = [f"{e['involvedObject']['kind']}/{e['involvedObject']['name']} {e['reason']}: {e['message']}"
               for e in warnings if re.search(r"invalid|validat", f"{e['reason']} {e['message']}", re.I)]
    assert not invalid, invalid


def test_operator_made_every_cluster_with_the_pods_meant(applied):
    """Each Ray cluster (the RayCluster, each RayJob's own, the RayService's) exists, with one head and
    `replicas` workers per group, and every Pod carries exactly what its group template asked for."""
    expected = _expected_clusters(applied.docs)
    clusters = {_owner_of(c): c for c in applied.objects["rayclusters"]}
    missing = set(expected) - set(clusters)
    # RayJobs on the long-lived cluster (clusterSelector) make no cluster of their own
    assert not missing, f"the operator made no Ray cluster for {sorted(missing)}"
    pods = applied.objects["pods"]
    for owner, spec in expected.items():
        cluster = clusters[owner]["metadata"]["name"]
        mine = [p for p in pods if p["metadata"]["labels"].get("ray.io/cluster") == cluster]
        groups = {"headgroup": spec["headGroupSpec"], **{g["groupName"]: g for g in spec.get("workerGroupSpecs", [])}}
        for group_name, group in groups.items():
            gpods = [p for p in mine if p["metadata"]["labels"].get("ray.io/group") == group_name]
            want = 1 if group_name == "headgroup" else group.get("replicas", 0)
            assert len(gpods) == want, f"{owner} group {group_name}: {len(gpods)} pods, want {want}"
            for pod in gpods:
                _check_pod_matches_template(owner, group_name, pod, group["template"])


def _check_pod_matches_template(owner: str, group: str, pod: dict, template: dict) -> None:
    where = f"{owner} {group} pod {pod['metadata']['name']}"
    spec, tspec = pod["spec"], template["spec"]
    assert spec.get("serviceAccountName") == tspec.get("serviceAccountName") == "icma-ray", where
    for key, value in template.get("metadata", {}).get("labels", {}).items():
        assert pod["metadata"]["labels"].get(key) == value, f"{where}: label {key}"
    assert {v["name"] for v in tspec.get("volumes", [])} <= {v["name"] for v in spec.get("volumes", [])}, where
    containers = {c["name"]: c for c in spec["containers"]}
    for tc in tspec["containers"]:
        c = containers.get(tc["name"])
        assert c is not None, f"{where}: no container {tc['name']}"
        assert c["image"] == tc["image"], f"{where}: image {c['image']} != {tc['image']}"
        for part in ("requests", "limits"):
            want = {k: str(v) for k, v in tc["resources"].get(part, {}).items()}
            got = {k: str(v) for k, v in c["resources"].get(part, {}).items() if k in want}
            assert got == want, f"{where}: resources.{part} {got} != {want}"
        env = {e["name"]: e for e in c.get("env", [])}
        for te in tc.get("env", []):
            assert env.get(te["name"]) == te, f"{where}: env {te['name']} {env.get(te['name'])} != {te}"
        assert tc.get("envFrom", []) and all(ef in c.get("envFrom", []) for ef in tc["envFrom"]), f"{where}: envFrom"
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        for m in tc.get("volumeMounts", []):
            assert mounts.get(m["mountPath"]) == m["name"], f"{where}: mount {m['mountPath']}"


def test_every_ray_pod_is_what_the_platform_expects(applied):
    """The intent behind the templates, checked on the Pods the operator made: Ray token auth from a
    Secret, icma-config (RAY_AUTH_MODE=token, HF_HOME on the shared volume) on heads and workers alike,
    the shared volume and the ES CA everywhere, a metrics port, one image per device kind."""
    prod = applied.overlay.endswith("prod")
    config = next(c for c in applied.objects["configmaps"] if c["metadata"]["name"] == "icma-config")["data"]
    assert config["RAY_AUTH_MODE"] == "token" and config["HF_HOME"].startswith("/mnt/icma/")
    ray_pods = [p for p in applied.objects["pods"] if p["metadata"]["labels"].get("ray.io/is-ray-node") == "yes"]
    assert ray_pods
    heads = [p for p in ray_pods if p["metadata"]["labels"].get("ray.io/node-type") == "head"]
    assert heads and len(heads) < len(ray_pods)
    for pod in ray_pods:
        where = pod["metadata"]["name"]
        c = next(c for c in pod["spec"]["containers"] if c["name"].startswith("ray-"))
        env = {e["name"]: e for e in c.get("env", [])}
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "icma-ray-token", "key": "auth_token"}, where
        assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "icma-hf-token", where
        assert env["RAY_ICMA_ES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "icma-es-es-elastic-user", where
        assert {"configMapRef": {"name": "icma-config"}} in c.get("envFrom", []), where
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert {"/mnt/icma", "/etc/icma-es"} <= mounts, where
        assert any(p.get("name") == "metrics" and p["containerPort"] == 8080 for p in c.get("ports", [])), where
        gpu = "nvidia.com/gpu" in c["resources"].get("limits", {})
        assert not (gpu and not prod), f"{where}: dev asks for a GPU"
        assert c["image"].endswith("-cuda" if gpu else "-cpu"), f"{where}: {c['image']} for gpu={gpu}"
        if prod:
            assert c["image"].startswith("ghcr.io/example-org/ray-icma:"), c["image"]
    serve = [p for p in ray_pods if p["metadata"]["labels"].get("ray-icma.io/serve") == "true"]
    assert serve, "no RayService pods labelled for the Serve NetworkPolicy"


def test_head_services_expose_dashboard_and_metrics(applied):
    services = applied.objects["services"]
    for cluster in applied.objects["rayclusters"]:
        name = cluster["metadata"]["name"]
        heads = [s for s in services if s["metadata"].get("labels", {}).get("ray.io/cluster") == name
                 and s["metadata"]["labels"].get("ray.io/node-type") == "head"]
        assert heads, f"no head Service for {name}: {[s['metadata']['name'] for s in services]}"
        ports = {p["name"] for p in heads[0]["spec"]["ports"]}
        assert {"dashboard", "metrics"} <= ports, (name, ports)


def test_platform_objects_are_in_place(applied):
    o = applied.objects
    assert {"icma-ray", "icma-submitter"} <= {s["metadata"]["name"] for s in o["serviceaccounts"]}
    role = next(r for r in o["roles"] if r["metadata"]["name"] == "icma-ray-autoscaler")
    assert any("rayclusters" in rule["resources"] and "patch" in rule["verbs"] for rule in role["rules"])
    binding = next(b for b in o["rolebindings"] if b["metadata"]["name"] == "icma-ray-autoscaler")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "icma-ray", "namespace": applied.namespace}]
    policies = {p["metadata"]["name"]: p["spec"] for p in o["networkpolicies"]}
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    public = policies["icma-serve-public"]["ingress"]
    assert public == [{"ports": [{"port": 8000, "protocol": "TCP"}]}], public
    es_from = policies["icma-es"]["ingress"][0]["from"]
    assert {"podSelector": {"matchLabels": {"ray.io/is-ray-node": "yes"}}} in es_from
    pdb = next(p for p in o["poddisruptionbudgets"] if p["metadata"]["name"] == "icma-ray-head")
    assert pdb["spec"]["maxUnavailable"] == 0
    assert o["elasticsearches"][0]["spec"]["podDisruptionBudget"]["spec"]["selector"]
    assert o["podmonitors"] and o["servicemonitors"]
    # the pods these select exist and carry the selected labels and ports
    ray_pods = [p for p in o["pods"] if p["metadata"]["labels"].get("ray.io/is-ray-node") == "yes"]
    pm = o["podmonitors"][0]["spec"]
    selected = [p for p in ray_pods if all(p["metadata"]["labels"].get(k) == v for k, v in pm["selector"]["matchLabels"].items())]
    assert selected, "the PodMonitor selects no Ray worker pod"


def test_second_apply_is_clean(applied):
    assert applied.second.returncode == 0, applied.second.stderr
    changed = {k: (v, applied.generations_after.get(k)) for k, v in applied.generations_before.items()
               if applied.generations_after.get(k) != v}
    assert not changed, f"re-applying the same overlay changed specs: {changed}"
