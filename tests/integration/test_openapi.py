"""The OpenAPI document says what the service does: error bodies, error codes, authentication.

(The fuzzing test checks every answer against the document; this one pins the document itself.)
"""

from __future__ import annotations

from typing import Any

import httpx


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return doc["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def _error_schema(doc: dict[str, Any], operation: dict[str, Any], code: str) -> dict[str, Any]:
    return _resolve(doc, operation["responses"][code]["content"]["application/json"]["schema"])


def test_errors_auth_and_limits_are_declared_as_answered(http: httpx.Client, admin_headers) -> None:
    doc = http.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    tokens = doc["paths"]["/v1/tokens"]["post"]
    assert tokens["security"] == [{"bearer": []}]
    assert {"400", "401", "403", "413", "422", "429"} <= set(tokens["responses"])
    error = _error_schema(doc, tokens, "422")
    assert error["properties"]["detail"]["type"] == "string", "detail is a sentence, not an array"
    assert "errors" in error["properties"]
    assert "409" in doc["paths"]["/v1/aeds/{aed_id}"]["patch"]["responses"]
    assert "404" in doc["paths"]["/v1/incidents/{incident_id}"]["get"]["responses"]
    assert "security" not in doc["paths"]["/healthz"]["get"]
    assert "503" in doc["paths"]["/healthz"]["get"]["responses"]

    # What the service really answers has the declared shape.
    r = http.post("/v1/tokens", json={"role": "planner"}, headers=admin_headers)
    assert r.status_code == 422
    assert isinstance(r.json()["detail"], str) and r.json()["errors"][0]["field"] == "label"
    assert set(r.json()) <= set(error["properties"])
