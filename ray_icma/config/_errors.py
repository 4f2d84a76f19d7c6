"""The one error a bad config raises: every problem at once, each with where and what to do."""
from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A config file or override is wrong.

    Attributes:
        problems: one line per problem, ``"dotted.key: what is wrong (hint)"``.
    """

    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source} has {len(self.problems)} problem(s):\n{lines}")
