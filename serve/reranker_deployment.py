"""The Reranker deployment: ICMA's post-retrieval re-ranking (random walk + sequence reversal)
over a best-first candidate list, seeded per request so any answer can be reproduced."""
from __future__ import annotations

from typing import Any

from serve.configs import RerankerConfig
from serve.errors import BadRequest

__all__ = ["Reranker"]


class Reranker:
    """Chooses which candidates become in-context examples and in what order."""

    def __init__(self, config: dict):
        self._cfg = RerankerConfig.model_validate(config)

    @classmethod
    def get_deployment_options(cls, cfg: RerankerConfig) -> dict[str, Any]:
        """Pure Python over <= 100 items (~20 us): a sliver of CPU, many requests per replica."""
        return {"ray_actor_options": {"num_cpus": 0.1}}

    def defaults(self, task: str) -> dict[str, Any]:
        return {"n_shot": self._cfg.default_n_shot.get(task, 2), "strategy": self._cfg.default_strategy}

    def select(self, n_candidates: int, n_shot: int, strategy: str, seed: int) -> list[int]:
        """Positions (into the candidate list) of the chosen examples, in prompt order.

        Raises:
            BadRequest: an unknown strategy or a negative n_shot (the library's message).
        """
        from retrieval.context import choose_examples  # the one ranked-ids -> examples path (training, CLI, here)

        try:
            return [
                int(i)
                for i in choose_examples(
                    list(range(n_candidates)),
                    n_shot,
                    seed=seed,  # the request's walk seed (no query id: used as is)
                    strategy=strategy,
                    start_pos=self._cfg.start_pos,
                    p_take=self._cfg.p_take,
                    reverse=self._cfg.reverse,
                )
            ]
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
