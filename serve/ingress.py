"""The HTTP ingress (FastAPI): validates requests, calls retrieve -> re-rank -> generate through
DeploymentHandles (or in-process objects when a stage is placed in the ingress), and turns every
failure into a specific HTTP answer: 422 for bad input, 503 + Retry-After for a stage that is down
or over its queue limit, 504 for a stage that timed out. Never a traceback.
"""
# No `from __future__ import annotations` here: @serve.ingress copies the class, and FastAPI must
# resolve the route annotations (request models) as real objects, not strings.
import asyncio
import logging
import time
import uuid
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from ray import serve
from starlette.exceptions import HTTPException as StarletteHTTPException

from ray_icma import __version__
from serve.api_models import (
    Cap2MolBatchRequest,
    Cap2MolBatchResponse,
    Cap2MolRequest,
    Cap2MolResponse,
    ErrorResponse,
    Example,
    HealthResponse,
    Mol2CapBatchRequest,
    Mol2CapBatchResponse,
    Mol2CapRequest,
    Mol2CapResponse,
    ReadyResponse,
    RetrieveBatchRequest,
    RetrieveBatchResponse,
    RetrieveRequest,
    RetrieveResponse,
)
from serve.configs import ICMAServingArgs
from serve.constants import GENERATOR_CONTROL_CALLS
from serve import admission, auth
from serve.auth import KeyGuard
from serve.errors import BadRequest, StageUnavailable

__all__ = ["ICMAIngress", "app"]

log = logging.getLogger("ray.serve")

REQUEST_ID_HEADER = "X-Request-ID"

app = FastAPI(
    title="ray-icma",
    version=__version__,
    description=(
        "In-Context Molecule Adaptation: retrieve similar pool examples, re-rank them (random walk + sequence "
        "reversal), and generate a caption (mol2cap) or a molecule (cap2mol) with a LoRA-tuned LLM."
    ),
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body could not be read (not UTF-8 / not JSON at all)."},
    401: {"model": ErrorResponse, "description": "ingress.auth is enabled and no or an unknown API key was sent."},
    429: {"model": ErrorResponse, "description": "This API key is over its rate limit; retry after Retry-After s."},
    501: {"model": ErrorResponse, "description": "This app was deployed without a generator."},
    503: {"model": ErrorResponse, "description": "The ingress is at its admission limit, or a stage is down or over its "
          "queue limit; retry after Retry-After s."},
    504: {"model": ErrorResponse, "description": "A stage did not answer within the request timeout."},
}


class _HTTPFailure(Exception):
    """Carries a ready HTTP answer from deep in a route to the exception handler."""

    def __init__(self, status: int, detail: Any, retry_after: int | None = None):
        super().__init__(detail)
        self.status, self.detail, self.retry_after = status, detail, retry_after


@app.exception_handler(_HTTPFailure)
async def _http_failure(request: Request, exc: _HTTPFailure) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)


