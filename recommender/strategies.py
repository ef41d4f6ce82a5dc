"""What an experiment's variant changes in a section: its source of candidates.

The webapp decides the variants (webapp.experiments) and hands the recommender one
`SectionStrategy` per section it changes; the recommender never reads experiments.
Each strategy's `token` is part of every cache key of what it serves, so visitors in
different variants never share a cached answer.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from recommender.candidates import Candidate
from recommender.history import VisitorHistory
from recommender.sources import top_picks
from recommender.trending import popular_candidates, trending_candidates

SOURCES = ("model", "trending", "popular")
TITLES = {"trending": "Trending now", "popular": "Popular right now"}


@dataclass(frozen=True)
class SectionStrategy:
    """A section's source as a variant sets it: a model (or a pinned version) or a list."""

    source: str = "model"
    model_version: int | None = None
    token: str = ""  # "<experiment key>=<variant key>"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown strategy source {self.source!r}; one of {SOURCES}")


Strategies = Mapping[str, SectionStrategy]


def strategies_token(strategies: Strategies | None) -> str:
    """The part of cache keys that tells variants apart ("" without any)."""
    if not strategies:
        return ""
    return "|".join(sorted(strategy.token for strategy in strategies.values()))


def source_of(
    strategy: SectionStrategy, history: VisitorHistory
) -> tuple[Callable[[int], list[Candidate]], str | None]:
    """The candidate source a strategy stands for, and the section title it implies."""
    if strategy.source == "trending":
        return lambda limit: trending_candidates()[:limit], TITLES["trending"]
    if strategy.source == "popular":
        return lambda limit: popular_candidates()[:limit], TITLES["popular"]
    version = strategy.model_version
    return lambda limit: top_picks(history=history, limit=limit, version_id=version), None
