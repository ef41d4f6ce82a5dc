"""Labeling functions: noisy, partial votes on whether a pair is the same product.

Each function looks at one `PairView` and votes MATCH, NON_MATCH or ABSTAIN. None is
trusted alone; the label model (`label_model`) estimates how accurate each one is.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from scraper.matching.features import PairView, normalize_code, normalize_gtin

ABSTAIN, NON_MATCH, MATCH = -1, 0, 1

TITLE_HIGH_JACCARD = 0.6
TITLE_LOW_JACCARD = 0.15
TITLE_HIGH_COSINE = 0.8
# Same product, two shops: prices rarely differ by more than a factor of two.
PRICE_RATIO_LIMIT = 2.0


def lf_gtin(view: PairView) -> int:
    """Both have a GTIN: equal means the same product, different means not."""
    a, b = normalize_gtin(view.left.gtin), normalize_gtin(view.right.gtin)
    if not a or not b:
        return ABSTAIN
    return MATCH if a == b else NON_MATCH


def lf_mpn(view: PairView) -> int:
    """Both have a manufacturer part number: equal votes match (different: abstain, as
    shops often write MPNs differently)."""
    a, b = normalize_code(view.left.mpn), normalize_code(view.right.mpn)
    return MATCH if a and a == b else ABSTAIN


def lf_sku(view: PairView) -> int:
    """Equal SKUs vote match; SKUs are per shop, so different ones say nothing."""
    a, b = normalize_code(view.left.sku), normalize_code(view.right.sku)
    return MATCH if a and a == b else ABSTAIN


def lf_brand_model_number(view: PairView) -> int:
    """Brands agree and titles share a model number: match; disagreeing model numbers: not."""
    agree = view.models_agree
    if agree is None:
        return ABSTAIN
    if agree:
        return MATCH if view.brand_agree is not False else ABSTAIN
    return NON_MATCH


def lf_variant_conflict(view: PairView) -> int:
    """Different quantities of the same unit (64GB vs 128GB) are different variants."""
    return NON_MATCH if view.units_conflict else ABSTAIN


def lf_brand_mismatch(view: PairView) -> int:
    """Two known, different brands are different products."""
    return NON_MATCH if view.brand_agree is False else ABSTAIN


def lf_title_overlap_high(view: PairView) -> int:
    """Most title tokens shared: match."""
    return MATCH if view.title_jaccard >= TITLE_HIGH_JACCARD else ABSTAIN


def lf_title_overlap_low(view: PairView) -> int:
    """Hardly any title token shared: not a match."""
    return NON_MATCH if view.title_jaccard < TITLE_LOW_JACCARD else ABSTAIN


def lf_title_cosine_high(view: PairView) -> int:
    """TF-IDF cosine high (rare tokens agree): match."""
    return MATCH if view.title_cosine >= TITLE_HIGH_COSINE else ABSTAIN


def lf_price_ratio(view: PairView) -> int:
    """Prices more than PRICE_RATIO_LIMIT apart: not the same product."""
    ratio = view.log_price_ratio
    if ratio is None:
        return ABSTAIN
    return NON_MATCH if ratio > np.log(PRICE_RATIO_LIMIT) else ABSTAIN


@dataclass(frozen=True, slots=True)
class LabelingFunction:
    name: str
    vote: Callable[[PairView], int]


LABELING_FUNCTIONS: tuple[LabelingFunction, ...] = tuple(
    LabelingFunction(fn.__name__.removeprefix("lf_"), fn)
    for fn in (
        lf_gtin,
        lf_mpn,
        lf_sku,
        lf_brand_model_number,
        lf_brand_mismatch,
        lf_variant_conflict,
        lf_title_overlap_high,
        lf_title_overlap_low,
        lf_title_cosine_high,
        lf_price_ratio,
    )
)


def vote_matrix(
    views: Sequence[PairView], functions: Sequence[LabelingFunction] = LABELING_FUNCTIONS
) -> np.ndarray:
    """Votes as an (n pairs, m functions) int8 matrix of ABSTAIN / NON_MATCH / MATCH."""
    votes = [[fn.vote(view) for fn in functions] for view in views]
    return np.asarray(votes, dtype=np.int8).reshape(len(views), len(functions))


def majority_vote(votes: np.ndarray) -> np.ndarray:
    """P(match) from counting non-abstain votes (ties and no votes give 0.5): the baseline."""
    matches = (votes == MATCH).sum(axis=1)
    non_matches = (votes == NON_MATCH).sum(axis=1)
    return np.where(matches > non_matches, 1.0, np.where(matches < non_matches, 0.0, 0.5))
