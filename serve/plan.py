"""The deployment plan of a Serve application config, built the way Serve builds it but never started.

``serve deploy`` (and KubeRay, which PUTs a RayService's ``serveConfigV2`` to the dashboard) makes
Serve import the app's builder, call it with ``args``, walk the bound deployment graph, and then merge
the config's ``applications[].deployments[]`` overrides over what the code asked for. Offline schema
checks of the YAML see neither the builder's options nor that merge; this module runs exactly Ray's
own steps for both (``call_user_app_builder_with_args_if_necessary``, ``build_app``,
``deploy_args_to_deployment_info``, ``override_deployment_info``) and returns every deployment's final
options as Ray's ``DeploymentSchema``. Nothing is deployed and no Ray cluster is needed.

    from serve.plan import plan_application
    plan = plan_application(yaml.safe_load(cfg)["applications"][0], env={"RAY_ICMA_ES_URL": "..."})
    plan["Generator"].ray_actor_options   # {'num_cpus': 4, 'num_gpus': 1}
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = ["plan_application", "validate_plan"]


@contextmanager
def _environment(env: Mapping[str, str] | None) -> Iterator[None]:
    """The process environment with ``env`` applied (what the pod that builds the app would have)."""
    if not env:
        yield
        return
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update({key: str(value) for key, value in env.items()})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def plan_application(app_config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every deployment's merged options for one entry of ``applications:``.

    Args:
        app_config: one application of a Serve config (``name``, ``import_path``, ``args``,
            ``deployments`` ...), as in ``serveConfigV2``.
        env: environment variables in force while the builder runs (a pod's env).

    Returns:
        deployment name -> ``ray.serve.schema.DeploymentSchema`` with the final options.

    Raises:
        pydantic.ValidationError: the application config or a merged deployment is invalid.
        ValueError: an override names a deployment the app does not have, or a bad option value.
    """
    from ray._common.utils import import_attr
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
    from ray.serve._private.application_state import override_deployment_info
    from ray.serve._private.build_app import build_app
    from ray.serve._private.deploy_utils import deploy_args_to_deployment_info
    from ray.serve.schema import ServeApplicationSchema, _deployment_info_to_schema

    schema = ServeApplicationSchema.model_validate(dict(app_config))
    with _environment(env):
        app = call_user_app_builder_with_args_if_necessary(import_attr(schema.import_path), schema.args)
        built = build_app(app, name=schema.name)
    infos = {
        d.name: deploy_args_to_deployment_info(
            deployment_name=d.name,
            deployment_config_proto_bytes=d._deployment_config.to_proto_bytes(),
            replica_config_proto_bytes=d._replica_config.to_proto_bytes(),
            deployer_job_id="plan",
            app_name=schema.name,
            ingress=d.name == built.ingress_deployment_name,
        )
        for d in built.deployments
    }
    merged = override_deployment_info(infos, schema)
    return {name: _deployment_info_to_schema(name, info) for name, info in merged.items()}


def validate_plan(plan: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Re-validate each merged deployment with Ray Serve's public schemas (``DeploymentSchema``,
    ``AutoscalingConfig``) and return them as plain dicts; raises pydantic.ValidationError."""
    from ray.serve.config import AutoscalingConfig
    from ray.serve.schema import DeploymentSchema

    out = {}
    for name, deployment in plan.items():
        options = deployment.model_dump(exclude_unset=True)
        DeploymentSchema.model_validate(options)
        if options.get("autoscaling_config") is not None:
            AutoscalingConfig.model_validate(options["autoscaling_config"])
        out[name] = options
    return out
