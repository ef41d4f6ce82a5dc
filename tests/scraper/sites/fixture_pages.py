"""HTML of the fixture shop, rendered from the truth file's product records."""

import json
from html import escape
from typing import Any

Product = dict[str, Any]

_SCHEMA = "https://schema.org/"


def price_text(amount: str, currency: str) -> str:
    """The amount as the shop prints it: "£1,299.00", "1.299,00 €", "$1,299.00", "CHF 1'299.00"."""
    whole, cents = f"{float(amount):,.2f}".split(".")
    if currency == "EUR":
        return f"{whole.replace(',', '.')},{cents} €"
    if currency == "CHF":
        return f"CHF {whole.replace(',', chr(39))}.{cents}"
    symbol = {"GBP": "£", "USD": "$"}[currency]
    return f"{symbol}{whole}.{cents}"


def page(title: str, body: str, head: str = "") -> str:
    """A whole HTML document with the shop's header (which holds a decoy price)."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)} | Fixture Shop</title>{head}</head><body>"
        "<header><a href='/'>Fixture Shop</a> <span class='banner'>Free delivery over £50"
        "</span> <a href='/basket/'>Basket (0 items)</a></header>"
        f"<main>{body}</main><footer>Fixture Shop, a loopback test site.</footer></body></html>"
    )


def product_page(product: Product, base_url: str, related: list[Product], index: int) -> str:
    """A product page in its markup kind: jsonld, microdata, opengraph or none."""
    kind = product["markup"]
    head = {"jsonld": _jsonld_head, "opengraph": _opengraph_head}.get(kind)
    body = _product_block(product, microdata=kind == "microdata", index=index)
    body += _related_block(related)
    return page(product["title"], body, head(product, base_url) if head else "")


def listing_page(
    title: str, products: list[Product], extra_links: list[str], next_url: str | None
) -> str:
    """A category listing: product cards, trap links, and a rel=next link when paginated."""
    cards = "".join(
        f"<li class='card'><a href='{escape(p['path'])}'>{escape(p['title'])}</a> "
        f"<span class='price'>{escape(price_text(p['price'], p['currency']))}</span></li>"
        for p in products
    )
    cards += "".join(
        f"<li class='card'><a href='{escape(u)}'>{escape(u)}</a></li>" for u in extra_links
    )
    head = f"<link rel='next' href='{escape(next_url)}'>" if next_url else ""
    pager = (
        f"<a rel='next' class='next' href='{escape(next_url)}'>Next page</a>" if next_url else ""
    )
    return page(title, f"<h1>{escape(title)}</h1><ul class='listing'>{cards}</ul>{pager}", head)


def malformed(html: str) -> str:
    """The same page with broken nesting, missing end tags and no document end."""
    broken = html.replace("</p>", "").replace("</td>", "").replace("</li>", "")
    broken = broken.replace("<main>", "<main><div><span><b><i>sale</b></i></table></div></div>")
    return broken.split("<footer>")[0] + "<footer><div class='unclosed'>&nbsp &copy Fixture"


def _json_for_script(data: Any) -> str:
    # "<" escaped so that a "</script>" inside product text cannot end the script element.
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _jsonld_head(product: Product, base_url: str) -> str:
    url = base_url + product["canonical_url"]
    offer: dict[str, Any] = {
        "@type": "Offer",
        "price": product["price"],
        "priceCurrency": product["currency"],
        "availability": _SCHEMA + product["availability"],
        "url": url,
    }
    node: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": product["title"],
        "description": product["description"],
        "sku": product["sku"],
        "brand": {"@type": "Brand", "name": product["brand"]},
        "image": [base_url + product["image"]],
        "url": url,
        "offers": offer,
    }
    if product["gtin"] or product["shown_gtin"]:
        node["gtin13"] = product["gtin"] or product["shown_gtin"]
    if product["mpn"]:
        node["mpn"] = product["mpn"]
    variant = product["jsonld_variant"]
    if variant == "graph":
        del node["@context"]
        offer["availability"] = product["availability"]  # the bare name, not the URL
        data: Any = {
            "@context": "https://schema.org",
            "@graph": [
                {"@type": "WebPage", "name": "Fixture Shop", "url": base_url + "/"},
                {"@type": "BreadcrumbList", "itemListElement": []},
                node,
            ],
        }
    elif variant == "offer_list":
        second = {**offer, "price": f"{float(product['price']) + 5:.2f}", "seller": "Marketplace"}
        node["offers"] = [offer, second]
        data = node
    elif variant == "aggregate":
        high = f"{float(product['price']) * 1.5:.2f}"
        node["offers"] = {
            "@type": "AggregateOffer",
            "lowPrice": product["price"],
            "highPrice": high,
            "priceCurrency": product["currency"],
            "offerCount": 3,
            "offers": [{**offer, "availability": "http://schema.org/InStock"}],
        }
        data = node
    else:
        data = node
    breadcrumbs = {
        "@context": "https://schema.org",
        "@type": "BreadcrumbList",
        "itemListElement": [],
    }
    return (
        f"<script type='application/ld+json'>{_json_for_script(breadcrumbs)}</script>"
        f"<script type='application/ld+json'>{_json_for_script(data)}</script>"
        f"<link rel='canonical' href='{escape(url)}'>"
    )


def _opengraph_head(product: Product, base_url: str) -> str:
    url = base_url + product["canonical_url"]
    availability = "in stock" if product["availability"] == "InStock" else "out of stock"
    tags = {
        "og:type": "product",
        "og:title": product["title"],
        "og:description": product["description"],
        "og:image": base_url + product["image"],
        "og:url": url,
        "product:price:amount": product["price"],
        "product:price:currency": product["currency"],
        "product:availability": availability,
        "product:brand": product["brand"],
        "product:retailer_item_id": product["sku"],
    }
    metas = "".join(f"<meta property='{escape(k)}' content='{escape(v)}'>" for k, v in tags.items())
    return metas + f"<link rel='canonical' href='{escape(url)}'>"


def _product_block(product: Product, *, microdata: bool, index: int) -> str:
    def prop(name: str) -> str:
        return f" itemprop='{name}'" if microdata else ""

    title = escape(product["title"])
    price = escape(price_text(product["price"], product["currency"]))
    old = ""
    if index % 3 == 0:
        was = price_text(f"{float(product['price']) * 1.25:.2f}", product["currency"])
        old = f"<del class='old-price'>{escape(was)}</del> "
    offer = (
        f"<div class='price-box'{prop('offers')}"
        + (" itemscope itemtype='https://schema.org/Offer'>" if microdata else ">")
        + (
            f"<meta itemprop='priceCurrency' content='{product['currency']}'>"
            f"<link itemprop='availability' href='{_SCHEMA}{product['availability']}'>"
            if microdata
            else ""
        )
        + f"{old}<span class='price'"
        + (f" itemprop='price' content='{product['price']}'" if microdata else "")
        + f">{price}</span>"
        f"<p class='stock'>{escape(product['availability_text'])}</p></div>"
    )
    rows = [("SKU", product["sku"], "sku"), ("Brand", product["brand"], "brand")]
    gtin = product["gtin"] or product["shown_gtin"]
    if gtin:
        rows.append(("EAN", gtin, "gtin13"))
    if product["mpn"]:
        rows.append(("Model", product["mpn"], "mpn"))
    if index % 2 and not microdata:
        specs = (
            "<ul class='specs'>"
            + "".join(f"<li>{label}: {escape(value)}</li>" for label, value, _ in rows)
            + "</ul>"
        )
    else:
        specs = (
            "<table class='specs'>"
            + "".join(
                f"<tr><th>{label}</th><td{prop(name)}>{escape(value)}</td></tr>"
                for label, value, name in rows
            )
            + "</table>"
        )
    scope = " itemscope itemtype='https://schema.org/Product'" if microdata else ""
    return (
        f"<div class='product'{scope}>"
        + (f"<link itemprop='url' href='{escape(product['canonical_url'])}'>" if microdata else "")
        + f"<div class='gallery'><img src='{escape(product['image'])}' alt='{title}'"
        f"{prop('image')}></div>"
        f"<h1{prop('name')}>{title}</h1>{offer}"
        "<button type='submit' class='buy'>Add to basket</button>"
        f"{specs}<div class='product-description'><h2>Description</h2>"
        f"<p{prop('description')}>{escape(product['description'])}</p></div></div>"
    )


def _related_block(related: list[Product]) -> str:
    cards = "".join(
        f"<li><a href='{escape(p['path'])}'>{escape(p['title'])}</a> "
        f"<span class='price'>{escape(price_text(p['price'], p['currency']))}</span> "
        f"<span>{escape(p['availability_text'])}</span></li>"
        for p in related
    )
    return f"<section class='related'><h2>Related products</h2><ul>{cards}</ul></section>"
