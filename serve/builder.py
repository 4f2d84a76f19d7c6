"""Build the ICMA Serve application from one config dict (Ray Serve LLM builder style).

Python::

    from ray import serve
    from serve import build_icma_app
    serve.run(build_icma_app(yaml.safe_load(open("configs/serve/icma_app.yaml"))["applications"][0]["args"]))

Serve YAML (``serve run configs/serve/icma_app.yaml`` / ``serve deploy``)::

    applications:
      - name: icma
        import_path: serve.builder:build_icma_app
        args: {retriever: {...}, generator: {...}}
"""
from __future__ import annotations

import copy
import logging
from typing import Any

from ray import serve
from ray.serve import Application

from serve.configs import GeneratorConfig, ICMAServingArgs, RerankerConfig, RetrieverConfig
from serve.constants import (
    DEFAULT_GENERATOR_OPTIONS,
    DEFAULT_INGRESS_OPTIONS,
    DEFAULT_RERANKER_OPTIONS,
    DEFAULT_RETRIEVER_OPTIONS,
)

__all__ = [
    "build_icma_app",
    "build_retriever_deployment",
    "build_reranker_deployment",
    "build_generator_deployment",
    "merge_deployment_options",
    "plan_deployments",
]

log = logging.getLogger("ray.serve")

_NESTED = ("ray_actor_options", "autoscaling_config", "backpressure_config", "logging_config")


def merge_deployment_options(*layers: dict[str, Any]) -> dict[str, Any]:
    """Later layers win; nested dicts (ray_actor_options, autoscaling_config...) merge key by key.
    A fixed `num_replicas` in a later layer drops autoscaling from earlier ones."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in copy.deepcopy(layer).items():
            if key in _NESTED and isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = {**out[key], **value}
            else:
                out[key] = value
            if key == "num_replicas" and value not in (None, "auto"):
                out.pop("autoscaling_config", None)
            if key == "autoscaling_config" and value is not None:
                out.pop("num_replicas", None)
    return out


def _finish(name: str, options: dict[str, Any]) -> dict[str, Any]:
    options.setdefault("name", name)
    auto = options.get("autoscaling_config")
    if auto and "max_replicas" in auto and auto.get("min_replicas", 1) > auto["max_replicas"]:
        raise ValueError(f"{name}: autoscaling_config min_replicas > max_replicas ({auto})")
    log.info("deployment %s options: %s", options["name"], {k: v for k, v in options.items() if k != "user_config"})
    return options


def retriever_options(cfg: RetrieverConfig) -> dict[str, Any]:
    from serve.retriever_deployment import Retriever

    opts = merge_deployment_options(DEFAULT_RETRIEVER_OPTIONS, Retriever.get_deployment_options(cfg), cfg.deployment_options)
    opts["user_config"] = cfg.user_config()  # re-deploying a changed index config swaps it in place
    return _finish("Retriever", opts)


def reranker_options(cfg: RerankerConfig) -> dict[str, Any]:
    from serve.reranker_deployment import Reranker

    return _finish(
        "Reranker",
        merge_deployment_options(DEFAULT_RERANKER_OPTIONS, Reranker.get_deployment_options(cfg), cfg.deployment_options),
    )


def generator_options(cfg: GeneratorConfig) -> dict[str, Any]:
    from serve.generator_deployment import GeneratorDeployment

    opts = merge_deployment_options(
        DEFAULT_GENERATOR_OPTIONS, GeneratorDeployment.get_deployment_options(cfg, _cluster_gpus()), cfg.deployment_options
    )
    opts["user_config"] = cfg.user_config()  # adapters + batch knobs hot-swap through reconfigure
    return _finish("Generator", opts)


def ingress_options(cfg: ICMAServingArgs) -> dict[str, Any]:
    from serve.ingress import ICMAIngress

    opts = merge_deployment_options(
        DEFAULT_INGRESS_OPTIONS, ICMAIngress.get_deployment_options(cfg), cfg.ingress.deployment_options
    )
    if cfg.retriever.placement == "ingress":
        opts["user_config"] = {"retriever": cfg.retriever.user_config()}
    return _finish("ICMAIngress", opts)


def plan_deployments(args: dict) -> dict[str, dict[str, Any]]:
    """The final options of every deployment the config makes (what `ray-icma serve --check` prints)."""
    cfg = ICMAServingArgs.model_validate(args)
    plan = {"ICMAIngress": ingress_options(cfg)}
    if cfg.retriever.placement == "deployment":
        plan["Retriever"] = retriever_options(cfg.retriever)
    if cfg.reranker.placement == "deployment":
        plan["Reranker"] = reranker_options(cfg.reranker)
    if cfg.generator is not None:
        plan["Generator"] = generator_options(cfg.generator)
    return plan


def build_retriever_deployment(cfg: RetrieverConfig) -> Application:
    """The Retriever bound to its index config (as user_config, so re-deploys swap it in place)."""
    from serve.retriever_deployment import Retriever

    return serve.deployment(Retriever, **retriever_options(cfg)).bind()


def build_reranker_deployment(cfg: RerankerConfig) -> Application:
    from serve.reranker_deployment import Reranker

    return serve.deployment(Reranker, **reranker_options(cfg)).bind(cfg.model_dump(mode="json"))


def build_generator_deployment(cfg: GeneratorConfig) -> Application:
    """The Generator on a GPU when the cluster has one (and device allows), else on CPU."""
    from serve.generator_deployment import GeneratorDeployment

    return serve.deployment(GeneratorDeployment, **generator_options(cfg)).bind(cfg.model_dump(mode="json"))


def build_icma_app(args: dict) -> Application:
    """The whole ICMA app: ingress -> Retriever -> Reranker -> Generator, composed with handles.

    Args:
        args: a dict shaped like :class:`serve.configs.ICMAServingArgs` (the `args:` of the Serve YAML).

    Returns:
        The bound ingress, ready for ``serve.run`` / ``serve deploy``.

    Raises:
        pydantic.ValidationError: the config is wrong (every problem listed, with its path).
    """
    cfg = ICMAServingArgs.model_validate(args)
    from serve.ingress import ICMAIngress

    retriever = build_retriever_deployment(cfg.retriever) if cfg.retriever.placement == "deployment" else None
    reranker = build_reranker_deployment(cfg.reranker) if cfg.reranker.placement == "deployment" else None
    generator = build_generator_deployment(cfg.generator) if cfg.generator is not None else None
    return serve.deployment(ICMAIngress, **ingress_options(cfg)).bind(
        cfg.model_dump(mode="json"), retriever, reranker, generator
    )


def _cluster_gpus() -> float:
    try:
        import ray

        return float(ray.cluster_resources().get("GPU", 0)) if ray.is_initialized() else 0.0
    except Exception:  # noqa: BLE001 - sizing falls back to CPU
        return 0.0
