"""Small pieces of markup used on every page: status badges and times."""

from __future__ import annotations

from datetime import datetime

from django import forms, template
from django.forms import BoundField
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from chains.redaction import MASK
from chains.safe_url import safe_url as _safe_url
from dashboard.presenters import StatusView, status_html, status_view

register = template.Library()


@register.simple_tag
def mask() -> str:
    """What a masked variable's value shows as."""
    return MASK


@register.simple_tag
def status(value: StatusView | str, size: str = "") -> SafeString:
    """A status as an icon and a word, never by colour alone."""
    return status_html(value if isinstance(value, StatusView) else status_view(value), size)


@register.simple_tag
def when(moment: datetime | None, style: str = "datetime") -> SafeString:
    """A time in UTC that the page's script rewrites into the reader's own timezone.

    ``style`` is ``datetime`` (a date and time) or ``relative`` (``5 min ago``).
    """
    if moment is None:
        return format_html('<span class="muted">{}</span>', "—")
    return format_html(
        '<time datetime="{}" data-style="{}" title="{} UTC">{} UTC</time>',
        moment.isoformat(),
        style,
        moment.strftime("%Y-%m-%d %H:%M:%S"),
        moment.strftime("%Y-%m-%d %H:%M"),
    )


@register.filter
def safe_url(url: object) -> str:
    """The URL when it is http(s), else "" (so `{% if x|safe_url %}` shows no link)."""
    return _safe_url(url)


@register.filter
def short_sha(sha: str) -> str:
    return (sha or "")[:8]


@register.simple_tag
def field_input(field: BoundField) -> SafeString:
    """A filter field as a plain input or select, without a template per option (a project
    select may hold hundreds)."""
    widget = field.field.widget
    value = field.value()
    if isinstance(value, list | tuple):  # a multiple-choice filter shown as one select
        value = value[0] if value else None
    value = "" if value is None else str(value)
    described = f"{field.id_for_label}-error" if field.errors else ""
    if isinstance(widget, forms.Select):
        options = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            (
                (str(k), " selected" if str(k) == value else "", label)
                for k, label in widget.choices
            ),
        )
        return format_html(
            '<select name="{}" id="{}"{}>{}</select>',
            field.html_name,
            field.id_for_label,
            format_html(' aria-describedby="{}"', described) if described else "",
            options,
        )
    return field.as_widget(attrs={"aria-describedby": described} if described else None)
