"""Site pages: the shop, sign up / log in / log out, the account and consent."""

from django.contrib.auth import views as auth_views
from django.urls import path

from webapp.views import accounts, pages

urlpatterns = [
    path("", pages.home, name="home"),
    path("c/<slug:slug>/", pages.category, name="category"),
    # External ids come from other systems and may contain slashes.
    path("i/<path:external_id>/", pages.item, name="item"),
    path("search/", pages.search, name="search"),
    path("widget/", pages.widget_demo, name="widget-demo"),
    path("consent/", pages.consent, name="consent"),
    path("accounts/signup/", accounts.signup, name="signup"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", accounts.account, name="account"),
    path("account/export/", accounts.account_export, name="account-export"),
    path("account/erase/", accounts.account_erase, name="account-erase"),
]
