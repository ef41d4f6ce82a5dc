"""What flows between the serving stages: scored candidates and the page's sections.

Section slugs are also the `placement` of the impression, click, add-to-cart and
purchase events they lead to, so click-through and revenue can be split per section.
Recommendation events carry, in `Interaction.context`: `model` (the model kind, or
"trending"/"new"/"popular"/"pinned"), `model_version` (ModelVersion pk or null), `rank`
(1-based position in the section) and `variants` ({experiment key: variant key}).
"""

from dataclasses import dataclass
from enum import StrEnum


class Placement(StrEnum):
    """What the API's `placement` parameter names: one page type or channel."""

    HOME = "home"
    ITEM = "item"
    CATEGORY = "category"
    EMAIL = "email"


class Section(StrEnum):
    """One shelf of recommendations on a page; its slug is the events' placement."""

    TOP_PICKS = "home_top_picks"
    BECAUSE_VIEWED = "home_because_viewed"
    TRENDING = "home_trending"
    NEW_ARRIVALS = "home_new"
    SIMILAR = "item_similar"
    ALSO_VIEWED = "item_also_viewed"
    CATEGORY_RANKED = "category_ranked"
    EMAIL = "email"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One recommendable item with its score and where it came from."""

    item_id: int  # Item.pk
    score: float
    source: str  # model kind, or "trending", "new", "popular", "pinned"
    model_version: int | None = None
    reason: str = ""
