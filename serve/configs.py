"""Pydantic configuration of the ICMA Serve application: one validated object per deployment.

`ICMAServingArgs` is what `build_icma_app(args)` validates first; the same dict sits under
`args:` of `configs/serve/icma_app.yaml`. Every field carries a description, and every error
message says what to change.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TASKS = ("mol2cap", "cap2mol")
Task = Literal["mol2cap", "cap2mol"]
Strategy = Literal["code", "probabilistic", "top"]

# serve.deployment(...) keywords a user may override per deployment (anything else is a typo).
ALLOWED_DEPLOYMENT_OPTIONS = frozenset(
    {
        "name",
        "num_replicas",
        "autoscaling_config",
        "ray_actor_options",
        "max_ongoing_requests",
        "max_queued_requests",
        "max_replicas_per_node",
        "health_check_period_s",
        "health_check_timeout_s",
        "graceful_shutdown_wait_loop_s",
        "graceful_shutdown_timeout_s",
        "placement_group_bundles",
        "placement_group_strategy",
        "logging_config",
        "backpressure_config",
    }
)

# GeneratorConfig fields applied in place by Generator.reconfigure (Serve user_config); the others restart the replica.
GENERATOR_USER_CONFIG = frozenset({"adapters", "default_adapter", "max_batch_size", "batch_wait_timeout_s", "adapters_version"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class _WithDeployment(_Strict):
    deployment_options: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Overrides merged last over the module defaults and the class's get_deployment_options(): any "
            "serve.deployment keyword (autoscaling_config, ray_actor_options, max_ongoing_requests, "
            "max_queued_requests, ...)."
        ),
    )

    @field_validator("deployment_options")
    @classmethod
    def _known_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - ALLOWED_DEPLOYMENT_OPTIONS)
        if unknown:
            raise ValueError(
                f"unknown deployment option(s) {unknown}; allowed: {sorted(ALLOWED_DEPLOYMENT_OPTIONS)}"
            )
        return value


class PoolConfig(_Strict):
    """Where the retrieval pool (the molecules and captions examples come from) lives."""

    path: str = Field(description="Pool records file (ChEBI-20 style TSV `CID<TAB>SMILES<TAB>description`).")
    limit: int | None = Field(default=None, ge=1, description="Keep only the first N rows (quick starts).")


class TextRetrieverConfig(_Strict):
    """BM25 over captions: the cap2mol retriever (query = caption)."""

    backend: Literal["bm25s", "elasticsearch"] = Field(
        default="bm25s", description="`bm25s`: embedded in the replica; `elasticsearch`: a live ES cluster at `url`."
    )
    tokenizer: str = Field(default="standard", description="Analyzer / tokenizer name passed to build_bm25_index.")
    url: str | None = Field(
        default_factory=lambda: os.environ.get("RAY_ICMA_ES_URL"),
        description="Elasticsearch URL (backend=elasticsearch only); defaults to $RAY_ICMA_ES_URL, as the cluster/ pods set it.",
    )
    index_name: str = Field(
        default="icma-serve-captions", description="Elasticsearch alias the replica (re)indexes the pool captions under."
    )
    request_timeout_s: float = Field(
        default=5.0, gt=0, description="Elasticsearch per-request timeout: a hung cluster fails fast (503), not after 30 s."
    )
    max_retries: int = Field(default=1, ge=0, le=10, description="Elasticsearch client retries per request.")
    build: Literal["if_missing", "never"] = Field(
        default="if_missing",
        description=(
            "Elasticsearch: `if_missing` attaches to the alias when it holds this pool (and index_version), and builds "
            "it under a lock (one replica builds, the others wait) when it is missing or holds another index_version; "
            "`never` only attaches (the index job builds it)."
        ),
    )
    build_lock_stale_s: float = Field(
        default=30.0, gt=0, description="A build lock not refreshed for this long belongs to a dead replica and is taken over."
    )
    build_wait_s: float = Field(
        default=600.0, gt=0, description="How long a replica waits for another replica's build before giving up (503)."
    )

    @model_validator(mode="after")
    def _es_needs_url(self) -> "TextRetrieverConfig":
        if self.backend == "elasticsearch" and not self.url:
            raise ValueError("retriever.text.url is required when backend is 'elasticsearch' (e.g. http://127.0.0.1:9200)")
        return self


class MoleculeRetrieverConfig(_Strict):
    """Molecule similarity over SMILES: the mol2cap retriever (query = SMILES)."""

    kind: Literal["morgan", "topological", "gnn"] = Field(
        default="morgan",
        description=(
            "`morgan`: Morgan r=2 Tanimoto; `topological`: RDKit topological fingerprint (what MolReGPT/ICMA call "
            "'morgan'); `gnn`: GNN encoder + FAISS."
        ),
    )
    encoder_path: str | None = Field(default=None, description="GNN encoder checkpoint (kind=gnn).")
    faiss_dir: str | None = Field(
        default=None, description="Saved FaissIndex over the pool, same row order as the pool (kind=gnn)."
    )

    @model_validator(mode="after")
    def _gnn_needs_files(self) -> "MoleculeRetrieverConfig":
        if self.kind == "gnn" and not (self.encoder_path and self.faiss_dir):
            raise ValueError("retriever.molecule.kind='gnn' needs both encoder_path and faiss_dir")
        return self


class RetrieverConfig(_WithDeployment):
    """The Retriever deployment. Everything but `placement`/`deployment_options` is its user_config: changing it
    and re-deploying swaps the index in place (Serve calls Retriever.reconfigure), without dropping requests."""

    pool: PoolConfig = Field(description="The retrieval pool.")
    text: TextRetrieverConfig = Field(default_factory=TextRetrieverConfig, description="Caption BM25 (cap2mol).")
    molecule: MoleculeRetrieverConfig = Field(
        default_factory=MoleculeRetrieverConfig, description="Molecule similarity (mol2cap)."
    )
    candidate_k: int = Field(default=10, ge=1, le=100, description="Candidates fetched before re-ranking (ICMA: 10).")
    index_version: str = Field(default="v1", description="Label of this index build; echoed in responses.")
    placement: Literal["deployment", "ingress"] = Field(
        default="ingress",
        description=(
            "`ingress` (default, the faster one measured in benchmarks/results/serve_load.md): run in-process inside "
            "the ingress replica, one hop instead of three; `deployment`: its own autoscaled deployment behind a "
            "DeploymentHandle (when retrieval needs more CPU or memory than an ingress replica should hold)."
        ),
    )

    def user_config(self) -> dict[str, Any]:
        return self.model_dump(exclude={"placement", "deployment_options"}, mode="json")


class RerankerConfig(_WithDeployment):
    """The Reranker deployment: ICMA's sequence reversal + random-walk selection, seeded per request."""

    default_strategy: Strategy = Field(
        default="code", description="select_examples strategy when a request names none (ICMA's released code: `code`)."
    )
    default_n_shot: dict[Task, int] = Field(
        default_factory=lambda: {"mol2cap": 2, "cap2mol": 4},
        description="Examples per prompt when a request names none (ICMA's released models: 2 and 4).",
    )
    p_take: float = Field(default=0.5, ge=0.0, le=1.0, description="Random-walk probability of taking a candidate.")
    reverse: bool = Field(default=True, description="Sequence reversal: most similar example last, next to the query.")
    start_pos: int = Field(default=0, ge=0, description="Skip this many top hits (1 when the query is in the pool).")
    placement: Literal["deployment", "ingress"] = Field(
        default="ingress",
        description="`ingress` (default: ~20 us of pure Python per call, no reason for a hop) or `deployment` (own replicas).",
    )


