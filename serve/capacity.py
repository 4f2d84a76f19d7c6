"""Does an app fit the Ray cluster it is about to start on? Checked before `serve.run`, so an app that
cannot be placed fails in seconds with each deployment's ask and the cluster's free resources,
instead of never becoming ready while Serve logs a scheduler warning every 30 s.

Only logical resources count (what Ray schedules by): CPU, GPU and memory in `ray_actor_options`.
Serve's controller and HTTP proxy ask for none.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DoesNotFit", "ReplicaAsk", "replica_asks", "check_fits", "cluster_free", "describe_free"]

# Serve's default when a deployment names no num_cpus (ray.serve.config default ray_actor_options).
_SERVE_DEFAULT_CPUS = 1.0
_RESOURCES = ("CPU", "GPU", "memory")


class DoesNotFit(RuntimeError):
    """The app's replicas at start do not fit the cluster's free resources (the message says why)."""


@dataclass(frozen=True)
class ReplicaAsk:
    """What one deployment asks at start (`start`) and at most (`most`) replicas."""

    deployment: str
    start: int
    most: int
    per_replica: dict[str, float]

    def total(self, replicas: int) -> dict[str, float]:
        return {k: v * replicas for k, v in self.per_replica.items()}

    def describe(self) -> str:
        each = ", ".join(f"{_fmt(k, v)}" for k, v in self.per_replica.items() if v) or "nothing"
        return f"{self.deployment}: {self.start} replica(s) x ({each})" + (
            f", up to {self.most} replicas when autoscaled" if self.most > self.start else ""
        )


def _fmt(resource: str, value: float) -> str:
    if resource == "memory":
        return f"memory {value / 1024**3:.2f} GiB"
    return f"{resource} {value:g}"


def _replicas(opts: dict[str, Any]) -> tuple[int, int]:
    auto = opts.get("autoscaling_config")
    if auto:
        low = int(auto.get("min_replicas", 1))
        start = auto.get("initial_replicas")
        start = low if start is None else int(start)
        return max(start, low), max(int(auto.get("max_replicas", 1)), start)
    n = opts.get("num_replicas", 1)
    n = 1 if n in (None, "auto") else int(n)
    return n, n


def replica_asks(plan: dict[str, dict[str, Any]]) -> list[ReplicaAsk]:
    """Each deployment's replicas at start / at most and what one replica asks (from `plan_deployments`)."""
    asks = []
    for name, opts in plan.items():
        actor = opts.get("ray_actor_options") or {}
        per = {
            "CPU": float(actor.get("num_cpus", _SERVE_DEFAULT_CPUS)),
            "GPU": float(actor.get("num_gpus", 0) or 0),
            "memory": float(actor.get("memory", 0) or 0),
        }
        start, most = _replicas(opts)
        asks.append(ReplicaAsk(opts.get("name", name), start, most, per))
    return asks


def describe_free(free: dict[str, float]) -> str:
    return ", ".join(_fmt(k, float(free.get(k, 0.0))) for k in _RESOURCES)


def check_fits(asks: list[ReplicaAsk], free: dict[str, float], node_free: list[dict[str, float]] | None = None,
               app: str = "app") -> list[str]:
    """Raise DoesNotFit when the replicas at start do not fit `free` (summed, and one node each when
    `node_free` is given). Returns warnings for autoscaling maxima that could never be placed."""

    def sums(which: str) -> dict[str, float]:
        out = dict.fromkeys(_RESOURCES, 0.0)
        for a in asks:
            for k, v in a.total(a.start if which == "start" else a.most).items():
                out[k] += v
        return out

    need = sums("start")
    short = [k for k in _RESOURCES if need[k] > float(free.get(k, 0.0)) + 1e-9]
    too_big = _unplaceable(asks, node_free) if node_free and not short else []
    if short or too_big:
        lines = [f"application {app!r} cannot start on this Ray cluster:"]
        if short:
            lines.append("  it asks for " + ", ".join(_fmt(k, need[k]) for k in short) + " in total at start, "
                         "but the cluster has " + ", ".join(_fmt(k, float(free.get(k, 0.0))) for k in short) + " free")
        if too_big:
            lines.append(f"  enough in total, but no node has room left for a replica of {', '.join(too_big)} "
                         "(replicas placed largest first on each node's free resources)")
        lines.append("  each deployment's ask:")
        lines += [f"    {a.describe()}" for a in asks]
        lines.append(f"  cluster free: {describe_free(free)}")
        if node_free and len(node_free) > 1:
            lines += [f"    node {i}: {describe_free(n)}" for i, n in enumerate(node_free)]
        lines.append("  fix: lower ray_actor_options (num_cpus / num_gpus / memory) or the replica counts under "
                     "<deployment>.deployment_options, use placement: ingress for retriever/reranker, "
                     "or start Ray with more resources")
        raise DoesNotFit("\n".join(lines))
    most = sums("most")
    return [
        f"application {app!r}: at max replicas it would ask {_fmt(k, most[k])} but the cluster has "
        f"{_fmt(k, float(free.get(k, 0.0)))} free; autoscaling will stop short of max_replicas"
        for k in _RESOURCES
        if most[k] > float(free.get(k, 0.0)) + 1e-9
    ]


def _unplaceable(asks: list[ReplicaAsk], node_free: list[dict[str, float]]) -> list[str]:
    """First-fit-decreasing of the replicas at start onto the nodes' free resources: who finds no node."""
    nodes = [{k: float(n.get(k, 0.0)) for k in _RESOURCES} for n in node_free]
    replicas = sorted((a for a in asks for _ in range(a.start)), key=lambda a: (-a.per_replica["GPU"], -a.per_replica["CPU"]))
    missing: list[str] = []
    for a in replicas:
        for node in nodes:
            if all(a.per_replica[k] <= node[k] + 1e-9 for k in _RESOURCES):
                for k in _RESOURCES:
                    node[k] -= a.per_replica[k]
                break
        else:
            if a.deployment not in missing:
                missing.append(a.deployment)
    return missing


def cluster_free() -> tuple[dict[str, float], list[dict[str, float]]]:
    """Free logical resources of the connected Ray cluster: summed, and per alive node."""
    import ray

    free = {k: float(v) for k, v in ray.available_resources().items()}
    per_node: list[dict[str, float]] = []
    try:
        from ray._private.state import available_resources_per_node

        per_node = [{k: float(v) for k, v in res.items()} for res in available_resources_per_node().values()]
    except Exception:  # noqa: BLE001 - private API: the summed check still runs
        per_node = []
    return free, per_node
