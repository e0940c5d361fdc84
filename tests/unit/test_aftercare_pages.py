"""The coordinators' page is served as the other screens are, from our own origin."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from dispatch.web import router as web


def test_the_coordinator_page_is_served_with_its_script_and_words() -> None:
    app = FastAPI()
    web.install_web(app)
    client = TestClient(app)
    r = client.get("/coordinator")
    assert r.status_code == 200 and re.search("<title[^>]*>Follow-ups", r.text)
    assert "https://" not in r.text and "http://" not in r.text
    for path in (
        "/static/coordinator.js",
        "/static/lib/debrief.js",
        "/static/lib/outcome.js",
        "/static/aftercare.css",
    ):
        assert client.get(path).status_code == 200, path
