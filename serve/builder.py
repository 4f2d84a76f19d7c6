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
import functools
import logging
from typing import Any

from ray import serve
from ray.serve import Application

from serve.configs import AdmissionConfig, GeneratorConfig, ICMAServingArgs, RerankerConfig, RetrieverConfig
from serve.constants import (
    DEFAULT_GENERATOR_OPTIONS,
    DEFAULT_INGRESS_OPTIONS,
    DEFAULT_RERANKER_OPTIONS,
    DEFAULT_RETRIEVER_OPTIONS,
    GENERATOR_CONTROL_CALLS,
)

__all__ = [
    "build_icma_app",
    "build_retriever_deployment",
    "build_reranker_deployment",
    "build_generator_deployment",
    "merge_deployment_options",
    "plan_deployments",
    "admission_limits",
    "generation_limit",
    "replica_version",
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


def generator_options(cfg: GeneratorConfig, admission: AdmissionConfig | None = None) -> dict[str, Any]:
    """The Generator's options; its Serve queue (per caller) holds what the ingress admits for generation plus the
    ingress's bounded control calls (GENERATOR_CONTROL_CALLS), so an admitted request is never refused by Serve, even
    while the replica is unroutable (unless deployment_options set max_queued_requests)."""
    opts = _generator_base_options(cfg)
    if "max_queued_requests" not in cfg.deployment_options:
        opts["max_queued_requests"] = generation_limit(opts, admission or AdmissionConfig()) + GENERATOR_CONTROL_CALLS
    opts["user_config"] = cfg.user_config()  # adapters + batch knobs hot-swap through reconfigure
    return _finish("Generator", opts)


def _generator_base_options(cfg: GeneratorConfig) -> dict[str, Any]:
    from serve.generator_deployment import GeneratorDeployment

    return merge_deployment_options(
        DEFAULT_GENERATOR_OPTIONS, GeneratorDeployment.get_deployment_options(cfg, _cluster_gpus()), cfg.deployment_options
    )


def generation_limit(generator_opts: dict[str, Any], admission: AdmissionConfig) -> int:
    """Generation requests an ingress replica admits: `max_generations_in_flight`, else the Generator's capacity
    (max_ongoing_requests x its max replicas: what it runs at once when scaled out)."""
    if admission.max_generations_in_flight is not None:
        return admission.max_generations_in_flight
    auto = generator_opts.get("autoscaling_config") or {}
    replicas = auto.get("max_replicas", 1) if auto else generator_opts.get("num_replicas", 1)
    return int(generator_opts["max_ongoing_requests"]) * max(1, int(replicas if isinstance(replicas, int) else 1))


def admission_limits(cfg: ICMAServingArgs) -> dict[str, int | None]:
    """The ingress's admission limits per replica: ``{"api": ..., "generation": ...}`` (None = no limit)."""
    adm = cfg.ingress.admission
    if not adm.enabled:
        return {"api": None, "generation": None}
    generation = generation_limit(_generator_base_options(cfg.generator), adm) if cfg.generator is not None else None
    return {"api": adm.max_in_flight, "generation": generation}


def ingress_options(cfg: ICMAServingArgs) -> dict[str, Any]:
    """The ingress's options. Its Serve limits follow `ingress.admission.max_in_flight` (L): max_ongoing_requests L and
    max_queued_requests L, so past 2L the proxy refuses at once (503 + Retry-After, no hop to a replica: measured as
    the cheapest refusal, benchmarks/results/serve_load.md) after a short queue; autoscaling target L/2, below the cap.
    Generation requests are capped lower by the ingress's own check (serve/admission.py, `generation_limit`)."""
    from serve.ingress import ICMAIngress

    limit = cfg.ingress.admission.max_in_flight
    # Serve's router refuses every simultaneous arrival past max_queued_requests, even with a free replica (they all
    # count as queued while being assigned): a queue of 1/4 of the limit refused a burst of 12 on an idle app.
    derived = {"max_ongoing_requests": limit, "max_queued_requests": limit,
               "autoscaling_config": {"target_ongoing_requests": max(1, limit // 2)}}
    opts = merge_deployment_options(
        DEFAULT_INGRESS_OPTIONS, derived, ICMAIngress.get_deployment_options(cfg), cfg.ingress.deployment_options
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
        plan["Generator"] = generator_options(cfg.generator, cfg.ingress.admission)
    return plan


def build_retriever_deployment(cfg: RetrieverConfig) -> Application:
    """The Retriever bound to its index config (as user_config, so re-deploys swap it in place)."""
    from serve.retriever_deployment import Retriever

    return serve.deployment(Retriever, **retriever_options(cfg)).bind()


def build_reranker_deployment(cfg: RerankerConfig) -> Application:
    from serve.reranker_deployment import Reranker

    return serve.deployment(Reranker, **reranker_options(cfg)).bind(cfg.model_dump(mode="json"))


def build_generator_deployment(cfg: GeneratorConfig, admission: AdmissionConfig | None = None) -> Application:
    """The Generator on a GPU when the cluster has one (and device allows), else on CPU.

    It is built from `cfg.replica_config()` only and carries a version derived from that, its options and
    the code (`replica_version`): re-deploying a config that changes only its user_config (adapters, batch
    knobs) keeps the running replicas and their base model, and Serve calls `reconfigure` on them.
    """
    from serve.generator_deployment import GeneratorDeployment

    opts = generator_options(cfg, admission)
    init = cfg.replica_config()
    deployment = serve.deployment(GeneratorDeployment, **opts)
    # Serve gives every `serve.run` a random code version (every replica restarts) unless the deployment
    # carries one; the public `version=` was removed, the internal flag still sets it.
    deployment = deployment.options(version=replica_version(init, opts), _internal=True)
    return deployment.bind(init)


def replica_version(init: dict[str, Any], options: dict[str, Any]) -> str:
    """Same replica build (init args, options but user_config, source code of the packages) -> same version."""
    import hashlib
    import json

    fixed = {k: v for k, v in options.items() if k != "user_config"}
    payload = json.dumps({"init": init, "options": fixed, "code": _source_fingerprint()}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _source_fingerprint() -> str:
    """Hash of every .py file of serve/, ray_icma/ and retrieval/: a code change restarts the replicas."""
    import hashlib
    from pathlib import Path

    import ray_icma
    import retrieval

    digest = hashlib.sha256()
    for pkg in (Path(__file__).parent, Path(ray_icma.__file__).parent, Path(retrieval.__file__).parent):
        for path in sorted(pkg.rglob("*.py")):
            digest.update(f"{pkg.name}/{path.relative_to(pkg)}".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


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
    generator = build_generator_deployment(cfg.generator, cfg.ingress.admission) if cfg.generator is not None else None
    return serve.deployment(ICMAIngress, **ingress_options(cfg)).bind(
        cfg.model_dump(mode="json"), retriever, reranker, generator
    )


def _cluster_gpus() -> float:
    try:
        import ray

        return float(ray.cluster_resources().get("GPU", 0)) if ray.is_initialized() else 0.0
    except Exception:  # noqa: BLE001 - sizing falls back to CPU
        return 0.0
