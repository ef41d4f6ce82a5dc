"""Account pages: sign up, history, download and erasure of one's own data."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from webapp.models import Visitor
from webapp.selectors.visitors import visitor_for_account, visitor_history
from webapp.services.visitors import visitor_erase, visitor_export
from webapp.views.pages import page_of

HISTORY_PER_PAGE = 50
EXPORT_FILENAME = "reelshop-my-data.json"


def _account_visitor(request: HttpRequest) -> Visitor | None:
    return visitor_for_account(request_visitor=getattr(request, "visitor", None), user=request.user)


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("account")
    form: UserCreationForm[User] = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome to the shop, your account is ready.")
        return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "registration/signup.html", {"form": form})


@require_GET
@login_required
def account(request: HttpRequest) -> HttpResponse:
    visitor = _account_visitor(request)
    page_obj = page_of(request, visitor_history(visitor=visitor), HISTORY_PER_PAGE)
    return render(request, "shop/account.html", {"visitor": visitor, "page_obj": page_obj})


@require_GET
@login_required
@never_cache
def account_export(request: HttpRequest) -> HttpResponse:
    visitor = _account_visitor(request)
    data = visitor_export(visitor=visitor) if visitor else {"visitor": None, "events": []}
    response = JsonResponse(data, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="{EXPORT_FILENAME}"'
    return response


@require_http_methods(["GET", "POST"])
@login_required
def account_erase(request: HttpRequest) -> HttpResponse:
    """GET asks for confirmation; POST erases the tracking data and logs out."""
    if request.method == "GET":
        return render(request, "shop/account_erase.html")
    visitor = _account_visitor(request)
    erased = visitor_erase(visitor=visitor) if visitor else {"events": 0}
    request.visitor = None  # type: ignore[attr-defined]  # it no longer exists
    logout(request)
    messages.success(
        request, f"Your tracking data was deleted ({erased['events']} events). Your account stays."
    )
    response = redirect("home")
    response.delete_cookie(settings.VISITOR_COOKIE_NAME, samesite="Lax")
    return response
