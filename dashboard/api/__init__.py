"""Baton's REST API (``/api/v1/``), with its OpenAPI schema (``/api/schema/``). See docs/api.md."""
