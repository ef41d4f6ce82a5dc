"""What each visitor sees: the recommendation sections of a page, served within budget.

One pipeline for pages and the API: read the visitor's history (one query), run each
section's candidate source while the latency budget lasts, fetch every candidate's
card in one query, then filter, de-duplicate across the page, diversify and apply the
merchandising rules. A source that fails or runs past the budget is replaced by the
trending list, logged and counted: a page never breaks because a model did.
Results are cached under the visitor, their event generation and the active model
versions, so a new event or a new model changes the key at once.
"""

import dataclasses
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.db import DatabaseError

from recommender.active_models import ACTIVE_MODELS, ModelBroken, ModelUnavailable
from recommender.budget import Budget, statement_timeout
from recommender.candidates import Candidate, Section
from recommender.history import EMPTY_HISTORY, VisitorHistory, visitor_generation, visitor_history
from recommender.merchandising import merchandising_token
from recommender.services import serving_failure_record
from recommender.shelves import PageState, Shelf, item_cards, shelf_build
from recommender.sources import (
    VERBS,
    NoSignal,
    because_of,
    item_neighbours,
    new_for_you,
    preference_scores,
    top_picks,
)
from recommender.strategies import SectionStrategy, Strategies, source_of, strategies_token
from recommender.trending import new_arrival_candidates, new_arrival_codes, trending_candidates
from webapp.models import Category, Item, Visitor
from webapp.selectors.catalog import category_descendant_ids

CATEGORY_CANDIDATES = 5_000  # newest items of a category that personal ranking considers


def category_item_pks(*, category: Category) -> list[int]:
    """Active items of the category and its descendants, newest first (capped)."""
    ids = category_descendant_ids(category=category)
    items = Item.objects.filter(is_active=True, category_id__in=ids).order_by("-created_at", "-id")
    return list(items.values_list("pk", flat=True)[:CATEGORY_CANDIDATES])


logger = logging.getLogger(__name__)

OVERFETCH = 4  # candidates per shown item, room for filters, de-duplication and diversity
FAILED_CACHE_SECONDS = 10  # a degraded answer is retried soon
CARDS_PER_ITEM = 6  # cards fetched per shown item and section: rules and page de-duplication


@dataclass(frozen=True)
class SectionPlan:
    """A section to serve: its source, and how it reads when the source has nothing."""

    section: str
    title: str
    source: Callable[[int], list[Candidate]]
    fallback_title: str = "Popular right now"
    hide_without_signal: bool = False  # no history or no model: leave the section out
    fill: Callable[[int], list[Candidate]] | None = None  # tops up the section; default trending


@dataclass(frozen=True)
class Served:
    shelves: tuple[Shelf, ...]
    cache_hit: bool

    def shelf(self, section: str) -> Shelf | None:
        return next((shelf for shelf in self.shelves if shelf.section == section), None)


def home_shelves(
    *, visitor: Visitor | None, k: int, strategies: Strategies | None = None
) -> Served:
    """Top picks, because you viewed, trending and new arrivals for this visitor.

    `strategies` (from the visitor's experiment variants) change sections' sources.
    """

    def plans(history: VisitorHistory) -> tuple[list[SectionPlan], tuple[int, ...]]:
        return _with_strategies(_home_plans(history), strategies, history), ()

    return _cached("home", visitor, k, plans, strategies)


def item_shelves(
    *, visitor: Visitor | None, item_pk: int, k: int, strategies: Strategies | None = None
) -> Served:
    """Similar items and "people who viewed this also viewed" for an item page."""

    def plans(history: VisitorHistory) -> tuple[list[SectionPlan], tuple[int, ...]]:
        chosen, on_page = _item_plans(history, item_pk)
        return _with_strategies(chosen, strategies, history), on_page

    return _cached(f"item:{item_pk}", visitor, k, plans, strategies)


