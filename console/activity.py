"""What happened: chains (read-only), webhook deliveries (with "process again") and the audit log
(filters, search, CSV export)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from functools import partial
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from bots import kicks
from chains.masking import hide_variables
from chains.models import AuditEvent, Chain, Delivery, Repository, Run, ignored_reason
from chains.policy import user_may
from chains.redaction import PRIVATE
from console.trail import log


def pretty_json(value: Any) -> SafeString:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre class="baton-json">{}</pre>', text)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RunInline(admin.TabularInline):
    model = Run
    fk_name = "chain"
    extra = 0
    fields = ("key", "repository", "ref", "strategy", "status", "attempt", "remote_id", "error")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Run]:
        """Only runs in projects the staff member may view (the policy's ``visible_to``)."""
        visible = Repository.objects.visible_to(request.user)
        return super().get_queryset(request).filter(repository__in=visible)


@admin.register(Chain)
class ChainAdmin(ReadOnlyAdmin):
    list_display = ["pk", "repository", "change_number", "short_sha", "status", "created_at"]
    list_filter = ["status", "forge"]
    search_fields = ["repository__path", "title", "author", "head_sha", "source_branch"]
    date_hierarchy = "created_at"
    inlines = [RunInline]
    readonly_fields = [f.name for f in Chain._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Chain]:
        chains = Chain.objects.visible_to(request.user)
        return chains.select_related("repository__forge")

    @admin.display(description="commit", ordering="head_sha")
    def short_sha(self, obj: Chain) -> str:
        return obj.head_sha[:12]


# -- deliveries ------------------------------------------------------------------------------


def process_again(request: HttpRequest, deliveries: list[Delivery]) -> int:
    """Mark the deliveries queued again and hand them to the worker once the change commits."""
    after = {"outcome": Delivery.Outcome.QUEUED.value, "processed_at": None, "detail": ""}
    with transaction.atomic():
        for delivery in deliveries:
            before = {
                "outcome": delivery.outcome,
                "processed_at": delivery.processed_at.isoformat()
                if delivery.processed_at
                else None,
                "detail": delivery.detail,
            }
            # A fresh count: a delivery parked after BATON_MAX_DELIVERY_ATTEMPTS gets as many again.
            Delivery.objects.filter(pk=delivery.pk).update(
                processed_at=None, outcome=Delivery.Outcome.QUEUED, detail="", attempts=0
            )
            log(
                request,
                "delivery.process_again",
                target=f"delivery #{delivery.pk} {delivery.event} from {delivery.forge.slug}",
                before=before,
                after=after,
                detail={"model": delivery._meta.label, "id": delivery.pk},
            )
            transaction.on_commit(
                partial(kicks.deliver, delivery.pk, delivery.forge.kind, delivery.event)
            )
    return len(deliveries)


DELIVERY_FIELDS: tuple[str, ...] = (
    "forge",
    "event",
    "dedupe_key",
    "outcome",
    "reason",
    "attempts",
    "received_at",
    "processed_at",
    "chain_link",
    "payload_display",
)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "pk",
        "forge",
        "event",
        "outcome",
        "received_at",
        "processed_at",
        "attempts",
        "short_detail",
    ]
    list_filter = ["forge", "event", "outcome"]
    search_fields = ["dedupe_key", "detail"]
    date_hierarchy = "received_at"
    actions = ["process_again_action"]
    fields = DELIVERY_FIELDS
    readonly_fields = DELIVERY_FIELDS
    change_form_template = "console/delivery/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return super().get_queryset(request).select_related("forge")

    def has_process_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("chains.change_delivery"))

    @admin.display(description="detail")
    def short_detail(self, obj: Delivery) -> str:
        detail = self.reason(obj)
        return detail if len(detail) <= 80 else detail[:79] + "…"

    @admin.display(description="detail")
    def reason(self, obj: Delivery) -> str:
        """What happened; an ignored delivery stored before its reason was kept says why."""
        if not obj.detail and obj.outcome == Delivery.Outcome.IGNORED:
            return ignored_reason(obj.event)
        return obj.detail

    @admin.display(description="chain")
    def chain_link(self, obj: Delivery) -> SafeString | str:
        chain = Chain.objects.filter(delivery=obj).first()
        if chain is None:
            return "none"
        url = reverse("admin:chains_chain_change", args=[chain.pk])
        return format_html('<a href="{}">{}</a>', url, chain)

    @admin.display(description="payload")
    def payload_display(self, obj: Delivery) -> SafeString:
        # Variables a forge echoes may be secrets Baton does not know of: names only.
        return pretty_json(hide_variables(obj.payload))

    @admin.action(description="Process again", permissions=["process"])
    def process_again_action(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count = process_again(request, list(queryset.select_related("forge")))
        messages.success(request, f"{count} deliveries queued to be processed again.")

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/process-again/",
                self.admin_site.admin_view(self.process_again_view),
                name="chains_delivery_process_again",
            ),
            *super().get_urls(),
        ]

    @method_decorator(require_POST)
    def process_again_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        delivery = get_object_or_404(Delivery.objects.select_related("forge"), pk=object_id)
        if not self.has_process_permission(request):
            raise PermissionDenied
        process_again(request, [delivery])
        messages.success(request, f"Delivery {delivery.pk} is queued to be processed again.")
        return HttpResponseRedirect(reverse("admin:chains_delivery_change", args=[delivery.pk]))

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        context["may_process"] = self.has_process_permission(request)
        return super().render_change_form(request, context, add, change, form_url, obj)