class GeneratorConfig(_WithDeployment):
    """The Generator deployment: one base model, several LoRA adapters, @serve.batch dynamic batching."""

    model: str = Field(description="Base model: a local directory or a Hub id (load_causal_lm).")
    gguf_file: str | None = Field(default=None, description="GGUF file inside `model` to load (e.g. SmolLM2 Q4_1).")
    adapters: dict[str, str] = Field(
        default_factory=dict, description="LoRA adapters served on the base model: {name: adapter directory}."
    )
    default_adapter: dict[Task, str | None] = Field(
        default_factory=dict, description="Adapter used per task when a request names none (None: base model)."
    )
    device: str = Field(default="auto", description="`auto` (GPU when present), `cpu` or `cuda`.")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        default="auto",
        description="ray_icma.precision: `auto` = bf16 where the hardware computes it natively (CUDA, AMX/AVX512-BF16 "
        "CPUs), else fp32.",
    )
    max_batch_size: int = Field(
        default=8, ge=1, le=256, description="@serve.batch: most prompts per forward pass (1 turns batching off)."
    )
    batch_wait_timeout_s: float = Field(
        default=0.02, ge=0.0, le=5.0, description="@serve.batch: how long the first prompt waits for company."
    )
    max_new_tokens: int = Field(default=64, ge=1, le=1024, description="Default new tokens when a request names none.")
    num_beams: int = Field(default=1, ge=1, le=8, description="Beams (ICMA: 1).")
    cutoff_len: int = Field(default=1024, ge=64, description="Prompt token budget; examples are dropped to fit.")
    adapters_version: str = Field(default="v1", description="Label of this adapter set; echoed in responses.")

    @model_validator(mode="after")
    def _defaults_exist(self) -> "GeneratorConfig":
        for task, name in self.default_adapter.items():
            if name is not None and name not in self.adapters:
                raise ValueError(
                    f"generator.default_adapter[{task!r}] = {name!r} is not in generator.adapters {sorted(self.adapters)}"
                )
        return self

    def user_config(self) -> dict[str, Any]:
        """What a re-deploy applies in place (Generator.reconfigure): adapters load/swap/unload on the live base."""
        return self.model_dump(include=set(GENERATOR_USER_CONFIG), mode="json")

    def replica_config(self) -> dict[str, Any]:
        """The rest: what the replica is built from (a change restarts it, the base model reloads)."""
        return self.model_dump(exclude=set(GENERATOR_USER_CONFIG), mode="json")


