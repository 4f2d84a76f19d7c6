"""The Generator deployment's two threads: prompts are fitted (tokenized) on the replica's event loop while
a batch generates in a worker thread (asyncio.to_thread). A fast tokenizer keeps its padding setting in its
shared Rust object, so the two must not share one tokenizer: CI once got a 503 "generation failed: ValueError:
Unable to create tensor ... same length" when a no-padding count raced the padded batch encode.

The deployment object is built here without Serve (its @serve.batch queue needs a replica context, so the two
roles are driven directly: the event loop's `fit_prompt` on the deployment's tokenizer, and the worker
thread's `Generator.generate`), on a real tiny Llama with a real fast tokenizer.
"""
from __future__ import annotations

import threading

import pytest

pytest.importorskip("torch")

QUERIES = ["CCO", "c1ccccc1O", "CC(=O)OC1=CC=CC=C1C(=O)O", "C", "OCC(O)CO", "CCN(CC)CC", "O=C=O"]
EXAMPLES = [("CCCC", "The molecule is butane."), ("CCO", "The molecule is ethanol, a primary alcohol.")]


def test_prompt_fitting_beside_a_generating_batch_never_unpads_it(frequent_thread_switches):
    from ray_icma.prompts import fit_prompt
    from serve.generator_deployment import GeneratorDeployment

    dep = GeneratorDeployment({"model": "tiny-random-llama", "device": "cpu", "precision": "fp32", "max_new_tokens": 1})
    prompts = [fit_prompt(dep.tokenizer, "mol2cap", q, list(EXAMPLES[: i % 3]), cutoff_len=256, answer_reserve=1)[0]
               for i, q in enumerate(QUERIES)]
    expected = dep._lm.generate(prompts, max_new_tokens=1, batch_size=len(prompts))
    errors: list[BaseException] = []
    results: list[list[str]] = []
    done = threading.Event()

    def generation_thread() -> None:  # what _generate_batch runs via asyncio.to_thread
        try:
            for _ in range(150):
                results.append(dep._lm.generate(prompts, max_new_tokens=1, batch_size=len(prompts)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=generation_thread)
    worker.start()
    i = 0
    while not done.is_set():  # what generate() does on the event loop for each arriving request
        fit_prompt(dep.tokenizer, "mol2cap", QUERIES[i % len(QUERIES)], list(EXAMPLES[: i % 3]),
                   cutoff_len=256, answer_reserve=1)
        i += 1
    worker.join()
    assert not errors, repr(errors[0])
    assert results and all(r == expected for r in results)