def placement_shelf(
    *,
    visitor: Visitor | None,
    placement: str,
    k: int,
    item_pk: int | None = None,
    history: VisitorHistory | None = None,
    strategies: Strategies | None = None,
) -> Served:
    """One list for the API: home/email top picks, or an item's similar items."""

    def plans(known: VisitorHistory) -> tuple[list[SectionPlan], tuple[int, ...]]:
        on_page: tuple[int, ...] = ()
        if item_pk is not None:
            chosen, on_page = _item_plans(known, item_pk)[0][:1], (item_pk,)
        else:
            section = Section.EMAIL if placement == "email" else Section.TOP_PICKS
            chosen = [_top_picks_plan(known, section)]
        return _with_strategies(chosen, strategies, known), on_page

    if history is not None:  # a context sent with the request: computed, never cached
        chosen, on_page = plans(history)
        return Served(_with_variants(_serve(chosen, history, k, on_page), strategies), False)
    return _cached(f"{placement}:{item_pk}", visitor, k, plans, strategies)


def category_shelf(*, visitor: Visitor | None, category: Category, k: int) -> Served:
    """The category's items the visitor is most likely to want (popular ones without history)."""

    def plans(history: VisitorHistory) -> tuple[list[SectionPlan], tuple[int, ...]]:
        pks = category_item_pks(category=category)
        return [_category_plan(history, category, pks)], ()

    return _cached(f"category:{category.pk}", visitor, k, plans)


def category_ranking(*, visitor: Visitor | None, item_pks: Sequence[int]) -> list[int] | None:
    """`item_pks` best first for this visitor, or None when there is nothing to go on."""
    if visitor is None:
        return None
    history = _history(visitor, _generation(visitor))
    try:
        scores = preference_scores(history=history, item_pks=item_pks)
    except NoSignal:
        return None
    except Exception as error:
        serving_failure_record(placement=Section.CATEGORY_RANKED, reason="model_error", error=error)
        return None
    return sorted(item_pks, key=lambda pk: (-scores.get(pk, float("-inf")), pk))


def _category_plan(history: VisitorHistory, category: Category, pks: list[int]) -> SectionPlan:
    def ranked(limit: int) -> list[Candidate]:
        scores = preference_scores(history=history, item_pks=pks)
        best = sorted(scores, key=lambda pk: -scores[pk])[:limit]
        return [
            Candidate(pk, scores[pk], "home", None, f"For you in {category.name}") for pk in best
        ]

    def popular(limit: int) -> list[Candidate]:
        inside = set(pks)
        top = [c for c in trending_candidates() if c.item_id in inside]
        shown = {c.item_id for c in top}
        rest = [Candidate(pk, 0.0, "new", None, "") for pk in pks if pk not in shown]
        return (top + rest)[:limit]

    return SectionPlan(
        Section.CATEGORY_RANKED,
        f"For you in {category.name}",
        ranked,
        f"Popular in {category.name}",
        fill=popular,
    )


def _top_picks_plan(
    history: VisitorHistory, section: str = Section.TOP_PICKS, *, hide: bool = False
) -> SectionPlan:
    return SectionPlan(
        section,
        "Top picks for you",
        lambda limit: top_picks(history=history, limit=limit),
        hide_without_signal=hide,
    )


def _with_variants(shelves: tuple[Shelf, ...], strategies: Strategies | None) -> tuple[Shelf, ...]:
    if not strategies:
        return shelves
    return tuple(
        dataclasses.replace(shelf, variant=strategies[shelf.section].token)
        if shelf.section in strategies
        else shelf
        for shelf in shelves
    )


PINNABLE = (Section.TOP_PICKS, Section.EMAIL)  # sections a variant's model version can serve


def _with_strategies(
    plans: list[SectionPlan], strategies: Strategies | None, history: VisitorHistory
) -> list[SectionPlan]:
    """The plans with each section's source replaced as its variant's strategy says."""
    if not strategies:
        return plans
    return [_with_strategy(plan, strategies.get(plan.section), history) for plan in plans]


