"""Prices and currencies: price-parser for the amount, ISO 4217 codes for the currency."""

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from price_parser import Price

# Active ISO 4217 codes likely on a shop page (a code outside this set is not trusted in text).
# fmt: off
ISO_4217: Final = frozenset((
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD",
    "BDT", "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN",
    "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF",
    "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
    "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR",
    "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW",
    "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA",
    "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN",
    "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD",
    "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SYP", "SZL", "THB", "TJS", "TMT", "TND",
    "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VES", "VND",
    "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWL",
))
# fmt: on

# Symbols that name one currency. "$" and "¥" are shared by several currencies, so they
# give only a weak guess that an explicit code elsewhere on the page overrides.
_SYMBOLS: Final[dict[str, str]] = {
    "£": "GBP",
    "€": "EUR",
    "₹": "INR",
    "₽": "RUB",
    "₩": "KRW",
    "₺": "TRY",
    "₴": "UAH",
    "₪": "ILS",
    "₫": "VND",
    "₱": "PHP",
    "zł": "PLN",
    "kč": "CZK",
    "us$": "USD",
    "c$": "CAD",
    "ca$": "CAD",
    "a$": "AUD",
    "au$": "AUD",
    "nz$": "NZD",
    "hk$": "HKD",
    "r$": "BRL",
    "s$": "SGD",
    "fr.": "CHF",
    "sfr.": "CHF",
}
_WEAK_SYMBOLS: Final[dict[str, str]] = {"$": "USD", "¥": "JPY", "円": "JPY", "元": "CNY"}
_MACHINE_NUMBER: Final = re.compile(r"\d+(?:\.\d+)?")
_PRICE_QUANTUM: Final = Decimal("0.01")
# Beyond this no shop price is real; such numbers are IDs or phone numbers.
_MAX_PRICE: Final = Decimal("100000000")


@dataclass(frozen=True)
class ParsedPrice:
    """An amount (Decimal as a string) and its ISO currency; `currency_explicit` is False
    when the currency was only guessed from an ambiguous symbol such as "$"."""

    amount: str | None
    currency: str | None
    currency_explicit: bool


def currency_normalise(value: object) -> tuple[str | None, bool]:
    """(ISO code, explicit?) for a code or symbol such as "usd", "£", "$"; (None, False) else."""
    if not isinstance(value, str):
        return None, False
    text = value.strip()
    if text.upper() in ISO_4217:
        return text.upper(), True
    lowered = text.lower()
    if lowered in _SYMBOLS:
        return _SYMBOLS[lowered], True
    if lowered in _WEAK_SYMBOLS:
        return _WEAK_SYMBOLS[lowered], False
    return None, False


def amount_format(amount: Decimal) -> str | None:
    """The amount as a plain string with at least two decimals, None if not a plausible price."""
    try:
        if not amount.is_finite() or amount < 0 or amount >= _MAX_PRICE:
            return None
        exponent = amount.as_tuple().exponent
        if isinstance(exponent, int) and exponent > -2:
            amount = amount.quantize(_PRICE_QUANTUM)
        return format(amount, "f")
    except InvalidOperation:
        return None


def price_parse(value: object, *, machine_format: bool = False) -> ParsedPrice:
    """Parse a price like "£51.77", "1.299,00 €", "$1,299.00", "USD 12" or a number.

    Text goes through price-parser, which reads "1.299" as 1299 (a thousands point);
    with `machine_format` (schema.org and meta values) a bare "1.299" is 1.299.
    """
    if value is None or isinstance(value, bool | dict | list):
        return ParsedPrice(None, None, False)
    if isinstance(value, int | float | Decimal):
        return ParsedPrice(amount_format(Decimal(str(value))), None, False)
    text = " ".join(str(value).split())[:200]
    if not text:
        return ParsedPrice(None, None, False)
    if machine_format and _MACHINE_NUMBER.fullmatch(text):
        return ParsedPrice(amount_format(Decimal(text)), None, False)
    parsed = Price.fromstring(text)
    amount = amount_format(parsed.amount) if parsed.amount is not None else None
    currency, explicit = currency_normalise(parsed.currency)
    if currency is None:
        currency, explicit = _currency_code_in(text)
    return ParsedPrice(amount, currency, explicit)


def _currency_code_in(text: str) -> tuple[str | None, bool]:
    for token in re.findall(r"\b[A-Z]{3}\b", text):
        if token in ISO_4217:
            return token, True
    return None, False
