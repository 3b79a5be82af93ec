"""Filter forms. Parsing never touches the database (polls parse them too); choices for the
selects are filled in only when a form is rendered."""

from __future__ import annotations

from datetime import timedelta

from django import forms

from dashboard.presenters import STATUS_CHOICES
from dashboard.queries import ChainFilters

WITHIN = {
    "1h": ("last hour", timedelta(hours=1)),
    "24h": ("last 24 hours", timedelta(days=1)),
    "7d": ("last 7 days", timedelta(days=7)),
    "30d": ("last 30 days", timedelta(days=30)),
}


class ChainFilterForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "title, author, project, branch or commit"}
        ),
    )
    project = forms.IntegerField(label="Project", required=False, widget=forms.Select)
    number = forms.IntegerField(
        label="Change number",
        required=False,
        min_value=1,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "pattern": "[0-9]*", "size": 6}),
    )
    ref = forms.CharField(label="Branch", required=False, max_length=255)
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "any status"), *STATUS_CHOICES]
    )
    forge = forms.IntegerField(label="Forge", required=False, widget=forms.Select)
    within = forms.ChoiceField(
        label="Started",
        required=False,
        choices=[("", "any time")] + [(key, label) for key, (label, _) in WITHIN.items()],
    )

    def with_choices(
        self, repositories: list[tuple[int, str]], forges: list[tuple[int, str]]
    ) -> ChainFilterForm:
        self.fields["project"].widget.choices = [("", "all projects"), *repositories]
        self.fields["forge"].widget.choices = [("", "all forges"), *forges]
        return self

    def filters(self) -> ChainFilters:
        """The valid part of what was asked; an invalid field is left out (and shown as such)."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        within = WITHIN.get(data.get("within") or "")
        return ChainFilters(
            project=data.get("project"),
            number=data.get("number"),
            ref=(data.get("ref") or "").strip(),
            status=data.get("status") or "",
            forge=data.get("forge"),
            within=within[1] if within else None,
            q=(data.get("q") or "").strip(),
        )

    @property
    def active(self) -> bool:
        return any(self.data.get(name) for name in self.fields)


class ReleaseForm(forms.Form):
    ref = forms.CharField(
        label="Branch or tag",
        max_length=255,
        widget=forms.TextInput(
            attrs={"list": "known-refs", "placeholder": "release/1.2", "autocomplete": "off"}
        ),
    )

    def ref_value(self) -> str:
        return (self.cleaned_data.get("ref") or "").strip() if self.is_valid() else ""