# -- audit log -------------------------------------------------------------------------------

CSV_COLUMNS = [
    "at",
    "actor",
    "user",
    "surface",
    "action",
    "target",
    "chain",
    "run",
    "remote_addr",
    "before",
    "after",
    "detail",
]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    else:
        text = str(value)
    # A spreadsheet runs a cell that starts like a formula: actors and targets come from forges.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_rows(events: QuerySet[AuditEvent]) -> Iterator[list[str]]:
    yield CSV_COLUMNS
    for event in events.select_related("user").iterator(chunk_size=1000):
        yield [
            _cell(event.at.isoformat()),
            _cell(event.actor),
            _cell(event.user.get_username() if event.user else ""),
            _cell(event.surface),
            _cell(event.action),
            _cell(event.target),
            _cell(event.chain_id),
            _cell(event.run_id),
            _cell(event.remote_addr),
            _cell(event.before),
            _cell(event.after),
            _cell(event.detail),
        ]


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(events: QuerySet[AuditEvent]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in csv_rows(events)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="baton-audit-{stamp}.csv"'
    return response


def changes_table(before: Any, after: Any) -> SafeString | str:
    if before is None and after is None:
        return "—"
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    keys = sorted(set(before) | set(after))

    def show(side: dict[str, Any], key: str) -> str:
        if key not in side:
            return "—"
        value = side[key]
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    rows = format_html_join(
        "",
        "<tr><th scope='row'>{}</th><td>{}</td><td>{}</td></tr>",
        ((k, show(before, k), show(after, k)) for k in keys),
    )
    return format_html(
        '<table class="baton-changes"><thead><tr><th>field</th><th>before</th><th>after</th>'
        "</tr></thead><tbody>{}</tbody></table>",
        rows,
    )


AUDIT_FIELDS: tuple[str, ...] = (
    "at",
    "actor",
    "user",
    "surface",
    "action",
    "target",
    "chain",
    "run_link",
    "remote_addr",
    "changes",
    "detail_display",
)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "surface", "action", "target", "changed_fields"]
    list_filter = ["surface", "action", "actor"]
    search_fields = ["actor", "action", "target", "remote_addr"]
    date_hierarchy = "at"
    actions = ["export_csv"]
    fields = AUDIT_FIELDS
    readonly_fields = AUDIT_FIELDS
    change_list_template = "console/auditevent/change_list.html"

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> AuditEvent | None:
        event = super().get_object(request, object_id, from_field)
        if event is not None:
            event.viewer = request.user  # type: ignore[attr-defined]  # for run_link
        return event

    @admin.display(description="run")
    def run_link(self, obj: AuditEvent) -> SafeString | str:
        """The run on its chain's page, when the policy lets the reader view its project; else
        its number in a private project, with no name."""
        run = obj.run
        if run is None:
            return "—"
        viewer = getattr(obj, "viewer", None)
        if not user_may(viewer, "view", run.repository):
            return f"run {run.pk} in {PRIVATE}"
        url = reverse("chain-detail", args=[run.chain_id]) + f"#run-{run.pk}"
        name = run.label or run.key
        return format_html('<a href="{}">run {} {} ({})</a>', url, run.pk, name, run.status)

    @admin.display(description="changed")
    def changed_fields(self, obj: AuditEvent) -> str:
        keys = set(obj.before or {}) | set(obj.after or {})
        return ", ".join(sorted(keys))

    @admin.display(description="before → after")
    def changes(self, obj: AuditEvent) -> SafeString | str:
        return changes_table(obj.before, obj.after)

    @admin.display(description="detail")
    def detail_display(self, obj: AuditEvent) -> SafeString:
        return pretty_json(obj.detail)

    @admin.action(description="Export selected as CSV", permissions=["view"])
    def export_csv(
        self, request: HttpRequest, queryset: QuerySet[AuditEvent]
    ) -> StreamingHttpResponse:
        return csv_response(queryset.order_by("-at", "-pk"))

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="chains_auditevent_export",
            ),
            *super().get_urls(),
        ]

    def export_view(self, request: HttpRequest) -> HttpResponseBase:
        """The whole list as filtered and searched on the page, as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("These filters do not apply to the audit log.")
        return csv_response(changelist.get_queryset(request).order_by("-at", "-pk"))
