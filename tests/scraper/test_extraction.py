"""extract_product on each kind of evidence, its parsing rules, robustness and quality."""

import json
import time
from decimal import Decimal
from html import escape

import pytest

from scraper.extraction import (
    FIELDS,
    SelectorConfigError,
    extract_product,
    extract_product_with_sources,
    gtin_check_digit_is_valid,
    price_parse,
)
from scraper.extraction.availability import availability_from_phrase, availability_normalise
from scraper.extraction.identifiers import gtin_normalise

URL = "http://shop.test/p/widget/"


def page(head: str = "", body: str = "") -> str:
    return f"<html><head><title>Widget | Shop</title>{head}</head><body>{body}</body></html>"


def jsonld(data: object) -> str:
    return f"<script type='application/ld+json'>{json.dumps(data)}</script>"


PRODUCT = {
    "@context": "https://schema.org",
    "@type": "Product",
    "name": "Widget Pro",
    "sku": "W-1",
    "mpn": "WP-100",
    "gtin13": "4006381333931",
    "brand": {"@type": "Brand", "name": "Acme"},
    "image": ["/img/w.jpg"],
    "description": "A  widget\n that works.",
    "url": "http://shop.test/p/widget-pro/",
    "offers": {
        "@type": "Offer",
        "price": "12.5",
        "priceCurrency": "EUR",
        "availability": "https://schema.org/InStock",
    },
}
EXPECTED = {
    "title": "Widget Pro",
    "price": "12.50",
    "currency": "EUR",
    "availability": "InStock",
    "sku": "W-1",
    "gtin": "4006381333931",
    "mpn": "WP-100",
    "brand": "Acme",
    "image": "http://shop.test/img/w.jpg",
    "description": "A widget that works.",
    "canonical_url": "http://shop.test/p/widget-pro/",
}

MICRODATA = """
<div itemscope itemtype="https://schema.org/Product">
  <h1 itemprop="name">Widget Pro</h1><img itemprop="image" src="/img/w.jpg" alt="">
  <link itemprop="url" href="/p/widget-pro/">
  <span itemprop="brand" itemscope itemtype="https://schema.org/Brand">
    <span itemprop="name">Acme</span></span>
  <span itemprop="sku">W-1</span><span itemprop="mpn">WP-100</span>
  <span itemprop="gtin13">4006381333931</span>
  <p itemprop="description">A widget
     that works.</p>
  <div itemprop="offers" itemscope itemtype="https://schema.org/Offer">
    <meta itemprop="priceCurrency" content="EUR">
    <span itemprop="price" content="12.50">12,50 €</span>
    <link itemprop="availability" href="http://schema.org/InStock">
  </div>
</div>"""

OPENGRAPH = """
<meta property="og:title" content="Widget Pro"><meta property="og:image" content="/img/w.jpg">
<meta property="og:description" content="A widget that works.">
<meta property="og:url" content="http://shop.test/p/widget-pro/">
<meta property="product:price:amount" content="12.50">
<meta property="product:price:currency" content="EUR">
<meta property="product:availability" content="in stock">
<meta property="product:brand" content="Acme">
<meta property="product:retailer_item_id" content="W-1">
<meta property="product:ean" content="4006381333931">
<meta property="product:mfr_part_no" content="WP-100">"""

NO_MARKUP = """
<header>Free delivery over £50 <a href="/basket">Basket £0.00</a></header>
<div class="product"><div class="gallery"><img src="/img/w.jpg" alt="Widget Pro"></div>
<h1>Widget Pro</h1><del class="old">15,00 €</del> <span class="price">12,50 €</span>
<p>In stock</p><button>Add to cart</button>
<ul><li>SKU: W-1</li><li>Brand: Acme</li><li>EAN: 4006381333931</li><li>Model: WP-100</li></ul>
<div id="description"><h2>Description</h2><p>A widget that works.</p></div></div>
<section><h2>Related products</h2><p>Gadget £99.00 Sold out</p></section>"""