class AuthConfig(_Strict):
    """API keys checked in the ingress (serve/auth.py). Keys live in the replicas' environment, never in this file."""

    enabled: bool = Field(
        default=False,
        description="Require a key on every route but /healthz, /readyz, /docs, /openapi.json; /admin/* needs an admin key.",
    )
    keys_env: str = Field(default="RAY_ICMA_API_KEYS", description="Env var holding `name:key,name:key` (a Secret).")
    admin_keys_env: str = Field(default="RAY_ICMA_ADMIN_KEYS", description="Env var holding the admin keys, same format.")
    rate_per_s: float | None = Field(
        default=20.0, gt=0, description="Per-key token-bucket rate per ingress replica (null: no limit); past it 429 + Retry-After."
    )
    burst: int = Field(default=40, ge=1, description="Per-key bucket size: requests a key may send at once.")


class AdmissionConfig(_Strict):
    """Admission control at the ingress: past a limit of requests in flight on an ingress replica, a request is answered
    503 + Retry-After at once, before its body is read or any stage works on it: generation requests by the ingress's
    own check (serve/admission.py), all API requests by Serve's proxy with options derived from the same limit
    (serve.builder), so Serve never queues much more than admission lets in nor refuses what it admitted."""

    enabled: bool = Field(default=True, description="Refuse past the limits below (false: Serve's own queue limits only).")
    max_in_flight: int = Field(
        default=16, ge=1, le=4096,
        description="API requests (/v1/*) in flight per ingress replica (16: measured in benchmarks/results/serve_load.md; "
        "32 let the 2x-overload latency grow 3x). Serve enforces it in the proxy, the cheapest refusal: the ingress's "
        "max_ongoing_requests = this, max_queued_requests = this (a burst buffer), autoscaling target_ongoing_requests = 1/2 "
        "(unless deployment_options set them; the ingress's own check then refuses past this limit).",
    )
    max_generations_in_flight: int | None = Field(
        default=None, ge=1, le=4096,
        description="Generation requests (/v1/mol2cap, /v1/cap2mol and their /batch; a batch counts once) in flight per "
        "ingress replica. null: the Generator's capacity, its max_ongoing_requests x its max replicas; the Generator's "
        "max_queued_requests is set to this limit + 2 (the ingress's control calls) unless its deployment_options set it.",
    )


class IngressConfig(_WithDeployment):
    """The FastAPI ingress: limits and timeouts at the edge."""

    auth: AuthConfig = Field(default_factory=AuthConfig, description="API keys and per-key rate limits.")
    admission: AdmissionConfig = Field(
        default_factory=AdmissionConfig, description="In-flight limits per ingress replica; past them 503 + Retry-After at once."
    )

    max_batch_items: int = Field(default=32, ge=1, le=1024, description="Largest accepted batch request.")
    request_timeout_s: float = Field(
        default=120.0, gt=0, description="Per-stage timeout on downstream calls; past it the route answers 504."
    )
    retry_after_s: int = Field(default=1, ge=0, description="Retry-After header sent with every 503.")


class ICMAServingArgs(_Strict):
    """Everything `build_icma_app` needs: one section per deployment."""

    base_dir: str | None = Field(
        default=None,
        description=(
            "Relative paths are resolved against this directory (default: $RAY_ICMA_BASE_DIR, else the current "
            "directory; `ray-icma serve` sets it to the folder above configs/ for a config kept in a configs/ "
            "folder, as the repository's and the packaged ones are)."
        ),
    )
    retriever: RetrieverConfig = Field(description="Retriever deployment.")
    reranker: RerankerConfig = Field(default_factory=RerankerConfig, description="Reranker deployment.")
    generator: GeneratorConfig | None = Field(
        default=None, description="Generator deployment; omit for a retrieval-only app (generation routes answer 501)."
    )
    ingress: IngressConfig = Field(default_factory=IngressConfig, description="HTTP ingress.")

    @model_validator(mode="after")
    def _resolve_paths(self) -> "ICMAServingArgs":
        from ray_icma.env import base_dir  # RAY_ICMA_BASE_DIR (RAY_ICMA_HOME is the cache root, not a path base)

        base = Path(self.base_dir or base_dir() or Path.cwd())  # never the source tree: site-packages once installed

        def resolve(p: str | None, hub_ok: bool = False) -> str | None:
            if p is None or "://" in p:
                return p
            path = Path(p).expanduser()
            if path.is_absolute():
                return str(path)
            candidate = base / path
            # Hub ids ("org/model") stay as they are when no such local path exists.
            return p if hub_ok and not candidate.exists() and not p.startswith(".") else str(candidate)

        self.retriever.pool.path = resolve(self.retriever.pool.path)  # type: ignore[assignment]
        self.retriever.molecule.encoder_path = resolve(self.retriever.molecule.encoder_path)
        self.retriever.molecule.faiss_dir = resolve(self.retriever.molecule.faiss_dir)
        if self.generator is not None:
            self.generator.model = resolve(self.generator.model, hub_ok=True)  # type: ignore[assignment]
            self.generator.adapters = {k: resolve(v) for k, v in self.generator.adapters.items()}  # type: ignore[misc]
        return self
