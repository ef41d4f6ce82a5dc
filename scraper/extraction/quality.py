"""Precision and recall of extracted fields against labelled truth, field by field."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from scraper.extraction.fields import FIELDS


@dataclass(frozen=True)
class FieldScore:
    """Counts for one field over a page set; precision and recall are None when undefined.

    precision = correct / extracted (non-empty), recall = correct / truth (non-empty).
    """

    correct: int
    extracted: int
    expected: int

    @property
    def precision(self) -> float | None:
        return self.correct / self.extracted if self.extracted else None

    @property
    def recall(self) -> float | None:
        return self.correct / self.expected if self.expected else None


def field_value_normalise(name: str, value: object) -> object:
    """The comparable form of a value: prices as Decimal, text with collapsed whitespace,
    None for empty."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    if not text:
        return None
    if name == "price":
        try:
            return Decimal(text)
        except InvalidOperation:
            return text
    return text


def extraction_scores(
    pairs: Iterable[tuple[Mapping[str, object], Mapping[str, object]]],
) -> dict[str, FieldScore]:
    """Per-field scores over (extracted, truth) pairs; URLs in both must be absolute."""
    counts = {name: [0, 0, 0] for name in FIELDS}
    for extracted, truth in pairs:
        for name in FIELDS:
            got = field_value_normalise(name, extracted.get(name))
            want = field_value_normalise(name, truth.get(name))
            counts[name][0] += got is not None and got == want
            counts[name][1] += got is not None
            counts[name][2] += want is not None
    return {name: FieldScore(*numbers) for name, numbers in counts.items()}
