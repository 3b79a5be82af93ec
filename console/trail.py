"""Every change made in the admin goes to the audit log: who, what, and the fields before/after.

Secrets (encrypted fields, password hashes) are compared but never written: a changed one reads
"(changed)" on both sides, a new one "(set)".
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from django.contrib import admin
from django.db import models
from django.db.models.query import QuerySet
from django.http import HttpRequest

from chains import audit
from chains.models import AuditEvent

CHANGED = "(changed)"
SET = "(set)"
NOT_SET = ""
ALWAYS_SECRET = {"password"}

Snapshot = dict[str, Any]


def secret_fields(model: type[models.Model]) -> set[str]:
    names = {
        f.name
        for f in model._meta.concrete_fields
        if type(f).__module__.startswith("encrypted_fields")
    }
    return names | (ALWAYS_SECRET & {f.name for f in model._meta.concrete_fields})


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return json.loads(json.dumps(value, default=str))


def snapshot(obj: models.Model) -> Snapshot:
    """The fields an admin can change, as JSON-ready values (related objects by their name)."""
    data: Snapshot = {}
    for field in obj._meta.concrete_fields:
        if field.primary_key or getattr(field, "auto_now", False):
            continue
        if getattr(field, "auto_now_add", False):
            continue
        if field.is_relation:
            related = getattr(obj, field.name, None)
            data[field.name] = None if related is None else str(related)
        else:
            data[field.name] = _plain(field.value_from_object(obj))
    if obj.pk is not None:
        for m2m in obj._meta.many_to_many:
            data[m2m.name] = sorted(str(o) for o in getattr(obj, m2m.name).all())
    return data


def stored(obj: models.Model) -> Snapshot | None:
    """The snapshot of ``obj`` as the database has it now (before a save)."""
    if obj.pk is None:
        return None
    found = type(obj)._default_manager.filter(pk=obj.pk).first()
    return snapshot(found) if found is not None else None


def masked(data: Snapshot, secrets: set[str]) -> Snapshot:
    return {k: (SET if v else NOT_SET) if k in secrets else v for k, v in data.items()}


def diff(before: Snapshot, after: Snapshot, secrets: set[str]) -> tuple[Snapshot, Snapshot]:
    """Only the fields that changed; secrets as "(changed)"."""
    old: Snapshot = {}
    new: Snapshot = {}
    for key in sorted(set(before) | set(after)):
        if before.get(key) == after.get(key):
            continue
        if key in secrets:
            old[key] = new[key] = CHANGED
        else:
            old[key], new[key] = before.get(key), after.get(key)
    return old, new


def target_of(obj: models.Model) -> str:
    return f"{obj._meta.verbose_name} #{obj.pk} {obj}"[:500]


def log(
    request: HttpRequest,
    action: str,
    *,
    target: str,
    before: Snapshot | None = None,
    after: Snapshot | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """One admin audit event, before/after included."""
    return audit.record(
        action,
        actor=request.user.get_username(),
        surface=AuditEvent.Surface.ADMIN,
        target=target[:500],
        detail=detail,
        user=request.user,
        remote_addr=request.META.get("REMOTE_ADDR") or None,
        before=before,
        after=after,
    )


def log_saved(
    request: HttpRequest, obj: models.Model, before: Snapshot | None, *, via: str = ""
) -> None:
    """``obj`` was saved: an add when ``before`` is None, else a change (if anything changed)."""
    secrets = secret_fields(type(obj))
    name = obj._meta.model_name
    detail = {"model": obj._meta.label, "id": obj.pk} | ({"via": via} if via else {})
    after = snapshot(obj)
    if before is None:
        log(
            request,
            f"{name}.add",
            target=target_of(obj),
            before=None,
            after=masked(after, secrets),
            detail=detail,
        )
        return
    old, new = diff(before, after, secrets)
    if old or new:
        log(request, f"{name}.change", target=target_of(obj), before=old, after=new, detail=detail)


def log_deleted(
    request: HttpRequest,
    obj: models.Model,
    before: Snapshot,
    pk: Any,
    also: dict[str, int] | None = None,
    *,
    via: str = "",
) -> None:
    secrets = secret_fields(type(obj))
    detail: dict[str, Any] = {"model": obj._meta.label, "id": pk}
    if also:
        detail["also_deleted"] = also
    if via:
        detail["via"] = via
    log(
        request,
        f"{obj._meta.model_name}.delete",
        target=f"{obj._meta.verbose_name} #{pk} {obj}"[:500],
        before=masked(before, secrets),
        after=None,
        detail=detail,
    )


def delete_audited(request: HttpRequest, obj: models.Model, *, via: str = "") -> None:
    before = snapshot(obj)
    pk = obj.pk
    _, per_model = obj.delete()
    also = {label: n for label, n in per_model.items() if n and label != obj._meta.label}
    log_deleted(request, obj, before, pk, also, via=via)


class AuditedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose saves and deletes (inlines and list edits included) are audited."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        form._audit_before = stored(obj) if change else None
        super().save_model(request, obj, form, change)

    def save_related(
        self, request: HttpRequest, form: Any, formsets: Iterable[Any], change: bool
    ) -> None:
        # Django's own order (m2m, then inlines), with the parent's event between them.
        form.save_m2m()
        log_saved(request, form.instance, getattr(form, "_audit_before", None))
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        befores = _inline_befores(formset)
        super().save_formset(request, form, formset, change)
        via = target_of(form.instance)
        for obj in formset.new_objects:
            log_saved(request, obj, None, via=via)
        for obj, _fields in formset.changed_objects:
            _, before = befores.get(id(obj), (obj.pk, None))
            log_saved(request, obj, before, via=via)
        for obj in formset.deleted_objects:
            pk, before = befores.get(id(obj), (obj.pk, None))
            log_deleted(request, obj, before or snapshot(obj), pk, via=via)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        delete_audited(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            delete_audited(request, obj)


def _inline_befores(formset: Any) -> dict[int, tuple[Any, Snapshot]]:
    """(pk, snapshot from the database) of the rows an inline formset is about to change or
    delete, by the identity of the form's instance (a deleted instance loses its pk)."""
    befores: dict[int, tuple[Any, Snapshot]] = {}
    for form in formset.initial_forms:
        pk = form.instance.pk
        if pk is None or not (form.has_changed() or formset._should_delete_form(form)):
            continue
        before = stored(form.instance)
        if before is not None:
            befores[id(form.instance)] = (pk, before)
    return befores
