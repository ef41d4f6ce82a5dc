"""Shop pages: home, category listings, item detail, search and the consent choice."""

import re
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from recommender.candidates import Section
from recommender.selectors import (
    category_item_pks,
    category_ranking,
    home_shelves,
    item_shelves,
    served_cache_identity,
    served_cache_seconds,
)
from scraper.price_selectors import item_price_comparison
from webapp.experiments.models import LAYOUT_TEMPLATES
from webapp.experiments.serving import PageVariants, page_exposures_record, page_variants
from webapp.models import Category, Item, Visitor
from webapp.selectors.catalog import (
    DEFAULT_SORT,
    ITEM_SORTS,
    category_children,
    category_get,
    item_get_active,
    items_active,
    items_in_category,
    items_search,
)
from webapp.selectors.visitors import visitor_of_user
from webapp.services.interactions import interaction_record_view
from webapp.services.visitors import visitor_give_consent

HOME_LAYOUT = "home_layout"  # the page-level placement of layout experiments
CATEGORY_ORDER = "category_order"  # the page-level placement of category-order experiments
HOME_PLACEMENTS = tuple(section.value for section in Section if section.startswith("home_"))
ITEM_PLACEMENTS = tuple(section.value for section in Section if section.startswith("item_"))
ITEMS_PER_PAGE = 24
HOME_SHELF_SIZE = 12
ITEM_SHELF_SIZE = 6
FOR_YOU_SORT = "for_you"
CONSENT_MAX_AGE = 60 * 60 * 24 * 365
CONSENT_CHOICES = ("yes", "no")
MOBILE_UA = re.compile(r"Mobi|iPhone|iPod|Android.*Mobile|Windows Phone", re.IGNORECASE)
TABLET_UA = re.compile(r"iPad|Tablet|Android|Kindle|Silk", re.IGNORECASE)


def page_of(request: HttpRequest, object_list: QuerySet[Any], per_page: int) -> Page[Any]:
    """The requested page (`?page=`), the first or last one when the number is off."""
    return Paginator(object_list, per_page).get_page(request.GET.get("page"))


def device_from_user_agent(user_agent: str) -> str:
    if MOBILE_UA.search(user_agent):
        return "mobile"
    if TABLET_UA.search(user_agent):
        return "tablet"
    return "desktop"


def view_context(request: HttpRequest) -> dict[str, str]:
    """What we keep about the page view itself, alongside the event."""
    return {
        "device": device_from_user_agent(request.headers.get("User-Agent", "")),
        "referrer": request.headers.get("Referer", "")[:500],
        "page": request.get_full_path()[:500],
    }


def private(response: HttpResponse) -> HttpResponse:
    """Content made for this visitor: browsers may keep it, shared caches must not."""
    patch_cache_control(response, private=True, max_age=0)
    patch_vary_headers(response, ["Cookie"])
    return response


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    visitor = getattr(request, "visitor", None)
    variants = page_variants(placements=(*HOME_PLACEMENTS, HOME_LAYOUT), visitor=visitor)
    html = _home_shelves_html(visitor, variants)
    response = private(render(request, _home_template(variants), {"shelves_html": html}))
    page_exposures_record(variants=variants, visitor=visitor)
    return response


def _home_template(variants: PageVariants) -> str:
    """The page layout: a "home_layout" experiment's variant may choose another one."""
    decision = variants.decisions.get(HOME_LAYOUT)
    template = decision.config.get("template", "") if decision else ""
    return template if template in LAYOUT_TEMPLATES else "shop/home.html"


def _home_shelves_html(visitor: Visitor | None, variants: PageVariants) -> str:
    """The home sections as HTML, cached under what decides them (like the shelves)."""
    strategies = variants.strategies
    identity = served_cache_identity(visitor, strategies)
    key = f"recs:html:v1:home:{identity}:{HOME_SHELF_SIZE}"
    cache = caches["recommendations"]
    html: str | None = cache.get(key)
    if html is None:
        served = home_shelves(visitor=visitor, k=HOME_SHELF_SIZE, strategies=strategies)
        context = {"shelves": served.shelves, "variants": variants.tokens}
        html = render_to_string("shop/_shelves.html", context)
        cache.set(key, html, served_cache_seconds(served))
    return html  # a SafeString (rendered and escaped by the template), pickled as one


