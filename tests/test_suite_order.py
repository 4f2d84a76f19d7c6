"""The suite's order: random (pytest-randomly), with the service folders kept together (tests/conftest.py)."""
from __future__ import annotations

import random
from types import SimpleNamespace

from tests.conftest import _GROUPED_FOLDERS, TESTS, group_service_folders


def _items(folders: list[str]) -> list:
    return [SimpleNamespace(path=TESTS / folder / f"test_{i}.py", n=i) for i, folder in enumerate(folders)]


def test_service_folders_run_together_where_the_seed_put_their_first_test():
    folders = ["retrieval", "serve", "ray_icma", "integration", "serve", "cluster", "integration", "serve", "ray_icma"]
    out = group_service_folders(_items(folders))
    got = [(item.path.parent.name, item.n) for item in out]
    assert got == [("retrieval", 0), ("serve", 1), ("serve", 4), ("serve", 7), ("ray_icma", 2),
                   ("integration", 3), ("integration", 6), ("cluster", 5), ("ray_icma", 8)]


def test_any_shuffle_keeps_every_item_and_each_group_contiguous():
    rng = random.Random(7)
    names = ["retrieval", "ray_icma", "cluster", "packaging", *sorted(_GROUPED_FOLDERS)]
    for _ in range(50):
        items = _items([rng.choice(names) for _ in range(40)])
        out = group_service_folders(items)
        assert sorted(i.n for i in out) == list(range(40))
        for folder in _GROUPED_FOLDERS:
            at = [k for k, item in enumerate(out) if item.path.parent.name == folder]
            if not at:
                continue
            assert at == list(range(at[0], at[0] + len(at)))
            assert [out[k].n for k in at] == sorted(out[k].n for k in at)  # their own order is kept
        others = [i.n for i in out if i.path.parent.name not in _GROUPED_FOLDERS]
        assert others == sorted(others)
