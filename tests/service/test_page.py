"""The web page is served with a strict CSP, loads only same-origin static files, and carries no inline code."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from service.routes.page import STATIC_DIR

pytestmark = pytest.mark.model


def test_page_is_served_with_a_strict_csp(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert '<label for="question">' in r.text


@pytest.mark.parametrize(("name", "kind"), [("app.js", "javascript"), ("app.css", "text/css")])
def test_static_assets_are_served(client: TestClient, name: str, kind: str) -> None:
    r = client.get(f"/static/{name}")
    assert r.status_code == 200
    assert kind in r.headers["content-type"]


def test_swagger_ui_is_left_without_the_page_csp(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    assert "content-security-policy" not in r.headers


def test_page_has_no_inline_code_and_no_remote_assets() -> None:
    html = (STATIC_DIR / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == [], "inline <script> breaks the CSP"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handlers break the CSP"
    assert not re.search(r"\sstyle\s*=", html), "inline styles break the CSP"
    for name in ("index.html", "app.js", "app.css"):
        text = (STATIC_DIR / name).read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), f"{name} loads a remote asset"
        assert "@import" not in text


def test_script_never_writes_html_from_data() -> None:
    js = (STATIC_DIR / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in js, f"{sink} would let corpus text or errors inject markup"


def test_every_form_control_has_a_label() -> None:
    html = (STATIC_DIR / "index.html").read_text()
    ids = re.findall(r"<(?:input|select|textarea)\b[^>]*\bid=\"([^\"]+)\"", html)
    assert ids
    for control in ids:
        assert f'<label for="{control}">' in html, f"#{control} has no <label>"
