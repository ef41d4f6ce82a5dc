"""Product identifiers: GTIN check digits, SKU/MPN cleanup."""

import re
from typing import Final

_NON_DIGITS: Final = re.compile(r"[\s\-.]")
GTIN_LENGTHS: Final = frozenset({8, 12, 13, 14})


def gtin_check_digit_is_valid(digits: str) -> bool:
    """True when `digits` is a GTIN-8/12/13/14 whose last digit is the right check digit."""
    if not digits.isdigit() or len(digits) not in GTIN_LENGTHS:
        return False
    body = [int(d) for d in digits[:-1]]
    # Weights alternate 3,1,3,... counted from the digit next to the check digit.
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == int(digits[-1])


def gtin_normalise(value: object) -> str | None:
    """The GTIN as its digits when valid, else None (separators and "urn:"/"ean:" prefixes go)."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    text = re.sub(r"^(?:urn:)?(?:gtin\d*|ean|upc|isbn)[:\s]*", "", text, flags=re.IGNORECASE)
    digits = _NON_DIGITS.sub("", text)
    return digits if gtin_check_digit_is_valid(digits) else None


def identifier_normalise(value: object) -> str | None:
    """A SKU or MPN as a trimmed single-line string, None when empty or implausibly long."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = " ".join(str(value).split())
    return text if 0 < len(text) <= 100 else None
