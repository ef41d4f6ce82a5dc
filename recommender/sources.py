"""Candidate sources: what each section would show, before filters and business rules.

Each source returns scored `Candidate`s, best first, or raises `NoSignal` when it has
nothing to go on (an empty history) so the section falls back to trending. Model
errors propagate: the pipeline counts them and falls back too.
"""

from collections.abc import Sequence

import numpy as np

from recommender.active_models import ActiveModel, active_model
from recommender.candidates import Candidate
from recommender.history import HistoryEvent, VisitorHistory

FOLD_IN_ITEMS = 50  # distinct recent items a fold-in uses
RECENCY_DECAY = 0.97  # weight of the n-th most recent item: decay ** n
VERBS = {"rating": "rated", "purchase": "bought", "add_to_cart": "added to your cart"}


class NoSignal(Exception):
    """The source has nothing to personalise on (e.g. a brand-new visitor)."""


def ranked_columns(
    active: ActiveModel,
    *,
    columns: np.ndarray,
    weights: np.ndarray,
    limit: int,
    exclude: np.ndarray,
    user_row: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The model's best columns and their scores for a history (or a training user)."""
    index = active.vector_index()
    if index is not None:
        query = active.model.history_vector(columns, weights)
        if query is not None:
            found, scores = index.search(query, limit, exclude=exclude.tolist())
            return np.asarray(found, dtype=np.int64), np.asarray(scores, dtype=np.float32)
    if user_row is not None:
        scores = active.model.score(np.asarray([user_row]))[0].astype(np.float32, copy=True)
    else:
        scores = np.array(active.model.score_history(columns, weights), dtype=np.float32)
    scores[exclude] = -np.inf
    limit = min(limit, len(scores))
    best = np.argpartition(-scores, limit - 1)[:limit]
    best = best[np.argsort(-scores[best], kind="stable")]
    best = best[np.isfinite(scores[best])]
    return best, scores[best]


def to_candidates(
    active: ActiveModel, columns: np.ndarray, scores: np.ndarray, reason: str
) -> list[Candidate]:
    pks = active.item_pks[columns]
    return [
        Candidate(int(pk), float(score), active.kind, active.version_id, reason)
        for pk, score in zip(pks, scores, strict=True)
        if pk >= 0
    ]


def history_weights(
    active: ActiveModel, events: Sequence[HistoryEvent]
) -> tuple[np.ndarray, np.ndarray]:
    """Model columns of the events' items (newest first) with recency-decayed strengths,
    returned oldest first, the order `score_history` reads (sequential models use it)."""
    strength: dict[int, float] = {}
    for position, event in enumerate(events):
        weight = event.strength * RECENCY_DECAY**position
        strength[event.item_pk] = max(strength.get(event.item_pk, 0.0), weight)
    pks = list(strength)
    columns = active.columns_of(pks)
    known = {int(active.item_pks[column]): int(column) for column in columns}
    kept = [pk for pk in reversed(pks) if pk in known]
    return (
        np.asarray([known[pk] for pk in kept], dtype=np.int64),
        np.asarray([strength[pk] for pk in kept], dtype=np.float32),
    )


def top_picks(
    *, history: VisitorHistory, limit: int, version_id: int | None = None
) -> list[Candidate]:
    """Personalised picks: the training row of a known visitor, else a history fold-in.

    `version_id` pins a model version (an experiment's variant) instead of the active one.
    """
    if history.is_empty:
        raise NoSignal("no history yet")
    active = active_model(role="home", version_id=version_id)
    columns, weights = history_weights(active, history.recent_items(FOLD_IN_ITEMS))
    if len(columns) == 0:
        raise NoSignal("none of the visitor's items is known to the model")
    user_row = None
    if history.visitor_pk is not None and not history.newer_than(active.trained_at):
        user_row = active.row_of_user(str(history.visitor_pk))
    exclude = active.columns_of(sorted(history.consumed))
    found, scores = ranked_columns(
        active, columns=columns, weights=weights, limit=limit, exclude=exclude, user_row=user_row
    )
    reason = "Picked for you" if user_row is not None else "Based on your recent activity"
    return to_candidates(active, found, scores, reason)


def because_of(*, history: VisitorHistory, limit: int) -> tuple[HistoryEvent, list[Candidate]]:
    """Items like the one the visitor looked at last, and that item."""
    recent = history.recent_items(1)
    if not recent:
        raise NoSignal("no history yet")
    anchor = recent[0]
    verb = VERBS.get(anchor.event_type, "viewed")
    found = item_neighbours(
        role="similar",
        item_pk=anchor.item_pk,
        limit=limit,
        exclude=history.consumed,
        reason=f"Because you {verb} {anchor.title}",
    )
    return anchor, found


def item_neighbours(
    *, role: str, item_pk: int, limit: int, exclude: frozenset[int], reason: str
) -> list[Candidate]:
    """The items a role's model scores highest for a one-item history."""
    active = active_model(role=role)
    columns = active.columns_of([item_pk])
    if len(columns) == 0:
        raise NoSignal(f"item {item_pk} is unknown to the {role} model")
    skip = np.concatenate([columns, active.columns_of(sorted(exclude))])
    found, scores = ranked_columns(
        active,
        columns=columns,
        weights=np.ones(1, dtype=np.float32),
        limit=limit,
        exclude=skip,
    )
    related = scores > 0  # a zero score is no relation at all: not "because of" the item
    return to_candidates(active, found[related], scores[related], reason)


def preference_scores(*, history: VisitorHistory, item_pks: Sequence[int]) -> dict[int, float]:
    """The home model's score of each given item for this visitor (category ranking)."""
    if history.is_empty or not item_pks:
        raise NoSignal("no history yet")
    active = active_model(role="home")
    columns, weights = history_weights(active, history.recent_items(FOLD_IN_ITEMS))
    if len(columns) == 0:
        raise NoSignal("none of the visitor's items is known to the model")
    scores = np.asarray(active.model.score_history(columns, weights), dtype=np.float32)
    wanted = active.columns_of(item_pks)
    return {int(active.item_pks[column]): float(scores[column]) for column in wanted}


# Weight of a shared semantic-ID prefix of 1, 2, 3 codes: a finer match says more.
PREFIX_WEIGHTS = (1.0, 3.0, 9.0)
NEW_FOR_YOU_EVENTS = 50  # recent distinct items matched against the new arrivals


def new_for_you(
    *,
    history: VisitorHistory,
    new: Sequence[Candidate],
    codes: dict[int, str],
    limit: int,
) -> list[Candidate]:
    """The new arrivals ordered by how much their semantic ID shares with what the visitor
    liked lately (cold start: a brand-new item has no interactions, but its content gave
    it codes at once); unmatched ones follow, newest first. NoSignal when nothing matches.

    An item scores the sum over the visitor's recent items of event strength x recency
    decay x PREFIX_WEIGHTS[shared prefix length - 1]; codes of different quantizer
    versions never match (they are qualified by the version).
    """
    recent = [e for e in history.recent_items(NEW_FOR_YOU_EVENTS) if e.semantic_id]
    liked = [
        (e, e.strength * RECENCY_DECAY**rank, _codes(e.semantic_id))
        for rank, e in enumerate(recent)
    ]
    scored: list[tuple[float, int, Candidate]] = []
    for position, candidate in enumerate(new):
        key = codes.get(candidate.item_id)
        if not key or not liked:
            continue
        item_codes = _codes(key)
        best_event, total, best = None, 0.0, 0.0
        for event, weight, event_codes in liked:
            shared = _shared_prefix(item_codes, event_codes)
            if shared:
                gain = weight * PREFIX_WEIGHTS[min(shared, len(PREFIX_WEIGHTS)) - 1]
                total += gain
                if gain > best:
                    best_event, best = event, gain
        if best_event is not None:
            reason = f"New, like {best_event.title}"
            scored.append(
                (total, position, Candidate(candidate.item_id, total, "semantic_ids", None, reason))
            )
    if not scored:
        raise NoSignal("no new arrival shares a semantic-ID prefix with the visitor's items")
    scored.sort(key=lambda entry: (-entry[0], entry[1]))
    matched = [candidate for _, _, candidate in scored]
    taken = {c.item_id for c in matched}
    return (matched + [c for c in new if c.item_id not in taken])[:limit]


def _codes(key: str) -> tuple[str, tuple[str, ...]]:
    """("<version>", (code, code, ...)) of a qualified semantic ID; the last (disambiguation)
    token is left out: it tells colliding items apart and says nothing about content."""
    version, _, codes = key.partition(":")
    parts = tuple(codes.split("-"))
    return version, parts[:-1] if len(parts) > 1 else parts


def _shared_prefix(a: tuple[str, tuple[str, ...]], b: tuple[str, tuple[str, ...]]) -> int:
    if a[0] != b[0]:
        return 0
    shared = 0
    for left, right in zip(a[1], b[1], strict=False):
        if left != right:
            break
        shared += 1
    return shared
