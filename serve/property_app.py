"""`POST /v1/property/{dataset}`: per-label probabilities for a molecule (ICMA's MoleculeNet tasks).

A Serve application of its own (route prefix ``/v1/property``), so it deploys next to the ICMA
caption app on the same HTTP proxy without touching it::

    applications:
      - name: icma-property
        route_prefix: /v1/property
        import_path: serve.property_app:build_property_app
        args: {datasets: [bbbp, tox21], split: scaffold, adapter: runs/.../adapter, data_root: ../shared/data/moleculenet}

Request ``{"smiles": "CCO"}`` (or a list of up to 64); answer: for each molecule, P(Yes) per label of
the set (``ray_icma.property.predict``: nearest training molecules -> ICMA prompts -> Yes/No
scoring). 422 for a data set that is not a MoleculeNet set or not served here, and for a SMILES
RDKit cannot parse (the message names it); the predictor runs in its own deployment.
"""
# No `from __future__ import annotations`: FastAPI must resolve the request models as real objects.
import asyncio
import logging
from typing import Any, Callable, Union

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from ray import serve

__all__ = ["PropertyRequest", "PropertyResponse", "PropertyPredictorDeployment", "PropertyIngress", "make_property_api", "build_property_app"]

log = logging.getLogger("ray.serve")

MAX_MOLECULES = 64


class PropertyRequest(BaseModel):
    smiles: Union[str, list[str]] = Field(description="One SMILES, or a list of up to 64.", examples=["CC(=O)Oc1ccccc1C(=O)O"])


class MoleculeProbabilities(BaseModel):
    smiles: str
    probabilities: dict[str, float] = Field(description="P(Yes) per label column of the set.")
    neighbours: list[str] = Field(description="Training rows shown as examples (ids, most similar first).")


class PropertyResponse(BaseModel):
    dataset: str
    label_names: dict[str, str] = Field(description="Plain-language name of every label column.")
    results: list[MoleculeProbabilities]


def _unprocessable(detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=422)


async def _call(target: Any, method: str, *args: Any) -> Any:
    """A DeploymentHandle method (awaited) or a plain object's method (run in a thread)."""
    bound = getattr(target, method)
    if hasattr(bound, "remote"):  # a DeploymentHandle's method
        return await bound.remote(*args)
    return await asyncio.to_thread(bound, *args)


def make_property_api(predictor: Callable[[], Any]) -> FastAPI:
    """The FastAPI app; ``predictor()`` returns the predictor (a DeploymentHandle in Serve, an object in tests)."""
    from ray_icma.property.datasets import PROPERTY_SETS, get_set

    api = FastAPI(title="ray-icma property prediction", description=__doc__.split("\n\n")[0])

    @api.get("/", summary="Data sets served")
    async def served() -> dict:
        return {"datasets": await _call(predictor(), "datasets")}

    @api.post("/{dataset}", response_model=PropertyResponse, summary="Per-label probabilities for molecules",
              responses={422: {"description": "Unknown data set, or a SMILES RDKit cannot parse."}})
    async def predict(dataset: str, body: PropertyRequest):
        from ray_icma.data.smiles_check import smiles_error

        name = dataset.lower()
        if name not in PROPERTY_SETS:
            return _unprocessable(f"unknown dataset {dataset!r}; MoleculeNet sets: {', '.join(PROPERTY_SETS)}")
        served_sets = await _call(predictor(), "datasets")
        if name not in served_sets:
            return _unprocessable(f"dataset {name!r} is not served by this app; it serves {', '.join(served_sets) or 'none'}")
        smiles = [body.smiles] if isinstance(body.smiles, str) else list(body.smiles)
        if not smiles or len(smiles) > MAX_MOLECULES:
            return _unprocessable(f"send 1 to {MAX_MOLECULES} SMILES, got {len(smiles)}")
        for i, s in enumerate(smiles):
            reason = smiles_error(s.strip()) if s.strip() else "empty SMILES"
            if reason is not None:
                where = "" if isinstance(body.smiles, str) else f"smiles[{i}] "
                return _unprocessable(f"{where}{s!r} is not a valid SMILES: {reason}")
        results = await _call(predictor(), "predict", name, smiles)
        spec = get_set(name)
        return PropertyResponse(dataset=name, label_names=dict(zip(spec.labels, spec.label_names)), results=results)

    return api


class PropertyPredictorDeployment:
    """Holds the model (+ adapter) and each served set's training pool (`PropertyPredictor`).

    Args:
        config: ``datasets`` (names), ``split`` (icma/scaffold), ``data_root``, ``model``, ``adapter``,
            ``n_shot``, ``k``, ``retriever``, ``batch_size``, ``precision``.
    """

    def __init__(self, config: dict) -> None:
        from ray_icma.property.predict import PropertyPredictor
        from ray_icma.property.splits import load_property_splits

        pools = {}
        for name in config["datasets"]:
            splits, _ = load_property_splits(name, config.get("split", "scaffold"), root=config.get("data_root"))
            pools[name] = splits["train"]
        self.predictor = PropertyPredictor(
            pools, model=config.get("model", "smollm2-135m"), adapter=config.get("adapter"), n_shot=config.get("n_shot", 2),
            k=config.get("k", 12), retriever=config.get("retriever", "morgan"), batch_size=config.get("batch_size", 8),
            precision=config.get("precision", "fp32"),
        )

    def datasets(self) -> list[str]:
        return self.predictor.datasets

    def predict(self, dataset: str, smiles: list[str]) -> list[dict]:
        return self.predictor.predict(dataset, smiles)


def _api_in_serve() -> FastAPI:
    def predictor():
        app_name = serve.get_replica_context().app_name
        return serve.get_deployment_handle("PropertyPredictor", app_name=app_name)

    return make_property_api(predictor)


@serve.ingress(_api_in_serve)
class PropertyIngress:
    """HTTP front of the property app; binding the predictor makes Serve deploy it."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor


def build_property_app(args: dict) -> Any:
    """The bound property application: ``PropertyIngress`` -> ``PropertyPredictor`` (see the module docstring).

    ``args``: the `PropertyPredictorDeployment` config, plus optional ``predictor_options`` /
    ``ingress_options`` (Serve deployment options).
    """
    args = dict(args)
    if not args.get("datasets"):
        raise ValueError("args.datasets must name at least one MoleculeNet set (bace, bbbp, clintox, hiv, sider, tox21)")
    predictor_options = {"name": "PropertyPredictor", "max_ongoing_requests": 8, **args.pop("predictor_options", {})}
    ingress_options = {"name": "PropertyIngress", "max_ongoing_requests": 64, **args.pop("ingress_options", {})}
    predictor = serve.deployment(PropertyPredictorDeployment, **predictor_options).bind(args)
    return serve.deployment(PropertyIngress, **ingress_options).bind(predictor)
