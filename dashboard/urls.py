from django.urls import path

from dashboard import views

urlpatterns = [
    path("", views.chain_list, name="chain-list"),
    path("chains/<int:pk>/", views.chain_detail, name="chain-detail"),
]
