from allauth.urls import build_provider_urlpatterns
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from dashboard import repository_views, signin, views

# Sign in with GitLab / GitHub: allauth's forge flows only (no second local sign-in, sign-up or
# password reset of its own); the names its pages link to lead to Baton's sign-in page.
signin_urls = [
    path("3rdparty/", include("allauth.socialaccount.urls")),
    *build_provider_urlpatterns(),
    path("login/", RedirectView.as_view(pattern_name="login"), name="account_login"),
    path("signup/", RedirectView.as_view(pattern_name="login"), name="account_signup"),
    path("inactive/", RedirectView.as_view(pattern_name="login"), name="account_inactive"),
]

urlpatterns = [
    path("", views.chain_list, name="chain-list"),
    path("chains/<int:pk>/", views.chain_detail, name="chain-detail"),
    path("chains/<int:pk>/<slug:verb>/", views.chain_action, name="chain-action"),
    path("runs/<int:pk>/<slug:verb>/", views.run_action, name="run-action"),
    path("releases/", views.release, name="release"),
    path("repositories/", repository_views.repository_index, name="repository-list"),
    path("repositories/<int:pk>/", views.repository_detail, name="repository-detail"),
    path(
        "repositories/<int:pk>/config/",
        repository_views.repository_config,
        name="repository-config",
    ),
    path("health/", repository_views.downstream_health, name="health"),
    path(
        "repositories/<int:pk>/quarantine/<slug:verb>/",
        views.repository_quarantine,
        name="repository-quarantine",
    ),
    path("repositories/<int:pk>/changes/<int:number>/plan/", views.change_plan, name="change-plan"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            redirect_authenticated_user=True,
            next_page="chain-list",
            extra_context={"signin_providers": signin.providers},
        ),
        name="login",
    ),
    path("accounts/", include(signin_urls)),
    path("logout/", auth_views.LogoutView.as_view(next_page="login"), name="logout"),
]
