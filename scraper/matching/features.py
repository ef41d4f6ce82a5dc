"""Product records and the similarity features of a (competitor product, our item) pair."""

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

_TOKEN = re.compile(r"[a-z0-9]+")
# A model number mixes letters and digits (e.g. "WH-1000XM4", "A2141", "x100v"), or is a
# long digit run; plain words and small numbers ("2", "pack") are not model numbers.
_MODEL_NUMBER = re.compile(
    r"\b(?=[a-z0-9-]*\d)(?=[a-z0-9-]*[a-z])[a-z0-9]+(?:-[a-z0-9]+)*\b|\b\d{4,}\b"
)
_UNITS = re.compile(r"^\d+(gb|tb|mb|mm|cm|m|ml|l|g|kg|w|v|mah|hz|in|inch|pack|pcs|x)$")


@dataclass(frozen=True, slots=True)
class ProductRecord:
    """What matching knows of one product, ours or a competitor's."""

    key: int
    title: str
    brand: str = ""
    price: float | None = None
    gtin: str = ""
    sku: str = ""
    mpn: str = ""


def normalize_text(text: str) -> str:
    """Lower case, accents folded, punctuation other than hyphens turned into spaces."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9\- ]+", " ", folded.lower()).strip()


def title_tokens(text: str) -> frozenset[str]:
    """The set of alphanumeric tokens of a title."""
    return frozenset(_TOKEN.findall(normalize_text(text)))


def model_numbers(text: str) -> frozenset[str]:
    """Model-number-like tokens, hyphens removed so "WH-1000XM4" equals "wh1000xm4"."""
    found = {m.replace("-", "") for m in _MODEL_NUMBER.findall(normalize_text(text))}
    return frozenset(m for m in found if not _UNITS.match(m) and len(m) >= 3)


def unit_tokens(text: str) -> frozenset[str]:
    """Quantities with a unit ("128gb", "500ml"): variants of one model differ in these."""
    return frozenset(t for t in title_tokens(text) if _UNITS.match(t))


def normalize_code(code: str) -> str:
    """An identifier (SKU, MPN) compared without case, spaces or punctuation."""
    return re.sub(r"[^A-Z0-9]", "", code.upper())


def normalize_gtin(code: str) -> str:
    """A GTIN as 14 digits (UPC/EAN zero-padded), or "" when it is not 8-14 digits."""
    digits = re.sub(r"\D", "", code)
    return digits.zfill(14) if 8 <= len(digits) <= 14 else ""


def jaccard(left: frozenset[str], right: frozenset[str]) -> float:
    """Intersection over union of two token sets (0 when both are empty)."""
    union = len(left | right)
    return len(left & right) / union if union else 0.0


def price_log_ratio(left: float | None, right: float | None) -> float | None:
    """|log(left / right)|, None when either price is missing or not positive."""
    if left is None or right is None or left <= 0 or right <= 0:
        return None
    return abs(math.log(left / right))


def brands_agree(left: str, right: str) -> bool | None:
    """Same brand after normalisation; None when either is unknown."""
    a, b = normalize_text(left), normalize_text(right)
    if not a or not b:
        return None
    return a == b or a.replace(" ", "") == b.replace(" ", "")


@dataclass(frozen=True, slots=True)
class PairView:
    """The precomputed comparisons of one pair, shared by labeling functions and features."""

    left: ProductRecord
    right: ProductRecord
    title_jaccard: float
    title_cosine: float
    brand_agree: bool | None
    models_left: frozenset[str]
    models_right: frozenset[str]
    log_price_ratio: float | None
    units_left: frozenset[str] = frozenset()
    units_right: frozenset[str] = frozenset()

    @property
    def models_agree(self) -> bool | None:
        """Both titles name model numbers: do they share one? None if either names none."""
        if not self.models_left or not self.models_right:
            return None
        return bool(self.models_left & self.models_right)

    @property
    def units_conflict(self) -> bool:
        """Both name a quantity of the same unit ("64gb" / "128gb") and none agrees."""
        units = {re.sub(r"^\d+", "", t) for t in self.units_left} & {
            re.sub(r"^\d+", "", t) for t in self.units_right
        }
        if not units:
            return False
        return not (self.units_left & self.units_right)


FEATURE_NAMES = (
    "title_jaccard",
    "title_cosine",
    "brand_agree",
    "brand_disagree",
    "models_agree",
    "models_disagree",
    "units_conflict",
    "log_price_ratio",
    "price_missing",
)


class TitleSpace:
    """A TF-IDF space over titles, so that rare shared tokens weigh more than common ones."""

    def __init__(self, titles: Sequence[str]) -> None:
        self._vectorizer = TfidfVectorizer(
            preprocessor=normalize_text,
            token_pattern=r"[a-z0-9]+",  # noqa: S106 - a regex, not a password
            sublinear_tf=True,
        )
        self._vectorizer.fit([t for t in titles if t.strip()] or ["empty"])

    def cosines(self, left: Sequence[str], right: Sequence[str]) -> np.ndarray:
        """Row-wise cosine similarity of left[i] and right[i]."""
        if not left:
            return np.zeros(0)
        a = self._vectorizer.transform(left)
        b = self._vectorizer.transform(right)
        return np.asarray(a.multiply(b).sum(axis=1)).ravel()


def pair_views(
    pairs: Sequence[tuple[ProductRecord, ProductRecord]], space: TitleSpace
) -> list[PairView]:
    """Compare every pair once (TF-IDF cosines computed in one batch)."""
    cosines = space.cosines([a.title for a, _ in pairs], [b.title for _, b in pairs])
    return [
        PairView(
            left=a,
            right=b,
            title_jaccard=jaccard(title_tokens(a.title), title_tokens(b.title)),
            title_cosine=float(cos),
            brand_agree=brands_agree(a.brand, b.brand),
            models_left=model_numbers(a.title) | model_numbers(a.mpn),
            models_right=model_numbers(b.title) | model_numbers(b.mpn),
            log_price_ratio=price_log_ratio(a.price, b.price),
            units_left=unit_tokens(a.title),
            units_right=unit_tokens(b.title),
        )
        for (a, b), cos in zip(pairs, cosines, strict=True)
    ]


def feature_matrix(views: Sequence[PairView]) -> np.ndarray:
    """The classifier's features (FEATURE_NAMES), one row per pair; no identifiers in it,
    so the model learns what a match looks like from titles, brands and prices alone."""
    rows = [
        (
            view.title_jaccard,
            view.title_cosine,
            float(view.brand_agree is True),
            float(view.brand_agree is False),
            float(view.models_agree is True),
            float(view.models_agree is False),
            float(view.units_conflict),
            min(view.log_price_ratio, 3.0) if view.log_price_ratio is not None else 0.0,
            float(view.log_price_ratio is None),
        )
        for view in views
    ]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURE_NAMES))