@pytest.mark.parametrize(
    ("html", "source", "expected"),
    [
        (page(jsonld(PRODUCT)), "jsonld", EXPECTED),
        (
            page(
                jsonld(
                    {"@context": "https://schema.org", "@graph": [{"@type": "WebPage"}, PRODUCT]}
                )
            ),
            "jsonld",
            EXPECTED,
        ),
        (page(body=MICRODATA), "microdata", EXPECTED),
        (
            page(OPENGRAPH + "<link rel='canonical' href='/p/widget-pro/'>"),
            "opengraph",
            EXPECTED,
        ),
        (page(body=NO_MARKUP), "heuristic", {**EXPECTED, "canonical_url": URL}),
    ],
    ids=["jsonld", "jsonld-graph", "microdata", "opengraph", "no-markup"],
)
def test_each_kind_of_evidence_gives_every_field(html: str, source: str, expected: dict) -> None:
    result = extract_product_with_sources(html, URL)

    assert result.fields == expected
    assert result.sources["price"] == source
    assert set(result.fields) == set(FIELDS)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "<header><h1>MegaShop</h1><p>Basket £0.00</p></header>"
            "<h1>Garden <em>Hose</em> 20 m</h1><p class='price'>£19.99</p>",
            {"title": "Garden Hose 20 m", "price": "19.99"},
        ),
        (
            "<h1>Hose</h1><div class='product-price'><span>€</span><span>1.299</span>"
            "<sup>,00</sup></div>",
            {"title": "Hose", "price": "1299.00", "currency": "EUR"},
        ),
        (
            "<h1>Hose</h1><div class='price'>Was <del>£25.00</del> now £19.99</div><p>Sold out</p>",
            {"price": "19.99", "availability": "OutOfStock"},
        ),
        (
            "<h1>Hose</h1><p>£5.00</p><dl><dt>Brand</dt><dd>Acme</dd><dt>MPN</dt><dd>H-20</dd>"
            "<dt>GTIN</dt><dd>4006381333931</dd></dl>",
            {"brand": "Acme", "mpn": "H-20", "gtin": "4006381333931"},
        ),
        (
            "<h1>Hose</h1><section><h2>Customers also bought</h2><p>Rake £9.00 in stock</p>"
            "</section>",
            {"price": None, "availability": None},
        ),
        (
            "<div><p>£7.00</p><p>In stock</p><button>Add to cart</button></div>",
            {"title": "Widget", "price": "7.00", "availability": "InStock"},
        ),
    ],
    ids=[
        "logo-h1-in-header",
        "split-price",
        "was-now",
        "definition-list",
        "other-products-only",
        "no-h1",
    ],
)
def test_heuristics_on_layout_variants(body: str, expected: dict) -> None:
    fields = extract_product(page(body=body), URL)

    assert {name: fields[name] for name in expected} == expected


@pytest.mark.parametrize(
    ("offers", "price", "availability"),
    [
        (
            [
                {"price": "9.99", "priceCurrency": "GBP", "availability": "OutOfStock"},
                {"price": "7.00", "priceCurrency": "GBP"},
            ],
            "9.99",
            "OutOfStock",
        ),
        (
            {
                "@type": "AggregateOffer",
                "lowPrice": 20,
                "highPrice": 30,
                "priceCurrency": "GBP",
                "offers": [{"availability": "http://schema.org/InStock"}],
            },
            "20.00",
            "InStock",
        ),
        (
            {
                "@type": "Offer",
                "priceSpecification": {"price": "5", "priceCurrency": "GBP"},
                "availability": "SoldOut",
            },
            "5.00",
            "OutOfStock",
        ),
    ],
    ids=["offer-list-first", "aggregate-offer", "price-specification"],
)
def test_jsonld_offer_shapes(offers: object, price: str, availability: str) -> None:
    html = page(
        jsonld(
            {"@context": "https://schema.org", "@type": "Product", "name": "X", "offers": offers}
        )
    )

    fields = extract_product(html, URL)

    assert (fields["price"], fields["currency"], fields["availability"]) == (
        price,
        "GBP",
        availability,
    )