def _with_strategy(
    plan: SectionPlan, strategy: SectionStrategy | None, history: VisitorHistory
) -> SectionPlan:
    if strategy is None or (
        strategy.source == "model"
        and (strategy.model_version is None or plan.section not in PINNABLE)
    ):
        return plan
    source, title = source_of(strategy, history)
    if title is None:
        return dataclasses.replace(plan, source=source)
    return dataclasses.replace(
        plan, source=source, title=title, fallback_title=title, hide_without_signal=False
    )


def _home_plans(history: VisitorHistory) -> list[SectionPlan]:
    # Without a signal the page's own Trending section is the popular answer.
    plans = [_top_picks_plan(history, hide=True)]
    recent = history.recent_items(1)
    if recent:
        verb = VERBS.get(recent[0].event_type, "viewed")
        plans.append(
            SectionPlan(
                Section.BECAUSE_VIEWED,
                f"Because you {verb} {recent[0].title}",
                lambda limit: because_of(history=history, limit=limit)[1],
                hide_without_signal=True,
            )
        )
    plans.append(SectionPlan(Section.TRENDING, "Trending now", _trending, "Trending now"))
    plans.append(
        SectionPlan(
            Section.NEW_ARRIVALS,
            "New arrivals for you",
            lambda limit: new_for_you(
                history=history, new=_new(limit * 4), codes=new_arrival_codes(), limit=limit
            ),
            "New arrivals",
            fill=_new,
        )
    )
    return plans


def _item_plans(history: VisitorHistory, item_pk: int) -> tuple[list[SectionPlan], tuple[int, ...]]:
    def neighbours(role: str, reason: str) -> Callable[[int], list[Candidate]]:
        return lambda limit: item_neighbours(
            role=role, item_pk=item_pk, limit=limit, exclude=history.consumed, reason=reason
        )

    similar = neighbours("similar", "Similar item")
    also = neighbours("session", "People who viewed this also viewed")
    return [
        SectionPlan(Section.SIMILAR, "Similar items", similar),
        SectionPlan(
            Section.ALSO_VIEWED,
            "People who viewed this also viewed",
            also,
            hide_without_signal=True,
        ),
    ], (item_pk,)


def _trending(limit: int) -> list[Candidate]:
    return trending_candidates()[:limit]


def _new(limit: int) -> list[Candidate]:
    return new_arrival_candidates()[:limit]


PlanMaker = Callable[[VisitorHistory], tuple[list[SectionPlan], tuple[int, ...]]]


def served_cache_identity(visitor: Visitor | None, strategies: Strategies | None = None) -> str:
    """Everything of the visitor, their variants and the models that decides what they see.

    A visitor without events shares the anonymous entry of their variants; any event
    moves them onto their own (the generation is part of the key), and so does a newly
    promoted model version or a change of the live merchandising rules.
    """
    generation = _generation(visitor)
    owner = "anon" if visitor is None or generation == "0" else str(visitor.pk)
    return serving_identity(f"{owner}:{generation}", strategies_token(strategies))


def serving_identity(visitor_state: str, variants_token: str) -> str:
    """`served_cache_identity` from its parts ("<owner>:<generation>", the variants'
    token): the active model versions and the live merchandising rules complete it."""
    return f"{visitor_state}:{ACTIVE_MODELS.signature()}:{variants_token}:{merchandising_token()}"


def served_cache_seconds(served: Served) -> int:
    """How long an answer may be reused: degraded ones (fallbacks) are retried soon."""
    degraded = any(shelf.fallback not in ("", "no_signal") for shelf in served.shelves)
    return FAILED_CACHE_SECONDS if degraded else settings.RECOMMENDER_CACHE_SECONDS


def _cached(
    page: str,
    visitor: Visitor | None,
    k: int,
    make_plans: PlanMaker,
    strategies: Strategies | None = None,
) -> Served:
    cache = caches["recommendations"]
    identity = served_cache_identity(visitor, strategies)
    key = f"recs:v1:{page}:{identity}:{k}"
    shelves = cache.get(key)
    if shelves is not None:
        return Served(shelves, True)
    # One statement_timeout scope for the miss's reads (history, sources, cards).
    with statement_timeout(settings.RECOMMENDER_STATEMENT_TIMEOUT_MS):
        history = (
            EMPTY_HISTORY
            if identity.startswith("anon:")
            else _history(visitor, _generation(visitor))
        )
        plans, on_page = make_plans(history)
        served = Served(_with_variants(_serve(plans, history, k, on_page), strategies), False)
    cache.set(key, served.shelves, served_cache_seconds(served))
    return served


