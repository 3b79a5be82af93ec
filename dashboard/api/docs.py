"""``/api/docs/``: a plain page listing every operation of the OpenAPI schema, rendered on the
server from the same schema as ``/api/schema/``. (Swagger UI and Redoc load their scripts from a
CDN unless drf-spectacular-sidecar is installed; this page needs nothing from outside.)"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template import Context, Engine
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator

PAGE = Engine(autoescape=True).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{margin-top:2rem;border-bottom:1px solid #ddd}code{background:#f4f4f4;padding:0 .2em}
.op{margin:1rem 0}.method{font-weight:700;display:inline-block;width:4.5rem}
table{border-collapse:collapse;margin:.3rem 0 0 4.5rem}td{padding:.1rem .6rem;vertical-align:top}
.muted{color:#666}
</style></head><body>
<h1>{{ title }} <small class="muted">version {{ version }}</small></h1>
<p>{{ description }}</p>
<p>Machine-readable schema: <a href="{{ schema_url }}"><code>{{ schema_url }}</code></a>
(OpenAPI 3, YAML; <a href="{{ schema_url }}?format=json">JSON</a>). Authenticate with
<code>Authorization: Token &lt;key&gt;</code> (<code>manage.py drf_create_token &lt;user&gt;</code>)
or a signed-in session.</p>
{% for tag, operations in groups %}<h2>{{ tag }}</h2>
{% for op in operations %}<div class="op" id="{{ op.id }}">
<div><span class="method">{{ op.method }}</span><code>{{ op.path }}</code>
<span class="muted">— {{ op.summary }}</span></div>
{% if op.parameters %}<table>{% for p in op.parameters %}<tr><td><code>{{ p.name }}</code></td>
<td class="muted">{{ p.in }} · {{ p.type }}</td><td>{{ p.description }}</td></tr>{% endfor %}
</table>{% endif %}
<div class="muted" style="margin-left:4.5rem">answers: {{ op.responses|join:", " }}</div>
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


def api_docs(request: HttpRequest) -> HttpResponse:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    info = schema.get("info", {})
    html = PAGE.render(
        Context(
            {
                "title": info.get("title", "API"),
                "version": info.get("version", ""),
                "description": info.get("description", ""),
                "schema_url": reverse("api:schema"),
                "groups": operations(schema),
            }
        )
    )
    return HttpResponse(html)
