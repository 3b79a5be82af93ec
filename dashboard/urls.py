from django.contrib.auth import views as auth_views
from django.urls import path

from dashboard import views

urlpatterns = [
    path("", views.chain_list, name="chain-list"),
    path("chains/<int:pk>/", views.chain_detail, name="chain-detail"),
    path("chains/<int:pk>/<slug:verb>/", views.chain_action, name="chain-action"),
    path("runs/<int:pk>/<slug:verb>/", views.run_action, name="run-action"),
    path("releases/", views.release, name="release"),
    path("repositories/<int:pk>/", views.repository_detail, name="repository-detail"),
    path("repositories/<int:pk>/changes/<int:number>/plan/", views.change_plan, name="change-plan"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True, next_page="chain-list"),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="login"), name="logout"),
]