@app.exception_handler(StarletteHTTPException)
async def _http_exception(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """FastAPI's own HTTP errors, with a message that says what to fix for unreadable bodies."""
    if exc.status_code == 400 and "parsing the body" in str(exc.detail):
        return JSONResponse({"detail": "the request body could not be parsed: send UTF-8 JSON"}, status_code=400)
    return await http_exception_handler(request, exc)


@app.exception_handler(Exception)
async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Last line of defence: a bug answers a JSON 500 naming the request id, never a traceback."""
    rid = _request_id(request)
    log.error("request %s %s failed unexpectedly: %s: %s", rid, request.url.path, type(exc).__name__, exc, exc_info=exc)
    return JSONResponse({"detail": f"internal error (request id {rid}); it was logged"}, status_code=500)


def _request_id(request: Request) -> str:
    """The request id: Serve's (the proxy adopts the caller's X-Request-ID, echoes it in the response
    and writes it in every log line of the request), else the caller's header, else a fresh one.

    Plain function, not an HTTP middleware: Starlette's BaseHTTPMiddleware costs ~1 ms a request here.
    """
    return _serve_request_id() or request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex


def _serve_request_id() -> str | None:
    try:
        return serve.context._get_serve_request_context().request_id or None
    except Exception:  # noqa: BLE001 - private API; a fresh id is fine
        return None


def _route_path(scope: dict) -> str:
    """The request's path within the app (the proxy's route prefix, ``root_path``, removed)."""
    path, root = scope.get("path", "/"), scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):] or "/"
    return path


class _KeyCheck:
    """Pure ASGI middleware (no BaseHTTPMiddleware: ~1 ms a request here): API key and per-key rate limit
    before the body is read, so an unauthenticated caller never reaches validation or a stage."""

    def __init__(self, asgi_app: Any):
        self.app = asgi_app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        guard, metrics = auth.installed()  # set by ICMAIngress.__init__ (None: ingress.auth is off)
        if guard is None or scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        verdict = guard.check(path, headers)
        if verdict is None:
            await self.app(scope, receive, send)
            return
        if metrics is not None:
            metrics.refusal({401: "auth", 403: "auth", 429: "rate_limit"}.get(verdict.status, str(verdict.status)))
        response = JSONResponse({"detail": verdict.detail}, status_code=verdict.status, headers=verdict.headers)
        await response(scope, receive, send)


class _Admission:
    """Pure ASGI middleware: admission control (serve/admission.py). Counts this replica's requests in flight and
    answers 503 + Retry-After past the limit before the body is read or a stage is called, so a refusal costs
    microseconds here and the admitted requests keep their latency. Inside _KeyCheck: only keyed callers count."""

    def __init__(self, asgi_app: Any):
        self.app = asgi_app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        gate, retry_after = admission.installed()  # set by ICMAIngress.__init__ (None: admission is off)
        if gate is None or scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        kind = gate.kind(path)
        refusal = gate.enter(kind)
        if refusal is None:
            try:
                await self.app(scope, receive, send)
            finally:
                gate.leave(kind)
            return
        metrics = auth.installed()[1]
        if metrics is not None:
            metrics.refusal("admission")
        response = JSONResponse({"detail": refusal.detail}, status_code=503, headers={"Retry-After": str(retry_after)})
        await response(scope, receive, send)


# Starlette runs the last-added middleware first: keys are checked, then admission.
app.add_middleware(_Admission)
app.add_middleware(_KeyCheck)


def _validation_422(field: str, message: str) -> _HTTPFailure:
    """A 422 in FastAPI's own validation format, so every 422 of the API has one schema."""
    return _HTTPFailure(422, [{"loc": ["body", field], "msg": message, "type": "value_error"}])


async def _gather(coros: list) -> list:
    """All items or the first failure (the others are cancelled: a batch answers as one)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        raise


def _is_handle(target: Any) -> bool:
    from ray.serve.handle import DeploymentHandle

    return isinstance(target, DeploymentHandle)


def _message(exc: BaseException) -> str:
    """The original message, without Ray's RayTaskError wrapping and traceback."""
    cause = getattr(exc, "cause", None)
    base = cause if isinstance(cause, BaseException) else exc
    return str(base.args[0]) if base.args else str(base)


def _field_of(exc: BaseException) -> str:
    text = _message(exc)
    if "adapter" in text:
        return "adapter"
    if "strategy" in text:
        return "strategy"
    return "query"


def _example(task: str, cand: dict[str, Any], rank: int) -> Example:
    inp, out = (cand["smiles"], cand["text"]) if task == "mol2cap" else (cand["text"], cand["smiles"])
    return Example(cid=str(cand["cid"]), input=inp, output=out, score=float(cand["score"]), rank=rank)


