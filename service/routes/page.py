"""GET / (the web page) and /favicon.ico. Static files only (no CDN, no inline script): offline, under a strict CSP."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")


@router.get("/favicon.ico")
async def favicon() -> FileResponse:
    """The page's icon (32x32, a PNG inside an ICO), at the path browsers ask for whatever the page links."""
    return FileResponse(
        STATIC_DIR / "favicon.ico", media_type="image/vnd.microsoft.icon", headers={"Cache-Control": "max-age=86400"}
    )
