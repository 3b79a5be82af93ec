from django.urls import path

from bots import webhooks

urlpatterns = [
    path("<slug:slug>/", webhooks.receive, name="webhook"),
]