def test_broken_jsonld_block_does_not_hide_a_good_one() -> None:
    html = page("<script type='application/ld+json'>{not json</script>" + jsonld(PRODUCT))

    assert extract_product(html, URL)["price"] == "12.50"


def test_selectors_come_first_and_missing_ones_fall_back() -> None:
    html = page(jsonld(PRODUCT), "<h2 class='t'>Shop title</h2><p class='p'>£30.00</p>")
    selectors = {"title": "h2.t::text", "price": "//p[@class='p']/text()", "sku": ".absent"}

    result = extract_product_with_sources(html, URL, selectors)

    assert result.fields["title"] == "Shop title"
    assert (result.fields["price"], result.fields["currency"]) == ("30.00", "GBP")
    assert result.sources["title"] == result.sources["price"] == "selector"
    assert (result.fields["sku"], result.sources["sku"]) == ("W-1", "jsonld")


def test_selectors_only_mode_ignores_markup() -> None:
    html = page(jsonld(PRODUCT), "<p class='p'>£30.00</p>")

    fields = extract_product(html, URL, {"price": "xpath://p/text()"}, fallback=False)

    assert fields["price"] == "30.00"
    assert fields["title"] is None and fields["sku"] is None


def test_selector_on_element_uses_its_value_attribute_or_text() -> None:
    html = page(body="<div class='g'><img src='/a.png'></div><p class='d'> two <b>words</b> </p>")

    fields = extract_product(html, URL, {"image": ".g img", "description": "p.d"})

    assert fields["image"] == "http://shop.test/a.png"
    assert fields["description"] == "two words"


@pytest.mark.parametrize(
    ("selectors", "message"),
    [
        ({"colour": "p"}, "unknown field 'colour'"),
        ({"price": "p[["}, "field 'price' does not parse"),
        ({"price": "//p[("}, "field 'price' does not parse"),
        ({"title": "  "}, "field 'title' is empty"),
    ],
)
def test_unusable_selectors_are_refused_by_name(selectors: dict, message: str) -> None:
    with pytest.raises(SelectorConfigError, match=message.replace("[", r"\[")):
        extract_product(page(), URL, selectors)


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("£51.77", "51.77", "GBP"),
        ("1.299,00 €", "1299.00", "EUR"),
        ("$1,299.00", "1299.00", "USD"),
        ("USD 12", "12.00", "USD"),
        ("CHF 1'299.00", "1299.00", "CHF"),
        ("12,50 EUR", "12.50", "EUR"),
        ("C$ 19.99", "19.99", "CAD"),
        ("1.299", "1299.00", None),  # on a page, a point before three digits groups thousands
        ("Free", "0.00", None),
        ("call us", None, None),
    ],
)
def test_price_parsing(text: str, amount: str | None, currency: str | None) -> None:
    parsed = price_parse(text)

    assert (parsed.amount, parsed.currency) == (amount, currency)


@pytest.mark.parametrize(
    ("value", "amount"), [("0.125", "0.125"), ("1.299", "1.299"), ("7", "7.00")]
)
def test_markup_numbers_use_a_decimal_point(value: str, amount: str) -> None:
    html = page(jsonld({"@type": "Product", "name": "X", "offers": {"price": value}}))

    assert extract_product(html, URL)["price"] == amount


def test_dollar_means_usd_unless_the_page_names_another_currency() -> None:
    body = "<h1>Widget</h1><p>$24.00</p>"
    cad = page("<meta property='product:price:currency' content='CAD'>", body)

    assert extract_product(page(body=body), URL)["currency"] == "USD"
    assert extract_product(cad, URL)["currency"] == "CAD"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4006381333931", "4006381333931"),  # EAN-13
        ("036000291452", "036000291452"),  # UPC-A (GTIN-12)
        ("96385074", "96385074"),  # EAN-8
        ("10012345678902", "10012345678902"),  # GTIN-14
        ("978-0-306-40615-7", "9780306406157"),  # ISBN-13 with hyphens
        (4006381333931, "4006381333931"),
        ("4006381333932", None),  # wrong check digit
        ("400638133393", None),  # wrong length for its digits
        ("12345", None),
        ("a897fe39b1053632", None),
        ("", None),
        (None, None),
    ],
)
def test_gtins_are_check_digit_validated(value: object, expected: str | None) -> None:
    assert gtin_normalise(value) == expected


