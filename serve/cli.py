"""`ray-icma serve CONFIG` (registered by the `serve` package through the `ray_icma.cli` entry point,
so `ray_icma` never imports `serve`): run the ICMA Serve app(s) of a Serve config file on RAY_ADDRESS or locally.

The config is a plain Ray Serve config (the same file works with `serve run` / `serve deploy`);
every application whose import_path is `serve.builder:build_icma_app` gets its `args` validated
before anything starts.
"""
from __future__ import annotations

from pathlib import Path

import typer

ICMA_IMPORT_PATHS = {"serve.builder:build_icma_app", "serve:build_icma_app", "serve.builder.build_icma_app"}


def _load(config: Path) -> dict:
    """The Serve config at ``config`` (a file, or a packaged config name such as ``serve/icma_app``).

    Apps of a config kept in a ``configs/`` folder (the repository's, or the packaged copy) get
    ``base_dir`` = the folder above it unless they set one or $RAY_ICMA_BASE_DIR is set, so their
    relative paths resolve from any working directory, as pipeline configs do.
    """
    import yaml

    from ray_icma.env import base_dir
    from ray_icma.resources import project_root_of, resolve_config

    try:
        config = resolve_config(config, kind="serve")
    except FileNotFoundError as exc:
        raise typer.BadParameter(f"{config} does not exist ({exc})", param_hint="CONFIG") from None
    try:
        data = yaml.safe_load(config.read_text())
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"{config} is not valid YAML: {exc}", param_hint="CONFIG") from None
    if not isinstance(data, dict) or not data.get("applications"):
        raise typer.BadParameter(
            f"{config} has no `applications:` list (expected a Ray Serve config file)", param_hint="CONFIG"
        )
    root = project_root_of(config)
    if root is not None and base_dir() is None:
        for entry in data["applications"]:
            if isinstance(entry, dict) and isinstance(entry.get("args"), dict):
                entry["args"].setdefault("base_dir", str(root))
    return data


def _validated_apps(data: dict, config: Path) -> list[dict]:
    from pydantic import ValidationError

    from serve.configs import ICMAServingArgs

    apps = []
    for i, app in enumerate(data["applications"]):
        if app.get("import_path") not in ICMA_IMPORT_PATHS:
            raise typer.BadParameter(
                f"application {i} ({app.get('name')!r}) has import_path {app.get('import_path')!r}; "
                f"this command runs ICMA apps only (import_path: serve.builder:build_icma_app)",
                param_hint="CONFIG",
            )
        try:
            ICMAServingArgs.model_validate(app.get("args") or {})
        except ValidationError as exc:
            lines = [f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
            typer.secho(f"{config}: application {app.get('name', i)!r} has config errors:", fg="red", err=True)
            typer.echo("\n".join(lines), err=True)
            raise typer.Exit(1) from None
        apps.append(app)
    return apps


def _check_capacity(apps: list[dict]) -> None:
    """Fail in seconds, naming each deployment's ask and the free resources, when an app cannot be placed.
    Apps already running under the same name are re-deploys (their replicas hold resources now): not checked."""
    from ray import serve

    from serve.builder import plan_deployments
    from serve.capacity import DoesNotFit, check_fits, cluster_free, replica_asks

    try:
        running = set(serve.status().applications)
    except Exception:  # noqa: BLE001 - Serve not started yet: nothing runs
        running = set()
    free, per_node = cluster_free()
    for entry in apps:
        name = entry.get("name", "default")
        if name in running:
            continue
        asks = replica_asks(plan_deployments(entry.get("args") or {}))
        try:
            warnings = check_fits(asks, free, per_node, app=name)
        except DoesNotFit as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(1) from None
        for ask in asks:  # the next app of the same file gets what this one leaves
            for key, value in ask.total(ask.start).items():
                free[key] = free.get(key, 0.0) - value
        per_node = []
        for line in warnings:
            typer.secho(f"warning: {line}", fg="yellow", err=True)


def register(app: typer.Typer) -> None:
    """Attach this module's command(s) to the root app."""

    @app.command("serve")
    def serve_command(
        config: Path = typer.Argument(..., help="Ray Serve config YAML, or a packaged one by name (serve/icma_app; `ray-icma configs list`)."),
        check: bool = typer.Option(False, "--check", help="Validate and print each deployment's options; start nothing."),
        address: str = typer.Option(None, "--address", envvar="RAY_ADDRESS", help="Ray cluster (default: start a local one)."),
        port: int = typer.Option(None, "--port", help="HTTP port (default: the config's http_options.port or 8000)."),
        blocking: bool = typer.Option(True, "--blocking/--no-blocking", help="Block until Ctrl-C (default)."),
    ) -> None:
        """Start the ICMA HTTP service (retrieve -> re-rank -> generate) and print its URL."""
        import json

        data = _load(config)
        apps = _validated_apps(data, config)
        if check:
            from serve.builder import plan_deployments

            for entry in apps:
                plan = plan_deployments(entry.get("args") or {})
                for opts in plan.values():
                    opts.pop("user_config", None)
                typer.echo(json.dumps({"application": entry.get("name", "default"), "deployments": plan}, indent=2))
            typer.secho("config OK", fg="green")
            return

        import time

        from ray import serve

        from serve.builder import build_icma_app

        http = dict(data.get("http_options") or {})
        if port is not None:
            http["port"] = port
        http.setdefault("host", "127.0.0.1")
        http.setdefault("port", 8000)
        started_local = not address
        try:
            from ray_icma.ray_connect import connect_ray

            connect_ray(address or None)
        except Exception as exc:  # noqa: BLE001
            typer.secho(f"cannot connect to Ray at {address or 'local'}: {exc}", fg="red", err=True)
            raise typer.Exit(1) from None
        _check_capacity(apps)
        serve.start(http_options=http, proxy_location=data.get("proxy_location", "HeadOnly"))
        names = []
        try:
            for entry in apps:
                name = entry.get("name", "default")
                prefix = entry.get("route_prefix", "/")
                typer.echo(f"deploying {name!r} (this loads indexes and the model; a minute on a small CPU)...")
                serve.run(build_icma_app(entry.get("args") or {}), name=name, route_prefix=prefix, blocking=False)
                names.append(name)
                url = f"http://{http['host']}:{http['port']}{prefix.rstrip('/')}"
                typer.secho(f"{name}: {url}  (docs: {url}/docs, ready: {url}/readyz)", fg="green")
        except Exception as exc:  # noqa: BLE001 - deployment failures carry Ray's long message
            typer.secho(f"deployment failed: {str(exc)[:2000]}", fg="red", err=True)
            raise typer.Exit(1) from None
        if not blocking:
            return
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            typer.echo("shutting down...")
        finally:
            if started_local:
                serve.shutdown()
            else:
                for name in names:
                    serve.delete(name)
