"""The one way ray-icma joins Ray: ``connect_ray()`` (embedding, contexts, training, generation,
the pipeline and ``ray-icma serve`` all call it)."""
from __future__ import annotations

from typing import Any

from ray_icma import env

__all__ = ["connect_ray"]


def connect_ray(address: str | None = None, *, log_to_driver: bool = False, **init_kwargs: Any) -> None:
    """Join ``address``, else ``$RAY_ADDRESS``, else start a local Ray; a no-op when connected.

    Args:
        address: a Ray address (``host:port``, ``ray://...``); default ``$RAY_ADDRESS``.
        log_to_driver: show workers' log lines here (the pipeline and training use them as their
            progress display; jobs whose workers only log noise keep them off).
        **init_kwargs: passed to ``ray.init`` (e.g. ``num_cpus`` for a local Ray).
    """
    import ray

    if ray.is_initialized():
        return
    address = address or env.ray_address()
    ray.init(address=address or "local", ignore_reinit_error=True, log_to_driver=log_to_driver, **init_kwargs)