def _generation(visitor: Visitor | None) -> str:
    return "0" if visitor is None else visitor_generation(visitor=visitor)


def _history(visitor: Visitor | None, generation: str) -> VisitorHistory:
    try:
        with statement_timeout(settings.RECOMMENDER_STATEMENT_TIMEOUT_MS):
            return visitor_history(visitor=visitor, generation=generation)
    except DatabaseError as error:
        serving_failure_record(placement="history", reason="db_error", error=error)
        return EMPTY_HISTORY


def _serve(
    plans: Sequence[SectionPlan], history: VisitorHistory, k: int, on_page: Collection[int]
) -> tuple[Shelf, ...]:
    budget = Budget(settings.RECOMMENDER_LATENCY_BUDGET_MS)
    limit = k * OVERFETCH + len(history.consumed)
    cap = CARDS_PER_ITEM * k
    outcomes = [
        (plan, _head(ranked, history.consumed, cap), fallback)
        for plan in plans
        for ranked, fallback in [_run_source(plan, limit, budget)]
    ]
    trending = _head(_trending(limit), history.consumed, cap)
    fills = [
        _head(plan.fill(limit), history.consumed, cap) if plan.fill else trending for plan in plans
    ]
    wanted = {c.item_id for _, ranked, _ in outcomes for c in ranked}
    wanted |= {c.item_id for fill in fills for c in fill}
    try:
        with statement_timeout(settings.RECOMMENDER_STATEMENT_TIMEOUT_MS):
            cards = item_cards(wanted)
    except DatabaseError as error:
        serving_failure_record(placement="cards", reason="db_error", error=error)
        return ()
    page = PageState(placed=set(on_page))
    shelves = []
    for (plan, ranked, fallback), fill in zip(outcomes, fills, strict=True):
        if fallback in ("no_signal", "no_model") and plan.hide_without_signal:
            continue
        shelves.append(
            shelf_build(
                section=plan.section,
                title=plan.fallback_title if fallback else plan.title,
                ranked=ranked,
                fill=fill,
                cards=cards,
                exclude=history.consumed,
                page=page,
                k=k,
                fallback=fallback,
            )
        )
    return tuple(shelf for shelf in shelves if shelf.items)


def _head(candidates: Sequence[Candidate], consumed: Collection[int], cap: int) -> list[Candidate]:
    """The first `cap` distinct candidates not consumed: all a section can use (fewer cards)."""
    seen: set[int] = set()
    kept = []
    for candidate in candidates:
        if candidate.item_id not in consumed and candidate.item_id not in seen:
            seen.add(candidate.item_id)
            kept.append(candidate)
            if len(kept) == cap:
                break
    return kept


def _run_source(plan: SectionPlan, limit: int, budget: Budget) -> tuple[list[Candidate], str]:
    """The source's candidates and "", or no candidates and why not."""
    if budget.exceeded():
        serving_failure_record(
            placement=plan.section, reason="timeout", error=f"{budget.elapsed_ms:.0f} ms"
        )
        return [], "timeout"
    try:
        return plan.source(limit), ""
    except NoSignal:
        return [], "no_signal"
    except ModelBroken as error:
        serving_failure_record(placement=plan.section, reason="model_error", error=error)
        return [], "model_error"
    except ModelUnavailable as error:
        logger.debug("section %s without model: %s", plan.section, error)
        return [], "no_model"
    except Exception as error:
        logger.exception("section %s failed; serving trending instead", plan.section)
        serving_failure_record(placement=plan.section, reason="model_error", error=error)
        return [], "model_error"