def _redacted(value: Any) -> Any:
    """The config as the admin sees it: environment values (keys, passwords) replaced."""
    if isinstance(value, dict):
        return {k: ({n: "<redacted>" for n in v} if k == "env_vars" and isinstance(v, dict) else _redacted(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _canonical(smiles: str) -> str | None:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    if not smiles:
        return None
    mol = Chem.MolFromSmiles(smiles)
    return Chem.MolToSmiles(mol) if mol is not None else None


class _Metrics:
    """The app's own series (Ray Serve custom metrics, exported with Serve's on each node's metrics port).
    Requests by route/status and end-to-end latency are Serve's own (ray_serve_num_http_requests,
    ray_serve_http_request_latency_ms): not repeated here."""

    def __init__(self):
        from ray.serve import metrics

        self._latency = metrics.Histogram(
            "icma_stage_latency_ms",
            description="Latency of each ICMA stage (retrieve, rerank, generate) seen from the ingress.",
            boundaries=[1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000],
            tag_keys=("stage",),
        )
        self._refusals = metrics.Counter(
            "icma_refusals",
            description="Requests refused on purpose: auth, rate_limit, admission (the ingress at its in-flight limit), "
            "queue_full (a stage past its queue limit), unavailable (a stage down), timeout.",
            tag_keys=("reason",),
        )
        self._adapter = metrics.Counter(
            "icma_adapter_requests", description="Generations per LoRA adapter (base = none) and task.",
            tag_keys=("adapter", "task"),
        )

        from ray.util.metrics import Gauge  # not serve.metrics: its `deployment`/`application` tags are reserved

        self._max_replicas = Gauge(
            "icma_deployment_max_replicas",
            description="max_replicas of each deployment of the app (the ICMAReplicasAtMax alert compares "
            "ray_serve_deployment_replica_healthy with it).",
            tag_keys=("application", "deployment"),
        )

    def max_replicas(self, application: str, plan: dict[str, dict[str, Any]]) -> None:
        for name, opts in plan.items():
            auto = opts.get("autoscaling_config") or {}
            most = auto.get("max_replicas") if auto else opts.get("num_replicas", 1)
            if isinstance(most, int):
                self._max_replicas.set(most, tags={"application": application, "deployment": opts.get("name", name)})

    def stage(self, stage: str, seconds: float) -> None:
        self._latency.observe(1e3 * seconds, tags={"stage": stage})

    def refusal(self, reason: str) -> None:
        self._refusals.inc(tags={"reason": reason})

    def adapter(self, adapter: str | None, task: str) -> None:
        self._adapter.inc(tags={"adapter": adapter or "base", "task": task})


# Defined last on purpose: @serve.ingress copies the class when it is decorated, so every
# module-level helper it uses must already exist at that point.
@serve.ingress(app)
class ICMAIngress:
    """Routes of the ICMA API. Stages are DeploymentHandles, or plain objects when placed in-process."""

    def __init__(self, config: dict, retriever: Any = None, reranker: Any = None, generator: Any = None):
        self._cfg = ICMAServingArgs.model_validate(config)
        ing = self._cfg.ingress
        self._timeout = ing.request_timeout_s
        self._retry_after = ing.retry_after_s
        if retriever is None:  # placement "ingress": built by reconfigure() from this deployment's user_config
            from serve.retriever_deployment import Retriever

            retriever = Retriever()
        if reranker is None:
            from serve.reranker_deployment import Reranker

            reranker = Reranker(self._cfg.reranker.model_dump(mode="json"))
        self._retriever, self._reranker, self._generator = retriever, reranker, generator
        # Bounds the `info` calls to the Generator: its Serve queue has room for these many beside admitted generations
        self._control_slots = asyncio.Semaphore(GENERATOR_CONTROL_CALLS)
        # In-process stages are called inline when they never wait on I/O (embedded bm25s, fingerprints);
        # Elasticsearch or a GNN encoder go to a thread so the event loop keeps serving.
        rcfg = self._cfg.retriever
        self._inline = rcfg.text.backend == "bm25s" and rcfg.molecule.kind != "gnn"
        self._defaults = self._cfg.reranker
        self._metrics = _Metrics()
        keys = ing.auth
        guard = KeyGuard.from_env(keys.keys_env, keys.admin_keys_env, keys.rate_per_s, keys.burst) if keys.enabled else None
        auth.install(guard, self._metrics)
        from serve.builder import admission_limits

        limits = admission_limits(self._cfg)
        gate = admission.Gate(limits["api"], limits["generation"]) if ing.admission.enabled else None
        admission.install(gate, self._retry_after)
        self._admission = limits
        self._plan: tuple[str, dict] | None = None
        try:
            from serve.builder import plan_deployments

            self._plan = (serve.get_replica_context().app_name, plan_deployments(config))
            self._metrics.max_replicas(*self._plan)
        except Exception as exc:  # noqa: BLE001 - outside a Serve replica (unit use): no gauge
            log.debug("no max_replicas gauge: %s", exc)

    @classmethod
    def get_deployment_options(cls, cfg: ICMAServingArgs) -> dict[str, Any]:
        """In-process stages run on the ingress's CPU, so it then asks for a whole core."""
        in_process = cfg.retriever.placement == "ingress"
        return {
            "ray_actor_options": {"num_cpus": 1 if in_process else 0.5},
            # A rolling update (new config) drains a replica: give its in-flight requests the longest they may
            # take (three stages, each up to request_timeout_s), else they are cut with a 500.
            "graceful_shutdown_timeout_s": 3 * cfg.ingress.request_timeout_s,
        }

    def reconfigure(self, user_config: dict) -> None:
        """Builds / hot-swaps an in-process retriever: the new index is built beside the old one."""
        if "retriever" in user_config and not _is_handle(self._retriever):
            self._retriever.reconfigure(user_config["retriever"])

    # -- plumbing --------------------------------------------------------------------------
    async def _generator_info(self) -> dict:
        """The Generator's `info`, at most GENERATOR_CONTROL_CALLS at once (probes never crowd out admitted work)."""
        async with self._control_slots:
            return await self._call("generator", self._generator, "info")

    async def _call(self, stage: str, target: Any, method: str, *args: Any) -> Any:
        """Call a stage (handle or local object), mapping its failures to HTTP answers."""
        from ray.serve.exceptions import BackPressureError

        try:
            if _is_handle(target):
                return await asyncio.wait_for(getattr(target, method).remote(*args), self._timeout)
            if self._inline:  # in-process, CPU-only, sub-millisecond: a thread hop would cost more
                return getattr(target, method)(*args)
            return await asyncio.wait_for(asyncio.to_thread(getattr(target, method), *args), self._timeout)
        except BadRequest as exc:
            raise _validation_422(_field_of(exc), _message(exc)) from None
        except StageUnavailable as exc:
            self._metrics.refusal("unavailable")
            raise _HTTPFailure(503, f"{stage}: {_message(exc)}", self._retry_after) from None
        except BackPressureError as exc:
            self._metrics.refusal("queue_full")
            retry = exc.retry_after_s if exc.retry_after_s is not None else self._retry_after
            raise _HTTPFailure(503, f"{stage} is over its queue limit ({exc.message}); retry later", int(max(1, retry))) from None
        except (asyncio.TimeoutError, TimeoutError):
            self._metrics.refusal("timeout")
            raise _HTTPFailure(504, f"{stage} did not answer within {self._timeout:.0f} s") from None
        except Exception as exc:  # noqa: BLE001 - a crashed / unavailable replica
            self._metrics.refusal("unavailable")
            log.warning("stage %s failed: %s: %s", stage, type(exc).__name__, str(exc)[:500])
            raise _HTTPFailure(
                503, f"{stage} failed ({type(exc).__name__}); a replica may be restarting, retry later", self._retry_after
            ) from None

    async def _contexts(self, task: str, query: str, k: int | None, n_shot: int | None, strategy: str | None,
                        seed: int | None, rid: str, timings: dict[str, float]) -> dict[str, Any]:
        from retrieval.rerank import example_seed

        n_shot = self._defaults.default_n_shot.get(task, 2) if n_shot is None else n_shot  # type: ignore[arg-type]
        strategy = strategy or self._defaults.default_strategy
        seed = example_seed(0, rid) if seed is None else seed
        depth = max(k or 0, self._cfg.retriever.candidate_k)
        t0 = time.perf_counter()
        found = await self._call("retriever", self._retriever, "search", task, [query], depth)
        t1 = time.perf_counter()
        candidates = found["candidates"][0]
        chosen = await self._call("reranker", self._reranker, "select", len(candidates), n_shot, strategy, seed)
        t2 = time.perf_counter()
        timings["retrieve"], timings["rerank"] = 1e3 * (t1 - t0), 1e3 * (t2 - t1)
        self._metrics.stage("retrieve", t1 - t0)
        self._metrics.stage("rerank", t2 - t1)
        examples = [_example(task, candidates[i], i) for i in chosen]
        return {
            "index_version": found["index_version"],
            "candidates": [_example(task, c, r) for r, c in enumerate(candidates[: k or len(candidates)])],
            "examples": examples,
            "n_shot": n_shot,
            "strategy": strategy,
            "seed": seed,
        }

    async def _generate(self, task: str, body: Any, query: str, rid: str, debug: bool) -> dict[str, Any]:
        if self._generator is None:
            raise _HTTPFailure(501, "this app was deployed without a generator (retrieval only); use /v1/retrieve")
        started = time.perf_counter()
        timings: dict[str, float] = {}
        ctx = await self._contexts(task, query, None, body.n_shot, body.strategy, body.seed, rid, timings)
        pairs = [[e.input, e.output] for e in ctx["examples"]]
        t0 = time.perf_counter()
        out = await self._call("generator", self._generator, "generate", task, query, pairs, body.adapter, body.max_new_tokens)
        timings["generate"] = 1e3 * (time.perf_counter() - t0)
        timings["total"] = 1e3 * (time.perf_counter() - started)
        self._metrics.stage("generate", timings["generate"] / 1e3)
        self._metrics.adapter(out["adapter"], task)
        ctx.pop("candidates")
        return {
            **ctx,
            "request_id": rid,
            "adapter": out["adapter"],
            "adapters_version": out["adapters_version"],
            "n_examples_in_prompt": out["n_examples_in_prompt"],
            "answer": out["answer"],
            "timings_ms": timings if debug else None,
        }

    async def _mol2cap(self, body: Mol2CapRequest, rid: str, debug: bool) -> Mol2CapResponse:
        out = await self._generate("mol2cap", body, body.smiles, rid, debug)
        return Mol2CapResponse(caption=out.pop("answer"), **out)

    async def _cap2mol(self, body: Cap2MolRequest, rid: str, debug: bool) -> Cap2MolResponse:
        out = await self._generate("cap2mol", body, body.caption, rid, debug)
        smiles = out.pop("answer")
        canonical = _canonical(smiles)
        return Cap2MolResponse(smiles=smiles, valid=canonical is not None, canonical_smiles=canonical, **out)

    async def _retrieve(self, body: RetrieveRequest, rid: str, debug: bool) -> RetrieveResponse:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        ctx = await self._contexts(body.task, body.query, body.k, body.n_shot, body.strategy, body.seed, rid, timings)
        timings["total"] = 1e3 * (time.perf_counter() - started)
        return RetrieveResponse(task=body.task, request_id=rid, timings_ms=timings if debug else None, **ctx)

    # -- routes ----------------------------------------------------------------------------
    @app.get("/healthz", response_model=HealthResponse, summary="Process is up")
    async def healthz(self) -> HealthResponse:
        return HealthResponse()

    @app.get(
        "/readyz",
        response_model=ReadyResponse,
        responses={503: {"model": ReadyResponse, "description": "Not ready (index/model loading or ES down)."}},
        summary="Indexes and model loaded, Elasticsearch reachable when configured",
    )
    async def readyz(self) -> JSONResponse:
        if self._plan is not None:  # re-export the gauge on every probe, so a late scrape still sees it
            self._metrics.max_replicas(*self._plan)
        try:
            retriever = await self._call("retriever", self._retriever, "status")
        except _HTTPFailure as exc:
            retriever = {"ready": False, "reason": str(exc.detail)}
        generator = None
        if self._generator is not None:
            try:
                generator = await self._generator_info()
            except _HTTPFailure as exc:
                generator = {"ready": False, "reason": str(exc.detail)}
        ready = bool(retriever.get("ready")) and (generator is None or generator.get("ready", True) is not False)
        body = ReadyResponse(ready=ready, retriever=retriever, generator=generator).model_dump()
        headers = None if ready else {"Retry-After": str(self._retry_after)}
        return JSONResponse(body, status_code=200 if ready else 503, headers=headers)

    @app.post("/v1/mol2cap", response_model=Mol2CapResponse, responses=_ERRORS, summary="Caption a molecule")
    async def mol2cap(self, body: Mol2CapRequest, request: Request,
                      debug: bool = Query(False, description="Add per-stage timings_ms.")) -> Mol2CapResponse:
        return await self._mol2cap(body, _request_id(request), debug)

    @app.post("/v1/cap2mol", response_model=Cap2MolResponse, responses=_ERRORS, summary="Design a molecule from a caption")
    async def cap2mol(self, body: Cap2MolRequest, request: Request,
                      debug: bool = Query(False, description="Add per-stage timings_ms.")) -> Cap2MolResponse:
        return await self._cap2mol(body, _request_id(request), debug)

    @app.post("/v1/retrieve", response_model=RetrieveResponse, responses=_ERRORS, summary="In-context examples only")
    async def retrieve(self, body: RetrieveRequest, request: Request,
                       debug: bool = Query(False, description="Add per-stage timings_ms.")) -> RetrieveResponse:
        return await self._retrieve(body, _request_id(request), debug)

    # One batch path for the three routes: each item runs as its single route with id `<request id>-<i>`,
    # concurrently; the first failure fails the batch (the others are cancelled).
    async def _batch(self, one: Any, body: Any, request: Request, debug: bool) -> dict[str, list]:
        rid = _request_id(request)
        return {"items": await _gather([one(b, f"{rid}-{i}", debug) for i, b in enumerate(body.items)])}

    @app.post("/v1/mol2cap/batch", response_model=Mol2CapBatchResponse, responses=_ERRORS, summary="Caption molecules")
    async def mol2cap_batch(self, body: Mol2CapBatchRequest, request: Request,
                            debug: bool = Query(False, description="Add per-stage timings_ms.")) -> dict[str, list]:
        return await self._batch(self._mol2cap, body, request, debug)

    @app.post("/v1/cap2mol/batch", response_model=Cap2MolBatchResponse, responses=_ERRORS, summary="Design molecules")
    async def cap2mol_batch(self, body: Cap2MolBatchRequest, request: Request,
                            debug: bool = Query(False, description="Add per-stage timings_ms.")) -> dict[str, list]:
        return await self._batch(self._cap2mol, body, request, debug)

    @app.post("/v1/retrieve/batch", response_model=RetrieveBatchResponse, responses=_ERRORS, summary="Examples, batched")
    async def retrieve_batch(self, body: RetrieveBatchRequest, request: Request,
                             debug: bool = Query(False, description="Add per-stage timings_ms.")) -> dict[str, list]:
        return await self._batch(self._retrieve, body, request, debug)

    # -- admin (an admin key when ingress.auth is enabled; otherwise 403) --------------------------
    @app.get("/admin/info", summary="Effective config and stage versions (admin key)", responses={
        401: _ERRORS[401], 403: {"model": ErrorResponse, "description": "Not an admin key, or auth is off."}})
    async def admin_info(self) -> JSONResponse:
        if auth.installed()[0] is None:
            raise _HTTPFailure(403, "admin routes need ingress.auth.enabled and an admin key (RAY_ICMA_ADMIN_KEYS)")
        generator = await self._generator_info() if self._generator is not None else None
        retriever = await self._call("retriever", self._retriever, "status")
        return JSONResponse({"config": _redacted(self._cfg.model_dump(mode="json")), "retriever": retriever,
                             "generator": generator, "admission_limits": self._admission})
