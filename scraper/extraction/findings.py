"""What one evidence source found on a page, each value already normalised."""

from dataclasses import dataclass, field

from scraper.extraction.availability import availability_normalise
from scraper.extraction.document import text_clean, url_absolute
from scraper.extraction.fields import MAX_TEXT_CHARS
from scraper.extraction.identifiers import gtin_normalise, identifier_normalise
from scraper.extraction.prices import currency_normalise, price_parse

_URL_FIELDS = frozenset({"image", "canonical_url"})
_ID_FIELDS = frozenset({"sku", "mpn"})


@dataclass
class Findings:
    """Normalised field values from one source; the first value put for a field wins.

    `currency_explicit` is False when the currency is only a guess from a shared symbol
    such as "$", so that an explicit code from a later source can replace it.
    """

    base_url: str
    values: dict[str, str] = field(default_factory=dict)
    currency_explicit: bool = False

    def put(self, name: str, raw: object) -> bool:
        """Normalise `raw` for field `name` and keep it if valid and none is kept yet."""
        if name in self.values:
            return False
        if name == "price":
            return self.put_price(raw)
        if name == "currency":
            code, explicit = currency_normalise(raw)
            return self._keep_currency(code, explicit=explicit)
        value = self._normalise(name, raw)
        if value is None:
            return False
        self.values[name] = value
        return True

    def put_price(self, raw: object, *, machine_format: bool = False) -> bool:
        """Keep the amount of a price text, and its currency when the text names one.
        `machine_format`: a bare number is read with "." as the decimal point (markup)."""
        if "price" in self.values:
            return False
        parsed = price_parse(raw, machine_format=machine_format)
        if parsed.amount is None:
            return False
        self.values["price"] = parsed.amount
        self._keep_currency(parsed.currency, explicit=parsed.currency_explicit)
        return True

    def _keep_currency(self, code: str | None, *, explicit: bool) -> bool:
        if code is None:
            return False
        if "currency" in self.values and (self.currency_explicit or not explicit):
            return False
        self.values["currency"] = code
        self.currency_explicit = explicit
        return True

    def _normalise(self, name: str, raw: object) -> str | None:
        if name in _URL_FIELDS:
            return url_absolute(raw, self.base_url)
        if name == "availability":
            return availability_normalise(raw)
        if name == "gtin":
            return gtin_normalise(raw)
        if name in _ID_FIELDS:
            return identifier_normalise(raw)
        text = text_clean(raw)
        return text[:MAX_TEXT_CHARS] if text else None
