"""Experiments while serving: the variants a page shows, and the variants events carry.

A page asks for the decisions of its placements, hands the recommender one
`SectionStrategy` per decided section, renders, then logs the exposures (rendered, not
merely assigned). Every event a visitor sends afterwards carries their variants in
`context["variants"]`, filled in on the server: clients cannot claim a variant.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from recommender.strategies import SOURCES, SectionStrategy
from webapp.experiments.selectors import (
    Decision,
    experiments_decide,
    experiments_running_cached,
    variants_of_visitor,
)
from webapp.experiments.services import exposures_record
from webapp.models import Visitor


@dataclass(frozen=True)
class PageVariants:
    """The decided variant of each placement of a page, and what it serves there."""

    decisions: Mapping[str, Decision] = field(default_factory=dict)

    @property
    def strategies(self) -> dict[str, SectionStrategy]:
        return {placement: strategy_of(decision) for placement, decision in self.decisions.items()}

    @property
    def tokens(self) -> dict[str, str]:
        """{experiment key: variant key}, e.g. for a data attribute of the page."""
        return {d.experiment_key: d.variant_key for d in self.decisions.values()}


NO_VARIANTS = PageVariants()


def strategy_of(decision: Decision) -> SectionStrategy:
    """The section strategy a variant's config describes (unknown sources: the default)."""
    source = decision.config.get("strategy", "model")
    version = decision.config.get("model_version")
    return SectionStrategy(
        source=source if source in SOURCES else "model",
        model_version=version if isinstance(version, int) else None,
        token=f"{decision.experiment_key}={decision.variant_key}",
    )


def page_variants(*, placements: Sequence[str], visitor: Visitor | None) -> PageVariants:
    """The decisions for a page's placements; the oldest live experiment of a placement wins.

    No query unless an experiment runs on one of the placements.
    """
    if visitor is None or visitor.is_bot or not experiments_running_cached():
        return NO_VARIANTS
    decisions: dict[str, Decision] = {}
    for placement in placements:
        decided = experiments_decide(placement=placement, visitor=visitor)
        if decided:
            decisions[placement] = min(decided, key=lambda d: d.experiment_id)
    return PageVariants(decisions) if decisions else NO_VARIANTS


def page_exposures_record(*, variants: PageVariants, visitor: Visitor | None) -> None:
    """Log the exposures of a page just rendered (a person's first one per experiment)."""
    if visitor is not None and variants.decisions:
        exposures_record(decisions=list(variants.decisions.values()), visitor=visitor)


def event_variants(*, visitor: Visitor) -> dict[str, str]:
    """The variants an event of this visitor carries (no query without running experiments)."""
    if visitor.is_bot or not experiments_running_cached():
        return {}
    return variants_of_visitor(visitor=visitor)


def event_context(context: Mapping[str, object], variants: Mapping[str, str]) -> dict[str, object]:
    """An event's context with the server's view of the variants (a client's is dropped)."""
    cleaned = {key: value for key, value in context.items() if key != "variants"}
    return cleaned | {"variants": dict(variants)} if variants else cleaned