@require_safe
def category(request: HttpRequest, slug: str) -> HttpResponse:
    found = category_get(slug=slug)
    if found is None:
        raise Http404("No such category.")
    visitor = getattr(request, "visitor", None)
    variants = page_variants(placements=(CATEGORY_ORDER,), visitor=visitor)
    sort = request.GET.get("sort") or _default_sort(variants)
    sort = sort if sort in ITEM_SORTS or sort == FOR_YOU_SORT else DEFAULT_SORT
    listing: QuerySet[Item] | list[Item] = items_in_category(
        category=found, sort=sort if sort in ITEM_SORTS else DEFAULT_SORT
    )
    ranked = _ranked_for_visitor(request, found) if sort == FOR_YOU_SORT else None
    personal = ranked is not None
    if ranked is not None:
        listing = ranked
    response = render(
        request,
        "shop/category.html",
        {
            "category": found,
            "ancestors": found.ancestors(),
            "subcategories": category_children(category=found),
            "page_obj": Paginator(listing, ITEMS_PER_PAGE).get_page(request.GET.get("page")),
            "sort": sort,
            "sorts": [
                *((key, label) for key, (label, _) in ITEM_SORTS.items()),
                (FOR_YOU_SORT, "Recommended for you"),
            ],
        },
    )
    page_exposures_record(variants=variants, visitor=visitor)
    # The plain listing is the same for everyone; a personal ranking (or a variant's
    # choice of order) is not.
    return private(response) if personal or variants.decisions else response


def _default_sort(variants: PageVariants) -> str:
    """The order of a category page without ?sort=: a "category_order" variant may rank
    it for the visitor."""
    decision = variants.decisions.get(CATEGORY_ORDER)
    ranked = decision is not None and decision.config.get("category_order") == "personalized"
    return FOR_YOU_SORT if ranked else DEFAULT_SORT


def _ranked_for_visitor(request: HttpRequest, found: Category) -> list[Item] | None:
    """The category's items in the visitor's predicted order, None without a signal."""
    pks = category_item_pks(category=found)
    order = category_ranking(visitor=getattr(request, "visitor", None), item_pks=pks)
    if order is None:
        return None
    by_pk = items_active().in_bulk(order)
    return [by_pk[pk] for pk in order if pk in by_pk]


def _record_view(request: HttpRequest, item: Item) -> None:
    visitor = getattr(request, "visitor", None)
    if visitor is None or request.method != "GET":
        return  # no consent (or a HEAD request): no behavioural event
    if not request.session.session_key:
        request.session.save()
    interaction_record_view(
        visitor=visitor,
        item=item,
        session_id=request.session.session_key or "",
        context=view_context(request),
    )


@require_safe
def item(request: HttpRequest, external_id: str) -> HttpResponse:
    found = item_get_active(external_id=external_id)
    if found is None:
        raise Http404("This item is not available.")
    _record_view(request, found)
    attributes = attribute_rows(found.attributes)
    ancestors = [*found.category.ancestors(), found.category] if found.category else []
    visitor = getattr(request, "visitor", None)
    variants = page_variants(placements=ITEM_PLACEMENTS, visitor=visitor)
    served = item_shelves(
        visitor=visitor, item_pk=found.pk, k=ITEM_SHELF_SIZE, strategies=variants.strategies
    )
    context = {
        "item": found,
        "attributes": attributes,
        "breadcrumb": ancestors,
        "shelves": served.shelves,
        "price_comparison": item_price_comparison(item=found),
    }
    response = private(render(request, "shop/item.html", context | {"variants": variants.tokens}))
    page_exposures_record(variants=variants, visitor=visitor)
    return response


def attribute_rows(attributes: object) -> list[tuple[str, str]]:
    """Item attributes as (label, text) rows; lists become comma-separated text."""
    if not isinstance(attributes, dict):
        return []
    rows = []
    for key, value in attributes.items():
        if isinstance(value, list | tuple):
            text = ", ".join(str(part) for part in value)
        elif isinstance(value, dict) or value in (None, ""):
            continue
        else:
            text = str(value)
        rows.append((str(key).replace("_", " ").capitalize(), text))
    return rows


@require_safe
def widget_demo(request: HttpRequest) -> HttpResponse:
    """The embeddable widget live, with its snippet (it shows this visitor's beacon token)."""
    return private(render(request, "shop/widget_demo.html"))


@require_safe
def search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:200]
    page_obj = page_of(request, items_search(query=query), ITEMS_PER_PAGE) if query else None
    return render(request, "shop/search.html", {"query": query, "page_obj": page_obj})


@require_POST
def consent(request: HttpRequest) -> HttpResponse:
    """Store the visitor's tracking choice in a cookie and go back where they were."""
    choice = request.POST.get("consent", "")
    if choice not in CONSENT_CHOICES:
        return HttpResponseBadRequest("consent must be 'yes' or 'no'")
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    response = redirect(target if safe else "home")
    response.set_cookie(
        settings.CONSENT_COOKIE_NAME,
        choice,
        max_age=CONSENT_MAX_AGE,
        samesite="Lax",
        secure=request.is_secure(),
    )
    if choice == "no":
        request.visitor = None  # type: ignore[attr-defined]  # the middleware must not re-set it
        response.delete_cookie(settings.VISITOR_COOKIE_NAME, samesite="Lax")
    else:
        account_visitor = visitor_of_user(user=request.user)
        if account_visitor is not None:
            visitor_give_consent(visitor=account_visitor)
    return response
