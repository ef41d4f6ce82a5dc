"""Parsing condition values: typed values, and errors that say what is wrong."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from webapp.segments.attributes import key_errors, parse_value
from webapp.segments.visits import device_type_of, referrer_domain_of


@pytest.mark.parametrize(
    ("attribute", "operator", "raw", "expected"),
    [
        ("visit_count", "gte", " 3 ", Decimal(3)),
        ("cart_value", "gt", "49.90", Decimal("49.90")),
        ("logged_in", "eq", "Yes", True),
        ("device_type", "in", "Mobile, tablet", ("mobile", "tablet")),
        ("referrer_domain", "eq", "WWW.Google.com", "google.com"),
        ("utm_campaign", "in", "Spring, summer ", ("spring", "summer")),
        ("country", "in", "fr,de", ("FR", "DE")),
        ("hour_of_day", "in", "9-11, 20", frozenset({9, 10, 11, 20})),
        ("hour_of_day", "not_in", "22-1", frozenset({22, 23, 0, 1})),
        ("day_of_week", "in", "mon-wed,sunday", frozenset({0, 1, 2, 6})),
        ("day_of_week", "in", "sat-mon", frozenset({5, 6, 0})),
        ("context", "gt", "2.5", Decimal("2.5")),
        ("context", "eq", "high", "high"),
        ("audience", "in", "c1,C2", ("c1", "C2")),
        ("country", "is_set", "", None),
    ],
)
def test_values_are_parsed_to_what_the_evaluator_uses(
    attribute: str, operator: str, raw: str, expected: object
) -> None:
    assert parse_value(attribute, operator, raw) == expected


@pytest.mark.parametrize(
    ("attribute", "operator", "raw", "message"),
    [
        ("visit_count", "contains", "3", "does not apply to Number of visits"),
        ("hour_of_day", "eq", "9", "does not apply to Hour of day"),
        ("visit_count", "gt", "three", "“three” is not a number"),
        ("visit_count", "gt", "2.5", "needs a whole number"),
        ("cart_value", "gt", "NaN", "not a finite number"),
        ("hour_of_day", "in", "9-25", "“9-25” is not a hour"),
        ("hour_of_day", "in", "noon", "“noon” is not a hour"),
        ("day_of_week", "in", "mon-funday", "is not a day name"),
        ("day_of_week", "in", "m", "“m” is not a day name"),
        ("device_type", "eq", "fridge", "not “fridge”"),
        ("logged_in", "eq", "maybe", "not yes or no"),
        ("country", "eq", "France", "two-letter country code"),
        ("referrer_domain", "eq", "  ", "Give a value"),
        ("nonsense", "eq", "1", "Unknown attribute"),
    ],
)
def test_bad_values_name_the_problem(attribute: str, operator: str, raw: str, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        parse_value(attribute, operator, raw)
    assert message in " ".join(error.value.messages)


def test_context_key_is_required_only_for_context_conditions() -> None:
    assert key_errors("context", "activity_level") is None
    assert key_errors("context", "") is not None
    assert key_errors("context", "Bad-Key") is not None
    assert key_errors("visit_count", "x") is not None
    assert key_errors("visit_count", "") is None


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            "mobile",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0 Mobile Safari/537.36",
            "mobile",
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            "tablet",
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0 Safari/537.36",
            "tablet",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0 Safari/537.36",
            "desktop",
        ),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot"),
        ("", "bot"),
    ],
)
def test_device_type_from_the_user_agent(user_agent: str, device: str) -> None:
    assert device_type_of(user_agent) == device


def test_referrer_domain_ignores_this_site() -> None:
    assert referrer_domain_of("https://www.Google.com/search?q=x", own_host="shop.test") == (
        "google.com"
    )
    assert referrer_domain_of("https://shop.test/items/", own_host="shop.test:8000") == ""
    assert referrer_domain_of("", own_host="shop.test") == ""
