"""GET /openapi.json, /docs and /redoc: the API description, behind the API key like every data endpoint.

FastAPI's own routes for these cannot take a dependency, so they are switched off in `create_app` and served here.
Swagger UI's and ReDoc's scripts and styles come from the fastapi-offline package (MIT; Swagger UI 5, Apache-2.0,
and ReDoc 2, MIT), served by the app under ASSETS_URL, never from a CDN: the pages work offline, under a CSP of
'self' plus the hash of each page's one inline script (or style), which each route sends with its page.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from service.deps import require_api_key

OPENAPI_URL = "/openapi.json"
FAVICON_URL = "/favicon.ico"
ASSETS_URL = "/static/vendor"
"""Where `create_app` mounts ASSETS_DIR: key-free like the page's own static files (the same bytes everywhere)."""
ASSETS_DIR = Path(str(files("fastapi_offline").joinpath("static")))
"""swagger-ui-bundle.js, swagger-ui.css and redoc.standalone.js, as the package ships them."""

_INLINE = {"script": re.compile(r"<script>(.*?)</script>", re.S), "style": re.compile(r"<style>(.*?)</style>", re.S)}


def _hashes(html: str, tag: str) -> str:
    """CSP source expressions allowing exactly the inline <script> or <style> blocks of `html`, and no other."""
    return "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for body in _INLINE[tag].findall(html)
    )


def docs_csp(html: str, *, redoc: bool = False) -> str:
    """The page's policy ('self' only) with the hashes of this HTML's own inline blocks added. ReDoc (`redoc`)
    needs two things more: any inline style (its styled-components writes CSS into <style> elements at run time;
    a hash beside 'unsafe-inline' would switch that off, so there is none then) and a worker from a blob: URL
    (its search). Scripts are never let loose, and nothing may load from another origin: ReDoc's "API docs by
    Redocly" logo, an image on cdn.redoc.ly, is blocked and shows as a console error."""
    styles = " 'unsafe-inline'" if redoc else _hashes(html, "style")
    workers = "worker-src 'self' blob:; " if redoc else ""
    return (
        f"default-src 'self'; script-src 'self'{_hashes(html, 'script')}; style-src 'self'{styles}; {workers}"
        "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


def _with_csp(page: HTMLResponse, *, redoc: bool = False) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = docs_csp(bytes(page.body).decode(), redoc=redoc)
    return page


router = APIRouter(include_in_schema=False, dependencies=[Depends(require_api_key)])


@router.get(OPENAPI_URL)
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=f"{request.app.title} - API",
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=FAVICON_URL,
        # No badge image from validator.swagger.io: nothing on the page leaves this origin.
        swagger_ui_parameters={"validatorUrl": None},
    )
    return _with_csp(page)


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    page = get_redoc_html(
        openapi_url=OPENAPI_URL,
        title=f"{request.app.title} - API",
        redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=FAVICON_URL,
        with_google_fonts=False,
    )
    return _with_csp(page, redoc=True)
