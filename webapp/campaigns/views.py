"""The click endpoint of campaign links: count the click, then go to the creative's link."""

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from webapp.campaigns.models import Creative, link_is_safe
from webapp.campaigns.services import campaign_click_record
from webapp.experiments.selectors import person_of


@never_cache
@require_GET
def campaign_click(request: HttpRequest, creative_id: int) -> HttpResponse:
    """Record one click by the request's visitor (not bots) and redirect to the link."""
    creative = Creative.objects.filter(pk=creative_id).exclude(link_url="").first()
    if creative is None or not link_is_safe(creative.link_url):
        raise Http404(f"No campaign link #{creative_id}.")
    visitor = getattr(request, "visitor", None)
    if visitor is not None and not visitor.is_bot:
        campaign_click_record(creative=creative, person=person_of(visitor))
    return HttpResponseRedirect(creative.link_url)
