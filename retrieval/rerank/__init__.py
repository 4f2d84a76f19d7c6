"""Post-retrieval re-ranking (ICMA section 3.2): Random Walk picks which of the top-10
retrieved examples go into the prompt, Sequence Reversal orders them so the most similar stands
last, right before the query."""
from retrieval.rerank.random_walk import ICMA_WINDOW, random_walk_code, random_walk_probabilistic
from retrieval.rerank.reversal import sequence_reversal
from retrieval.rerank.select import STRATEGIES, example_seed, select_examples

__all__ = [
    "ICMA_WINDOW",
    "STRATEGIES",
    "example_seed",
    "random_walk_code",
    "random_walk_probabilistic",
    "select_examples",
    "sequence_reversal",
]
