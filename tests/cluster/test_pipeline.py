"""The overlays form one pipeline that feeds itself by name, and every Serve deployment can be placed.

Derived from the rendered manifests (tests/cluster/pipeline.py): data -> index + contexts -> train ->
RayService. A read with no earlier writer (and no file in the image) fails, as does a GPU ask where
the cluster that would run it has no GPU group. The RayService's deployment plan is built with Ray
Serve's own machinery (serve/plan.py) under the head pod's environment and validated with Ray's schemas.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from tests.cluster import k8s_schemas
from tests.cluster.pipeline import markdown_table, pipeline, pod_env, unwritten_reads

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"
OVERLAYS = ["overlays/dev", "overlays/prod"]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> tuple[str, list[dict]]:
    return request.param, k8s_schemas.kustomize_build(CLUSTER / request.param)


def _gpu_groups(cluster_spec: dict) -> list[str]:
    groups = [("head", cluster_spec["headGroupSpec"])] + [(g["groupName"], g) for g in cluster_spec.get("workerGroupSpecs", [])]
    return [name for name, g in groups
            if any("nvidia.com/gpu" in c.get("resources", {}).get("limits", {}) for c in g["template"]["spec"]["containers"])]


def test_every_read_has_an_earlier_writer(rendered):
    name, docs = rendered
    steps = pipeline(docs)
    assert [s.resource for s in steps][-1] == "RayService/icma"
    problems = unwritten_reads(steps)
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_each_task_gets_its_own_trained_adapter_and_the_service_reads_exactly_those(rendered):
    name, docs = rendered
    steps = pipeline(docs)
    adapters = {a.name: a.by for s in steps for a in s.writes if a.name.endswith("/adapter")}
    served = {a.how.rsplit(".", 1)[1]: a.name for s in steps for a in s.reads if a.how.startswith("generator.adapters.")}
    assert set(served) == {"mol2cap", "cap2mol"}, served
    for task, path in served.items():
        assert adapters.get(path) == f"RayJob/icma-train-{task}", f"{name}: {task} adapter {path} written by {adapters.get(path)}"
    service = next(s for s in steps if s.resource.startswith("RayService"))
    index_writes = {a.name for s in steps if s.resource == "RayJob/icma-index-build" for a in s.writes}
    for a in service.reads:
        if a.how in ("retriever.molecule.faiss_dir", "retriever.text.index_name"):
            assert a.name in index_writes, f"{name}: the RayService reads {a.name} ({a.how}), the index job writes {index_writes}"
    # the index is built over the very pool the RayService serves (the Retriever checks the counts)
    pool = next(a.name for a in service.reads if a.how == "retriever.pool.path")
    index_reads = {a.name for s in steps if s.resource == "RayJob/icma-index-build" for a in s.reads if "--data" in a.how}
    assert index_reads == {pool}, (index_reads, pool)


def test_a_read_without_writer_is_found(rendered):
    """The check itself: point the RayService at an index nobody builds and the adapters elsewhere."""
    _, docs = rendered
    docs = copy.deepcopy(docs)
    service = next(d for d in docs if d["kind"] == "RayService")
    service["spec"]["serveConfigV2"] = service["spec"]["serveConfigV2"].replace("-gnn\n", "-gnn-typo\n")
    problems = unwritten_reads(pipeline(docs))
    assert any("faiss_dir" in p and "-gnn-typo" in p for p in problems), problems


def test_readme_table_is_the_derived_one(rendered):
    name, docs = rendered
    readme = (CLUSTER / "README.md").read_text()
    table = markdown_table(pipeline(docs))
    section = re.search(rf"<!-- table {name} -->\n(.*?)\n<!-- /table -->", readme, re.S)
    assert section, f"cluster/README.md has no `<!-- table {name} -->` section"
    assert section.group(1).strip() == table.strip(), f"cluster/README.md's {name} table is stale; derived:\n{table}"


def test_serve_plan_validates_and_every_gpu_ask_has_a_gpu_group(rendered):
    """Build the app's deployment plan exactly as Serve would on the head (builder + the config's
    deployments[] overrides), under the head's env, validate it with Ray's DeploymentSchema and
    AutoscalingConfig, and place every replica: a GPU ask needs a GPU worker group."""
    from serve.configs import AdmissionConfig
    from serve.plan import plan_application, validate_plan

    name, docs = rendered
    service = next(d for d in docs if d["kind"] == "RayService")
    cluster = service["spec"]["rayClusterConfig"]
    env = pod_env(docs, cluster)
    assert "RAY_ICMA_ES_URL" in env and "RAY_AUTH_MODE" in env, f"{name}: the RayService head gets no icma-config"
    config = yaml.safe_load(service["spec"]["serveConfigV2"])
    gpus = _gpu_groups(cluster)
    for app in config["applications"]:
        plan = validate_plan(plan_application(app, env=env))
        assert {"ICMAIngress", "Generator"} <= set(plan), plan.keys()
        for deployment, options in plan.items():
            asks = options.get("ray_actor_options") or {}
            if asks.get("num_gpus", 0) > 0:
                assert gpus, f"{name}: {deployment} asks {asks} but the RayService's cluster has no GPU group"
            auto = options.get("autoscaling_config")
            if auto:
                assert auto["min_replicas"] <= auto["max_replicas"]
        # the ingress's Serve limits agree with its admission limit: Serve's proxy refuses past it (the cheap
        # refusal), and the autoscaler's target is reachable below it
        limit = (app["args"].get("ingress", {}).get("admission") or {}).get("max_in_flight", AdmissionConfig().max_in_flight)
        ingress = plan["ICMAIngress"]
        assert ingress["max_ongoing_requests"] == limit, f"{name}: ingress max_ongoing_requests {ingress['max_ongoing_requests']} != admission.max_in_flight {limit}"
        target = (ingress.get("autoscaling_config") or {}).get("target_ongoing_requests")
        assert target is None or target < limit, f"{name}: ingress autoscaling target {target} is never reached below the admission limit {limit}"
        generator = app["args"]["generator"]
        if generator.get("device") == "cuda":
            assert gpus and plan["Generator"]["ray_actor_options"].get("num_gpus", 0) >= 1, f"{name}: a cuda Generator without a GPU"
        if not gpus:
            assert generator.get("device") == "cpu", f"{name}: no GPU group, so the Generator must say device: cpu"


def test_a_gpu_ask_without_gpu_group_is_found():
    """The GPU check itself: dev's cluster with prod's Serve config must fail."""
    from serve.plan import plan_application, validate_plan

    dev = k8s_schemas.kustomize_build(CLUSTER / "overlays/dev")
    prod = k8s_schemas.kustomize_build(CLUSTER / "overlays/prod")
    dev_cluster = next(d for d in dev if d["kind"] == "RayService")["spec"]["rayClusterConfig"]
    prod_app = yaml.safe_load(next(d for d in prod if d["kind"] == "RayService")["spec"]["serveConfigV2"])["applications"][0]
    plan = validate_plan(plan_application(prod_app, env=pod_env(dev, dev_cluster)))
    assert plan["Generator"]["ray_actor_options"]["num_gpus"] == 1 and not _gpu_groups(dev_cluster)


def test_training_jobs_ask_gpus_only_where_their_cluster_has_them(rendered):
    from ray_icma.train import load_train_config

    from tests.cluster.pipeline import bash_statements, image_to_repo

    name, docs = rendered
    trains = [d for d in docs if d["kind"] == "RayJob" and d["metadata"]["name"].startswith("icma-train-")]
    assert {d["metadata"]["name"] for d in trains} == {"icma-train-mol2cap", "icma-train-cap2mol"}
    for job in trains:
        (argv,) = [s for s in bash_statements(job["spec"]["entrypoint"]) if s[:2] == ["ray-icma", "train"]]
        cfg = load_train_config(image_to_repo(argv[2]), argv[3:])
        assert cfg.data.task == job["metadata"]["name"].rsplit("-", 1)[1]
        gpus = _gpu_groups(job["spec"]["rayClusterSpec"])
        assert cfg.scaling.use_gpu == bool(gpus), f"{name} {job['metadata']['name']}: use_gpu={cfg.scaling.use_gpu}, GPU groups {gpus}"
        for path in (cfg.data.train, cfg.data.contexts, cfg.run.storage_path, cfg.run.output_dir):
            assert path and path.startswith("/mnt/icma/"), f"{name}: relative or off-volume path {path}"
        if name.endswith("prod"):  # ICMA's global batch 32 and a warm-up that is a small part of the run
            batch = cfg.optim.micro_batch_size * cfg.optim.gradient_accumulation_steps * cfg.scaling.num_workers
            assert batch == 32, batch
            workers = sum(g["replicas"] * int(g["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])
                          for g in job["spec"]["rayClusterSpec"]["workerGroupSpecs"])
            assert workers == cfg.scaling.num_workers, (workers, cfg.scaling.num_workers)
            steps = cfg.optim.epochs * (26407 // batch)
            assert cfg.optim.warmup_steps <= 0.05 * steps, (cfg.optim.warmup_steps, steps)


def test_one_image_per_device_kind():
    dockerfile = (CLUSTER / "image" / "Dockerfile").read_text()
    assert re.search(r'pip install [^\n]*"\.\[full,\$\{DEVICE\}\]"', dockerfile)
    assert "faiss-cpu" not in dockerfile.split("pip install", 1)[1].split("\n")[0]
    import tomllib

    extras = tomllib.loads((CLUSTER.parent / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    flat = lambda names: {req for n in names for req in extras[n]}  # noqa: E731
    assert not any("faiss" in r for r in flat(["full", "chem", "bm25", "es", "gnn", "eval", "train", "serve"]))
    assert [r for r in extras["cpu"] if "faiss" in r] and all("faiss-cpu" not in r for r in extras["gpu"])
