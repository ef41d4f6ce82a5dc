"""Candidate generation by blocking: only pairs that share a brand or an informative title
token are compared, so matching n products against m items costs far less than n * m.
"""

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from scraper.matching.features import ProductRecord, model_numbers, normalize_text, title_tokens

CANDIDATES_PER_PRODUCT = 10
# Tokens in more than this share of the catalog ("the", "black", "new") block nothing.
MAX_TOKEN_SHARE = 0.05
MIN_TOKEN_POSTINGS = 50  # ...unless the catalog is small, where every token may block
MODEL_NUMBER_WEIGHT = 3.0  # a shared model number says more than a shared word
BRAND_WEIGHT = 1.0


@dataclass
class BlockingIndex:
    """Inverted index of our items by brand, title token and model number."""

    items: Sequence[ProductRecord]
    max_postings: int = 0
    _postings: dict[str, list[int]] = field(default_factory=dict)
    _idf: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        postings: dict[str, list[int]] = defaultdict(list)
        for position, item in enumerate(self.items):
            for key in _keys(item):
                postings[key].append(position)
        total = max(1, len(self.items))
        self.max_postings = max(MIN_TOKEN_POSTINGS, int(MAX_TOKEN_SHARE * total))
        self._postings = {k: v for k, v in postings.items() if len(v) <= self.max_postings}
        self._idf = {k: math.log(1 + total / len(v)) for k, v in self._postings.items()}

    def candidates(
        self, product: ProductRecord, limit: int = CANDIDATES_PER_PRODUCT
    ) -> list[ProductRecord]:
        """Our items sharing the most (IDF-weighted) keys with `product`, best first."""
        scores: dict[int, float] = defaultdict(float)
        for key in _keys(product):
            weight = self._idf.get(key, 0.0) * _key_weight(key)
            for position in self._postings.get(key, ()):
                scores[position] += weight
        best = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return [self.items[position] for position, _ in best]


def _keys(record: ProductRecord) -> set[str]:
    keys = {f"t:{token}" for token in title_tokens(record.title) if len(token) > 1}
    keys |= {f"m:{number}" for number in model_numbers(f"{record.title} {record.mpn}")}
    brand = normalize_text(record.brand).replace(" ", "")
    if brand:
        keys.add(f"b:{brand}")
    return keys


def _key_weight(key: str) -> float:
    if key.startswith("m:"):
        return MODEL_NUMBER_WEIGHT
    return BRAND_WEIGHT if key.startswith("b:") else 1.0


def candidate_pairs(
    products: Sequence[ProductRecord],
    items: Sequence[ProductRecord],
    limit: int = CANDIDATES_PER_PRODUCT,
) -> list[tuple[ProductRecord, ProductRecord]]:
    """(competitor product, our item) pairs worth comparing, at most `limit` per product."""
    index = BlockingIndex(items)
    return [(product, item) for product in products for item in index.candidates(product, limit)]