def test_invalid_gtin_in_markup_is_dropped() -> None:
    html = page(jsonld({**PRODUCT, "gtin13": "4006381333932"}))

    assert extract_product(html, URL)["gtin"] is None
    assert not gtin_check_digit_is_valid("4006381333932")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("In stock", "InStock"),
        ("In stock (22 available)", "InStock"),
        ("Available now", "InStock"),
        ("Only 3 left - in stock", "InStock"),
        ("Out of stock", "OutOfStock"),
        ("SOLD OUT", "OutOfStock"),
        ("Currently unavailable", "OutOfStock"),
        ("Not available", "OutOfStock"),
        ("Free returns", None),
    ],
)
def test_availability_phrases(text: str, expected: str | None) -> None:
    assert availability_from_phrase(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://schema.org/InStock", "InStock"),
        ("http://schema.org/OutOfStock", "OutOfStock"),
        ("InStock", "InStock"),
        ("LimitedAvailability", "InStock"),
        ("Discontinued", "OutOfStock"),
        ("in stock", "InStock"),
        ("out of stock", "OutOfStock"),
        ("PreOrder", None),
    ],
)
def test_availability_values(value: str, expected: str | None) -> None:
    assert availability_normalise(value) == expected


@pytest.mark.parametrize(
    "html",
    [
        "",
        "   \n ",
        "<html",
        "<div><p>unclosed <b><i>nesting</b></i></table></div></div></span>",
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\x00\x01",
        b"\xff\xfe\x00<\x00h\x001\x00>",
        "<h1>\x00\x07nul</h1>",
        "<div>" * 5000 + "deep" + "</div>" * 5000,
        jsonld({"@type": "Product", "offers": {"price": {"nested": []}}, "name": ["a", {"b": 1}]}),
    ],
    ids=[
        "empty",
        "blank",
        "truncated-tag",
        "malformed",
        "pdf-bytes",
        "utf16-bytes",
        "nul",
        "deep",
        "odd-jsonld",
    ],
)
def test_bad_input_never_raises(html: str | bytes) -> None:
    fields = extract_product(html, URL)

    assert set(fields) == set(FIELDS)
    assert fields["price"] is None
    assert fields["canonical_url"] == URL


def test_huge_page_is_cut_and_still_read() -> None:
    html = page(jsonld(PRODUCT), "<p>filler filler filler</p>" * 400_000)  # ~10 MB

    started = time.perf_counter()
    fields = extract_product(html, URL)

    assert fields["title"] == "Widget Pro"
    assert time.perf_counter() - started < 10


@pytest.mark.parametrize(
    "payload",
    ["Cheap <script>alert(1)</script> Kettle", 'Mug "><img src=x onerror=alert(1)> Large'],
)
@pytest.mark.parametrize("kind", ["visible-text", "jsonld"])
def test_xss_payloads_come_out_as_plain_text(payload: str, kind: str) -> None:
    if kind == "jsonld":
        script = json.dumps({"@type": "Product", "name": payload}).replace("<", "\\u003c")
        html = page(f"<script type='application/ld+json'>{script}</script>")
    else:
        html = page(body=f"<h1>{escape(payload)}</h1>")

    # The extractor returns the text as written; escaping is the templates' job.
    assert extract_product(html, URL)["title"] == payload


def test_prices_are_decimal_strings() -> None:
    fields = extract_product(page(jsonld(PRODUCT)), URL)

    assert Decimal(fields["price"] or "x") == Decimal("12.5")
