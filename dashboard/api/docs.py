"""``/api/docs/``: a plain page listing every operation of the OpenAPI schema, rendered on the
server from the same schema as ``/api/schema/``. (Swagger UI and Redoc load their scripts from a
CDN unless drf-spectacular-sidecar is installed; this page needs nothing from outside, and has no
inline script or style, so the Content-Security-Policy holds here too.)

Both pages are for signed-in people only when ``BATON_API_DOCS_REQUIRE_LOGIN`` is on (the default
unless DEBUG): the schema then answers 401 like the API, the docs page sends a browser to sign in.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.template import Context, Engine
from django.templatetags.static import static
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

PAGE = Engine(autoescape=True).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<link rel="stylesheet" href="{{ stylesheet }}"></head><body>
<header class="top"><nav aria-label="Back to Baton"><a href="{{ home_url }}">◆ Baton</a>
<a href="{{ home_url }}">Back to the dashboard</a></nav></header>
<h1>{{ title }} <small class="muted">version {{ version }}</small></h1>
<p>{{ description }}</p>
<p>Machine-readable schema: <a href="{{ schema_url }}"><code>{{ schema_url }}</code></a>
(OpenAPI 3, YAML; <a href="{{ schema_url }}?format=json">JSON</a>). Authenticate with
<code>Authorization: Token &lt;key&gt;</code> (<code>manage.py create_api_token &lt;user&gt;</code>)
or a signed-in session.</p>
{% for tag, operations in groups %}<h2>{{ tag }}</h2>
{% for op in operations %}<div class="op" id="{{ op.id }}">
<div><span class="method">{{ op.method }}</span><code>{{ op.path }}</code>
<span class="muted">— {{ op.summary }}</span></div>
{% if op.parameters %}<table>{% for p in op.parameters %}<tr><td><code>{{ p.name }}</code></td>
<td class="muted">{{ p.in }} · {{ p.type }}</td><td>{{ p.description }}</td></tr>{% endfor %}
</table>{% endif %}
<div class="muted answers">answers: {{ op.responses|join:", " }}</div>
</div>{% endfor %}{% endfor %}
</body></html>"""
)


def _type(parameter: dict[str, Any]) -> str:
    schema = parameter.get("schema", {})
    if schema.get("type") == "array":
        return f"list of {', '.join(schema.get('items', {}).get('enum', [])) or 'values'}"
    if schema.get("enum"):
        return " | ".join(schema["enum"])
    kind = str(schema.get("type", ""))
    return f"{kind} ({schema['format']})" if schema.get("format") else kind


def operations(schema: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, methods in schema.get("paths", {}).items():
        for method, operation in methods.items():
            tag = (operation.get("tags") or ["api"])[0]
            groups.setdefault(tag, []).append(
                {
                    "id": operation.get("operationId", ""),
                    "method": method.upper(),
                    "path": path,
                    "summary": operation.get("summary") or operation.get("description", ""),
                    "parameters": [
                        {**parameter, "type": _type(parameter)}
                        for parameter in operation.get("parameters", [])
                    ],
                    "responses": sorted(operation.get("responses", {})),
                }
            )
    return sorted(groups.items())


def login_required_for_docs() -> bool:
    return bool(settings.BATON_API_DOCS_REQUIRE_LOGIN)


class SchemaAccess(BasePermission):
    """``/api/schema/``: anyone, or only signed-in people (session or token) when configured."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return not login_required_for_docs() or bool(request.user and request.user.is_authenticated)


def api_docs(request: HttpRequest) -> HttpResponse:
    if login_required_for_docs() and not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    schema = SchemaGenerator().get_schema(request=None, public=True)
    info = schema.get("info", {})
    html = PAGE.render(
        Context(
            {
                "title": info.get("title", "API"),
                "version": info.get("version", ""),
                "description": info.get("description", ""),
                "schema_url": reverse("api:schema"),
                "home_url": reverse("chain-list"),
                "stylesheet": static("css/api-docs.css"),
                "groups": operations(schema),
            }
        )
    )
    return HttpResponse(html)
