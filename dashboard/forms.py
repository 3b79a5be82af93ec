"""The release picker's form (the chain list's filters are dashboard.filters.ChainFilterSet)."""

from __future__ import annotations

from django import forms


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
