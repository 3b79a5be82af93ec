"""Every list and form of the admin renders, and no page ever contains a token or a secret."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.db.models import Model
from django.test import Client, RequestFactory
from django.urls import reverse

from tests.console.conftest import SECRETS, World

MODELS = [model for model in admin.site._registry]


def _assert_no_secret(html: str, url: str) -> None:
    for secret in SECRETS:
        assert secret not in html, f"{url} shows a secret"


def _name(model: type[Model]) -> str:
    return model._meta.label_lower


@pytest.mark.parametrize("model", MODELS, ids=_name)
def test_changelist_add_and_change_pages_render(
    admin_client: Client, admin_user: User, world: World, model: type[Model]
) -> None:
    Group.objects.get_or_create(name="operators")
    opts = model._meta
    urls = [reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")]
    model_admin = admin.site._registry[model]
    obj = model._default_manager.first()
    if opts.app_label in ("chains", "auth"):
        assert obj is not None, f"the fixture has no {opts.label}"
    if obj is not None:
        urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
        urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_history", args=[obj.pk]))
    request = RequestFactory().get("/")
    request.user = admin_user
    if model_admin.has_add_permission(request):
        urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
    for url in urls:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        _assert_no_secret(response.content.decode(), url)


def test_admin_index_and_filtered_lists_render(admin_client: Client, world: World) -> None:
    pages = [
        reverse("admin:index"),
        reverse("admin:chains_grant_changelist") + "?action=view",
        reverse("admin:chains_grant_changelist") + f"?team__id__exact={world.team.pk}",
        reverse("admin:chains_delivery_changelist") + "?outcome=failed&forge__id__exact=1",
        reverse("admin:chains_auditevent_changelist") + "?surface=webhook&q=rita",
        reverse("admin:chains_identity_changelist") + "?q=rita",
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        _assert_no_secret(response.content.decode(), url)


def test_the_forge_page_explains_the_webhook_without_showing_the_secret(
    admin_client: Client, world: World
) -> None:
    response = admin_client.get(reverse("admin:chains_forge_change", args=[world.gitlab.pk]))
    html = response.content.decode()
    assert "http://testserver/hooks/gl/" in html or "/hooks/gl/" in html
    for event in ("Merge request events", "Comments", "Pipeline events"):
        assert event in html
    assert "Test connection" in html and "Generate a new secret" in html
    assert "Show and copy" in html
    _assert_no_secret(html, "forge page")
    github = admin_client.get(reverse("admin:chains_forge_change", args=[world.github.pk]))
    for event in ("Pull requests", "Issue comments", "Workflow runs"):
        assert event in github.content.decode()


def test_staff_without_superuser_sees_no_secret_controls(world: World, client: Client) -> None:
    staff = User.objects.create_user("sam", password="pw-sam-1", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__endswith="_forge"))
    client.force_login(staff)
    response = client.get(reverse("admin:chains_forge_change", args=[world.gitlab.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Only a superuser can show and copy it" in html
    reveal = reverse("admin:chains_forge_webhook_secret", args=[world.gitlab.pk])
    new = reverse("admin:chains_forge_new_secret", args=[world.gitlab.pk])
    assert reveal not in html and new not in html
    assert "Test connection" in html
    assert client.post(reveal).status_code == 403
    assert client.post(new).status_code == 403


def test_deliveries_and_the_audit_log_are_read_only(admin_client: Client, world: World) -> None:
    for name in ("delivery", "auditevent", "chain"):
        assert admin_client.get(reverse(f"admin:chains_{name}_add")).status_code == 403
    page = admin_client.get(reverse("admin:chains_delivery_change", args=[world.delivery.pk]))
    html = page.content.decode()
    assert "&quot;object_kind&quot;: &quot;merge_request&quot;" in html  # pretty-printed
    assert "Process again" in html
    assert 'name="_save"' not in html
