"""Config validation, option merging and the CLI's --check: no Ray cluster needed."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from serve.configs import ICMAServingArgs

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs" / "serve").glob("*.yaml"))


def _args(**over) -> dict:
    args = {"retriever": {"pool": {"path": "tests/assets/chebi20_validation_300.txt"}}}
    args.update(over)
    return args


def test_import_serve_is_this_project_not_ray_serve():
    import ray.serve

    import serve

    assert Path(serve.__file__).resolve().parent == ROOT / "serve"
    assert ray.serve.__name__ == "ray.serve" and Path(ray.serve.__file__).parent != ROOT / "serve"
    assert serve.__all__ == ["ICMAServingArgs", "build_icma_app"] and callable(serve.build_icma_app)


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_shipped_configs_validate_and_plan(config):
    from serve.builder import plan_deployments

    data = yaml.safe_load(config.read_text())
    assert data["proxy_location"] == "HeadOnly" and data["http_options"]["port"] != 8000
    for app in data["applications"]:
        assert app["import_path"] == "serve.builder:build_icma_app"
        cfg = ICMAServingArgs.model_validate(app["args"])
        assert Path(cfg.retriever.pool.path).is_file()  # relative paths resolve against the repo root
        plan = plan_deployments(app["args"])
        # production default: retrieval and re-ranking in the ingress (the faster placement, serve_load.md)
        assert set(plan) == {"ICMAIngress", "Generator"}
        assert cfg.retriever.placement == cfg.reranker.placement == "ingress"
        for name, opts in plan.items():
            assert opts["max_ongoing_requests"] > 5, name  # Serve's default of 5 collapses throughput here
            assert "max_queued_requests" in opts and "autoscaling_config" in opts, name


def test_every_field_is_described():
    def walk(model, seen):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            ann = field.annotation
            for sub in getattr(ann, "__args__", ()) + (ann,):
                if isinstance(sub, type) and hasattr(sub, "model_fields") and sub not in seen:
                    seen.add(sub)
                    walk(sub, seen)

    walk(ICMAServingArgs, set())


@pytest.mark.parametrize(
    "over, message",
    [
        ({"retriever": {"pool": {"path": "x"}, "text": {"backend": "elasticsearch"}}}, "url is required"),
        ({"retriever": {"pool": {"path": "x"}, "text": {"backend": "solr"}}}, "bm25s"),
        ({"retriever": {"pool": {"path": "x"}, "molecule": {"kind": "gnn"}}}, "encoder_path and faiss_dir"),
        ({"retriever": {"pool": {"path": "x"}, "deployment_options": {"max_ongoing": 3}}}, "unknown deployment option"),
        ({"generator": {"model": "m", "default_adapter": {"mol2cap": "a"}}}, "not in generator.adapters"),
        ({"generator": {"model": "m", "max_batch_size": 0}}, "max_batch_size"),
        ({"reranker": {"default_strategy": "best"}}, "default_strategy"),
        ({"ingress": {"timeout": 3}}, "Extra inputs are not permitted"),
    ],
)
def test_bad_configs_say_what_to_change(over, message, monkeypatch):
    monkeypatch.delenv("RAY_ICMA_ES_URL", raising=False)  # else it supplies the Elasticsearch url
    with pytest.raises(ValidationError, match=message):
        ICMAServingArgs.model_validate(_args(**over))


def test_merge_order_defaults_class_overrides():
    from serve.builder import generator_options, merge_deployment_options
    from serve.configs import GeneratorConfig

    merged = merge_deployment_options(
        {"max_ongoing_requests": 5, "ray_actor_options": {"num_cpus": 1, "memory": 1}},
        {"ray_actor_options": {"num_cpus": 2}},
        {"ray_actor_options": {"num_gpus": 1}, "num_replicas": 3},
        {},
    )
    assert merged == {"max_ongoing_requests": 5, "ray_actor_options": {"num_cpus": 2, "memory": 1, "num_gpus": 1},
                      "num_replicas": 3}
    auto = merge_deployment_options({"autoscaling_config": {"max_replicas": 2}}, {"num_replicas": 1})
    assert "autoscaling_config" not in auto
    gen = generator_options(GeneratorConfig(model="tiny-random-llama", max_batch_size=16))
    assert gen["max_ongoing_requests"] == 32  # the class sizes itself: two batches in flight
    assert gen["autoscaling_config"]["target_ongoing_requests"] == 16
    assert gen["user_config"]["max_batch_size"] == 16
    user = generator_options(GeneratorConfig(model="m", deployment_options={"max_ongoing_requests": 3}))
    assert user["max_ongoing_requests"] == 3  # the user's override wins


def test_cli_check_prints_the_plan():
    from ray_icma.cli.app import app

    result = CliRunner().invoke(app, ["serve", str(ROOT / "configs/serve/icma_app.yaml"), "--check"])
    assert result.exit_code == 0, result.output
    assert '"Generator"' in result.output and '"max_queued_requests"' in result.output and "config OK" in result.output


def test_cli_rejects_bad_configs(tmp_path):
    from ray_icma.cli.app import app

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"applications": [{"name": "x", "import_path": "serve.builder:build_icma_app",
                                                      "args": {"retriever": {"pool": {}}}}]}))
    result = CliRunner().invoke(app, ["serve", str(bad), "--check"])
    assert result.exit_code == 1 and "retriever.pool.path" in result.output and "Traceback" not in result.output
    missing = CliRunner().invoke(app, ["serve", str(tmp_path / "nope.yaml")], env={"COLUMNS": "300"})
    assert missing.exit_code != 0 and "does not exist" in missing.output


def test_elasticsearch_url_defaults_to_the_environment(monkeypatch):
    monkeypatch.setenv("RAY_ICMA_ES_URL", "https://icma-es-es-http:9200")
    args = ICMAServingArgs.model_validate(_args(retriever={"pool": {"path": "x"}, "text": {"backend": "elasticsearch"}}))
    assert args.retriever.text.url == "https://icma-es-es-http:9200"


def test_capacity_check_names_each_ask_and_the_free_resources():
    from serve.builder import plan_deployments
    from serve.capacity import DoesNotFit, check_fits, replica_asks

    args = yaml.safe_load((ROOT / "configs/serve/icma_app.yaml").read_text())["applications"][0]["args"]
    asks = replica_asks(plan_deployments(args))
    assert {a.deployment: (a.start, a.most, a.per_replica["CPU"]) for a in asks} == {
        "ICMAIngress": (1, 2, 1.0), "Generator": (1, 2, 1.0)}
    warnings = check_fits(asks, {"CPU": 2.0, "memory": 8e9}, [{"CPU": 2.0, "memory": 8e9}], app="icma")
    assert len(warnings) == 1 and "CPU 4" in warnings[0]  # autoscaling max cannot be placed: said, not fatal
    assert check_fits(asks, {"CPU": 4.0}, app="icma") == []
    with pytest.raises(DoesNotFit) as err:
        check_fits(asks, {"CPU": 1.5}, app="icma")
    assert "asks for CPU 2 in total at start, but the cluster has CPU 1.5 free" in str(err.value)
    assert "ICMAIngress: 1 replica(s) x (CPU 1)" in str(err.value) and "Generator: 1 replica(s)" in str(err.value)
    # enough in total, but split over two nodes so that only one of the two 1-CPU replicas finds room
    with pytest.raises(DoesNotFit, match="enough in total, but no node has room left for a replica of"):
        check_fits(asks, {"CPU": 2.0}, [{"CPU": 0.9}, {"CPU": 1.1}], app="icma")
    assert check_fits(asks, {"CPU": 2.0}, [{"CPU": 1.0}, {"CPU": 1.0}], app="icma")  # fits (only the max warns)


def test_cpu_generator_replicas_preload_the_allocator_gpu_ones_do_not(monkeypatch):
    """CPU replicas carry ray_icma.allocator's preload in their runtime_env (tcmalloc where installed); a GPU replica
    and `RAY_ICMA_ALLOCATOR=system` carry none; the merged options still pass Ray Serve's own schema."""
    from ray.serve.schema import DeploymentSchema

    from ray_icma.allocator import allocator_env
    from serve.configs import GeneratorConfig
    from serve.generator_deployment import GeneratorDeployment

    monkeypatch.setenv("RAY_ICMA_ALLOCATOR", "auto")
    cpu = GeneratorDeployment.get_deployment_options(GeneratorConfig(model="m", device="cpu"))
    expected = allocator_env("auto")
    assert expected, "no tcmalloc/jemalloc here: scripts/setup.sh installs libtcmalloc-minimal4"
    assert cpu["ray_actor_options"]["runtime_env"] == {"env_vars": expected}
    DeploymentSchema.model_validate({"name": "Generator", **cpu})
    gpu = GeneratorDeployment.get_deployment_options(GeneratorConfig(model="m", device="cuda"), gpus_in_cluster=1)
    assert gpu["ray_actor_options"] == {"num_gpus": 1, "num_cpus": 1}
    monkeypatch.setenv("RAY_ICMA_ALLOCATOR", "system")
    assert "runtime_env" not in GeneratorDeployment.get_deployment_options(GeneratorConfig(model="m", device="cpu"))["ray_actor_options"]
