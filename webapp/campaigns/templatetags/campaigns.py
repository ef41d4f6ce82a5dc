"""`{% campaign_slot "home_hero" %}`: the visitor's campaign for a placement, escaped.

Renders templates/campaigns/_slot_<placement>.html with `campaign`, `creative` and
`placement` (nothing for the holdout or when no campaign applies), and records the
assignment and the view. It marks the request so the response is made private.
"""

from django import template
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString

from webapp.campaigns.middleware import campaign_rendered_mark
from webapp.campaigns.models import Placement, link_is_safe
from webapp.campaigns.selectors import campaign_for_slot, campaigns_live_for
from webapp.campaigns.services import campaign_slot_record

register = template.Library()


@register.simple_tag(takes_context=True)
def campaign_slot(context: template.Context, placement: str) -> SafeString:
    """The slot's HTML for the request's visitor ("" when nothing is shown)."""
    if placement not in Placement.values:
        raise template.TemplateSyntaxError(
            f"campaign_slot: unknown placement {placement!r}; use one of {Placement.values}."
        )
    request = context.get("request")
    visitor = getattr(request, "visitor", None)
    decision = campaign_for_slot(visitor=visitor, placement=placement)
    if request is not None and (decision is not None or _any_live(placement)):
        campaign_rendered_mark(request)  # the page differs between visitors
    if decision is None or visitor is None:
        return SafeString("")
    campaign_slot_record(decision=decision, visitor=visitor)
    if decision.creative is None:
        return SafeString("")
    return SafeString(
        render_to_string(
            f"campaigns/_slot_{placement}.html",
            {"campaign": decision.campaign, "creative": decision.creative, "placement": placement},
        )
    )


def _any_live(placement: str) -> bool:
    return bool(campaigns_live_for(placement=placement, now=timezone.now()))


@register.filter
def campaign_safe_url(url: str) -> str:
    """The URL when it is http(s) or a local path, else "" (no javascript: links)."""
    return url if isinstance(url, str) and link_is_safe(url) else ""
