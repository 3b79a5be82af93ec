"""The one chain filter (django-filter): the dashboard's chain list and ``GET /api/v1/chains/``
narrow chains with the same ``ChainFilterSet``, so the same parameters give the same chains.

Both surfaces keep their parameter names: the dashboard's form shows ``q``, ``project`` (an id
from its select), ``number``, ``ref``, ``status``, ``forge`` (an id) and ``within``; the API
documents ``search``, ``project`` (a path), ``forge`` (a slug), ``change``, ``status`` (repeatable),
``target_branch``, ``created_after`` and ``created_before``. Each is accepted by both.

Parsing never touches the database (polls parse them too). What the reader may see is narrowed
before (the queryset handed in is ``visible_to`` the reader); a filter only narrows further.
A blank parameter filters nothing; an invalid one is left out on the dashboard (and shown as
such) and is a 400 naming it in the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import reduce
from operator import and_
from typing import Any

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.forms import BoundField
from django.utils import timezone
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field

from chains.models import Chain, Run
from chains.status import Status

MAX_ID = 2**63 - 1  # the widest integer column; larger values would not reach the database
MAX_WORDS = 10  # search words looked at
MIN_SHA_PREFIX = 6  # a search word this long of hex digits also matches the start of a commit
WITHIN = {
    "1h": ("last hour", timedelta(hours=1)),
    "24h": ("last 24 hours", timedelta(days=1)),
    "7d": ("last 7 days", timedelta(days=7)),
    "30d": ("last 30 days", timedelta(days=30)),
}
# The fields the dashboard's filter form shows, in order.
DASHBOARD_FIELDS = ("q", "project", "number", "ref", "status", "forge", "within", "attention")
# A chain needs attention when it failed (a refused run fails too: runstate.initial) or one of its
# runs failed or waits for a manual action.
ATTENTION_RUNS = (Status.FAILED, Status.MANUAL)


@extend_schema_field({"type": "integer", "minimum": 0, "maximum": MAX_ID})
class IntegerFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


@extend_schema_field({"type": "string", "pattern": r"^[-a-zA-Z0-9_]+$", "maxLength": 50})
class SlugFilter(django_filters.CharFilter):
    field_class = forms.SlugField


class UtcDateTimeField(IsoDateTimeField):
    """ISO 8601, taken to UTC (PostgreSQL refuses offsets beyond 15:59; year 1 minus an offset
    is no date at all)."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None or parsed.tzinfo is None:
            return parsed
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class OneChoice(forms.Select):
    """A single select feeding a multiple-choice filter (the dashboard picks one status)."""

    allow_multiple_selected = False

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        getlist = getattr(data, "getlist", None)
        return getlist(name) if getlist else data.get(name)


def _search(queryset: QuerySet[Chain], name: str, value: str) -> QuerySet[Chain]:
    """Each word is found in the title, author, source branch or project path, or (hex, at
    least MIN_SHA_PREFIX long) is the start of the head commit."""
    words = value.split()[:MAX_WORDS]
    if not words:
        return queryset

    def one(word: str) -> Q:
        match = (
            Q(title__icontains=word)
            | Q(author__icontains=word)
            | Q(source_branch__icontains=word)
            | Q(repository__path__icontains=word)
        )
        lowered = word.lower()
        if len(lowered) >= MIN_SHA_PREFIX and all(c in "0123456789abcdef" for c in lowered):
            match |= Q(head_sha__startswith=lowered)
        return match

    return queryset.filter(reduce(and_, (one(word) for word in words)))


class ChainFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label="Search",
        method=_search,
        max_length=200,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "title, author, project, branch or commit"}
        ),
        help_text="Dashboard name of `search`",
    )
    search = django_filters.CharFilter(
        method=_search,
        max_length=200,
        help_text="Words, each found in the title, author, source branch, project path or (six "
        "or more hex digits) as the start of the head sha",
    )
    project = django_filters.CharFilter(
        label="Project",
        method="by_project",
        max_length=255,
        widget=forms.Select,
        help_text="Upstream project path, e.g. acme/app (or its id in Baton)",
    )
    number = IntegerFilter(
        label="Change number",
        field_name="change_number",
        min_value=0,
        max_value=MAX_ID,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "pattern": "[0-9]*", "size": 6}),
        help_text="Dashboard name of `change`",
    )
    change = IntegerFilter(
        field_name="change_number",
        min_value=0,
        max_value=MAX_ID,
        help_text="Merge request iid or pull request number",
    )
    ref = django_filters.CharFilter(
        label="Branch",
        method="by_ref",
        max_length=255,
        help_text="The source or target branch, or the ref the chain ran for",
    )
    target_branch = django_filters.CharFilter(field_name="target_branch", max_length=255)
    status = django_filters.MultipleChoiceFilter(
        label="Status",
        choices=Status.choices,
        distinct=False,  # no join: nothing to repeat (and the cursor selects ids only)
        widget=OneChoice,
        help_text="One or more (repeat the parameter)",
    )
    forge = SlugFilter(
        label="Forge",
        method="by_forge",
        max_length=50,
        widget=forms.Select,
        help_text="Forge slug, as in /hooks/<slug>/ (or its id in Baton)",
    )
    within = django_filters.ChoiceFilter(
        label="Started",
        choices=[(key, label) for key, (label, _) in WITHIN.items()],
        empty_label="any time",
        method="started_within",
        help_text="1h, 24h, 7d or 30d",
    )
    attention = django_filters.BooleanFilter(
        label="Needs attention",
        method="needs_attention",
        widget=forms.CheckboxInput,
        help_text="true: only chains that failed, or with a run that failed, was refused by "
        "permissions or waits for a manual action",
    )
    created_after = UtcDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="ISO 8601, inclusive"
    )
    created_before = UtcDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="ISO 8601, exclusive"
    )

    class Meta:
        model = Chain
        fields: list[str] = []

    def by_project(self, queryset: QuerySet[Chain], name: str, value: str) -> QuerySet[Chain]:
        value = value.strip()
        if value.isdigit():  # a path always has a slash: digits are the dashboard's id
            if int(value) > MAX_ID:
                return queryset.none()
            return queryset.filter(repository_id=int(value))
        return queryset.filter(repository__path=value)

    def by_forge(self, queryset: QuerySet[Chain], name: str, value: str) -> QuerySet[Chain]:
        if value.isdigit() and int(value) <= MAX_ID:  # the dashboard's id, or an all-digit slug
            return queryset.filter(Q(forge_id=int(value)) | Q(forge__slug=value))
        return queryset.filter(forge__slug=value)

    def by_ref(self, queryset: QuerySet[Chain], name: str, value: str) -> QuerySet[Chain]:
        ref = value.strip()
        if not ref:
            return queryset
        return queryset.filter(
            Q(source_branch=ref)
            | Q(target_branch=ref)
            | Q(upstream_ref__in=[ref, f"refs/heads/{ref}", f"refs/tags/{ref}"])
        )

    def needs_attention(
        self, queryset: QuerySet[Chain], name: str, value: bool | None
    ) -> QuerySet[Chain]:
        if not value:
            return queryset
        runs = Run.objects.filter(chain=OuterRef("pk"), status__in=ATTENTION_RUNS)
        return queryset.filter(Q(status=Status.FAILED) | Exists(runs))

    def started_within(self, queryset: QuerySet[Chain], name: str, value: str) -> QuerySet[Chain]:
        return queryset.filter(created_at__gte=timezone.now() - WITHIN[value][1])

    # --- the dashboard's form -----------------------------------------------------------------

    def with_choices(
        self, repositories: list[tuple[int, str]], forges: list[tuple[int, str]]
    ) -> ChainFilterSet:
        """Fill the dashboard's selects (only when the form is rendered: one query each)."""
        form = self.form
        form.fields["project"].widget.choices = [("", "all projects"), *repositories]
        form.fields["forge"].widget.choices = [("", "all forges"), *forges]
        form.fields["status"].widget.choices = [("", "any status"), *Status.choices]
        return self

    def dashboard_fields(self) -> list[BoundField]:
        return [self.form[name] for name in DASHBOARD_FIELDS]

    @property
    def active(self) -> bool:
        return any(self.data.get(name) for name in DASHBOARD_FIELDS)


def filtered(params: Any, chains: QuerySet[Chain]) -> QuerySet[Chain]:
    """``chains`` narrowed by the query parameters ``params``, newest first (invalid parameters
    left out). Without any filter's parameter (the plain list and its polls) no filter set is
    built: it would filter nothing, and building its form costs about a millisecond."""
    if any(name in params for name in ChainFilterSet.base_filters):
        chains = ChainFilterSet(params, queryset=chains).qs
    return chains.order_by("-created_at", "-pk")
