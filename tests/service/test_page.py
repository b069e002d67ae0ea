"""The web page is served with a strict CSP, loads only same-origin static files, and carries no inline code;
so do the API docs (/docs, /redoc), whose assets the app serves itself; the page has an icon."""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from collections.abc import Callable
from pathlib import Path

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


def csp_directives(header: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in (part.strip() for part in header.split(";")) if d}


def sha256_source(text: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


ASSET_KINDS = {".js": "javascript", ".css": "text/css", ".ico": "image/", ".png": "image/"}


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_load_only_assets_the_app_serves(client: TestClient, path: str) -> None:
    """Offline: no CDN, no font service; every script, stylesheet and icon the page names is served here."""
    r = client.get(path)
    assert r.status_code == 200
    html = r.text
    assert re.findall(r"https?://[^\s\"'<>]*", html) == [], "the page names another origin"
    assert not re.search(r"(src|href)=[\"']//", html), "a protocol-relative URL is another origin too"
    assets = re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", html) + re.findall(r"<link[^>]*\shref=\"([^\"]+)\"", html)
    assert any(a.endswith(".js") for a in assets), html
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not a same-origin path"
        got = client.get(asset)
        assert got.status_code == 200, f"{path} names {asset}, which is {got.status_code}"
        kind = ASSET_KINDS[Path(asset).suffix]
        assert kind in got.headers["content-type"], f"{asset}: {got.headers['content-type']}"
        assert len(got.content) > 100


def test_swagger_ui_gets_a_self_only_csp_with_its_inline_script_hashed(client: TestClient) -> None:
    r = client.get("/docs")
    csp = csp_directives(r.headers["content-security-policy"])
    inline = re.findall(r"<script>(.*?)</script>", r.text, re.S)
    assert len(inline) == 1, "Swagger UI is started by one inline script"
    assert csp["script-src"] == ["'self'", sha256_source(inline[0])]
    assert csp["style-src"] == ["'self'"]
    assert (
        csp["default-src"] == ["'self'"] and csp["connect-src"] == ["'self'"] and csp["img-src"] == ["'self'", "data:"]
    )
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]


def test_redoc_csp_lets_no_script_loose(client: TestClient) -> None:
    """ReDoc writes its styles inline at run time and searches in a blob: worker; its scripts stay 'self'."""
    csp = csp_directives(client.get("/redoc").headers["content-security-policy"])
    assert csp["script-src"] == ["'self'"]
    assert csp["worker-src"] == ["'self'", "blob:"]
    assert csp["default-src"] == ["'self'"] and csp["connect-src"] == ["'self'"]


def test_the_docs_assets_need_no_key_but_the_docs_do(make_client: Callable[..., TestClient]) -> None:
    keyed = make_client(api_key="docs-key")
    assert keyed.get("/docs").status_code == 401
    assert keyed.get("/docs", headers={"X-API-Key": "docs-key"}).status_code == 200
    for asset in ("/static/vendor/swagger-ui-bundle.js", "/static/vendor/swagger-ui.css", "/favicon.ico"):
        assert keyed.get(asset).status_code == 200, asset


def test_favicon_is_an_icon_the_page_links(client: TestClient) -> None:
    r = client.get("/favicon.ico")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/vnd.microsoft.icon"
    assert "content-security-policy" in r.headers
    reserved, kind, count = struct.unpack("<HHH", r.content[:6])
    assert (reserved, kind, count) == (0, 1, 1), "an ICO header with one image"
    width, height, _colours, _res, _planes, bits, size, offset = struct.unpack("<BBBBHHII", r.content[6:22])
    assert (width, height, bits) == (32, 32, 32)
    image = r.content[offset : offset + size]
    assert len(image) == size and image.startswith(b"\x89PNG\r\n\x1a\n"), "a PNG inside, as every browser reads"
    assert struct.unpack(">II", image[16:24]) == (32, 32)
    html = (STATIC_DIR / "index.html").read_text()
    assert re.search(r'<link rel="icon" href="/favicon.ico"', html)
    assert 'href="/favicon.ico"' in client.get("/docs").text


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
