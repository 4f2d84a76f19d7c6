"""Default Serve options per deployment, and why. Merge order in the builder:
these defaults < the class's get_deployment_options(cfg) < the config's deployment_options.

Measured on the 2-core dev box (shared/README "Ray Serve on these 2 cores"): with Serve's default
max_ongoing_requests=5, 20 clients through ingress -> handle -> bm25s collapsed to 22 req/s (p50
0.9 s) because callers back off when every replica is "full"; with 64 the same app did 160 req/s.
So every CPU-light stage admits many requests per replica and only the model is held tight.
"""
from __future__ import annotations

from typing import Any

__all__ = [
    "DEFAULT_INGRESS_OPTIONS",
    "DEFAULT_RETRIEVER_OPTIONS",
    "DEFAULT_RERANKER_OPTIONS",
    "DEFAULT_GENERATOR_OPTIONS",
    "BACKPRESSURE_RETRY_AFTER_S",
    "GENERATOR_CONTROL_CALLS",
]

# Every 503 caused by a full queue carries this Retry-After (seconds).
BACKPRESSURE_RETRY_AFTER_S = 1

# Control calls (`info`, for /readyz and /admin/info) an ingress replica sends the Generator at once; more wait in the
# ingress. They share the Generator's per-caller Serve queue with generation, so that queue holds the admitted
# generations plus these: while the Generator's replica is unroutable (a reconfigure on an adapter swap puts it in
# UPDATING), every admitted request and every probe queues at the caller, and a queue of the generation limit alone
# refused an admitted request (503) when a probe was queued too (CI, tests/serve/test_adapter_swap.py).
GENERATOR_CONTROL_CALLS = 2

DEFAULT_INGRESS_OPTIONS: dict[str, Any] = {
    # max_ongoing_requests, max_queued_requests and the autoscaling target come from ingress.admission.max_in_flight
    # (serve.builder.ingress_options): past it Serve's proxy refuses (503 + Retry-After) after a queue of the same size.
    # A deep proxy queue (64) turned overload into multi-second latencies, and refusals written by the ingress replica
    # cost the 2-core box its goodput, in the 2x-rate benchmark (benchmarks/results/serve_load.md).
    "backpressure_config": {"status_code": 503, "retry_after_s": BACKPRESSURE_RETRY_AFTER_S},
    "autoscaling_config": {"min_replicas": 1, "max_replicas": 2, "initial_replicas": 1},
    "ray_actor_options": {"num_cpus": 0.5},
    "graceful_shutdown_timeout_s": 20,  # rolling updates drain in-flight requests before stopping a replica
}

DEFAULT_RETRIEVER_OPTIONS: dict[str, Any] = {
    # bm25s / fingerprint search over a small pool is ~1 ms of CPU: admitting 64 per replica costs
    # nothing and avoids handle back-off; a slow ES is bounded by the ingress timeout instead.
    "max_ongoing_requests": 64,
    # Queued handle calls beyond this fail fast with BackPressureError -> 503 + Retry-After.
    "max_queued_requests": 256,
    "autoscaling_config": {"min_replicas": 1, "max_replicas": 2, "initial_replicas": 1, "target_ongoing_requests": 32},
    "ray_actor_options": {"num_cpus": 0.5},
    "graceful_shutdown_timeout_s": 20,
}

DEFAULT_RERANKER_OPTIONS: dict[str, Any] = {
    # Microseconds of pure Python per call: one replica serves everything; never the bottleneck.
    "max_ongoing_requests": 128,
    "max_queued_requests": 512,
    "autoscaling_config": {"min_replicas": 1, "max_replicas": 2, "initial_replicas": 1, "target_ongoing_requests": 64},
    "ray_actor_options": {"num_cpus": 0.1},
}

DEFAULT_GENERATOR_OPTIONS: dict[str, Any] = {
    # Overwritten by Generator.get_deployment_options from max_batch_size (2 batches in flight):
    # more would only queue inside the replica where back-pressure cannot see it.
    "max_ongoing_requests": 16,
    # max_queued_requests (per caller) = what an ingress replica admits for generation (serve.builder.generation_limit)
    # + GENERATOR_CONTROL_CALLS, so an admitted request is never refused later; the ingress refuses the rest before any work.
    "autoscaling_config": {"min_replicas": 1, "max_replicas": 2, "initial_replicas": 1, "target_ongoing_requests": 8},
    "ray_actor_options": {"num_cpus": 1},
    # Model replicas take long to start; give in-flight batches time to finish on rolling updates.
    "graceful_shutdown_timeout_s": 60,
    "health_check_period_s": 10,
}
