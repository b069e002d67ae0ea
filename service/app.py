"""The FastAPI application: `create_app(settings, pipeline)` builds it; the lifespan loads the pipeline once.

Tests and embedders hand in an already-warmed pipeline so no model loads twice; `qa serve` hands in none and the
lifespan builds the index of the configured corpus on first run when it is the default index directory (any other
directory without an index fails the start-up, naming it), then loads it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

import anyio
import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from qa.pipeline import QAPipeline
from service.deps import API_KEY_HEADER, ServiceState, admin_key
from service.errors import install_error_handlers
from service.middleware import (
    REQUEST_ID_HEADER,
    ApiKeyMiddleware,
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
)
from service.routes import admin, ask, docs, documents, health, page
from service.routes.page import STATIC_DIR
from service.settings import ServiceSettings

DESCRIPTION = """Extractive question answering over biomedical abstracts. Every answer is a verbatim span of a
document (`document.text[start:end] == answer.text`), returned with the passage it was read from and the ranked
evidence. The web page is at `/`.

When the service sets QA_API_KEY, every endpoint but `/health` needs it in the `X-API-Key` header. The `/admin`
endpoints always need a key (QA_ADMIN_API_KEY, else QA_API_KEY) and are disabled when none is set."""


def _version() -> str:
    try:
        return version("biomed-qa")
    except PackageNotFoundError:
        return "0"


def create_app(settings: ServiceSettings | None = None, pipeline: QAPipeline | None = None) -> FastAPI:
    """Build the app; `pipeline` (warmed or not) replaces the one the settings would describe."""
    settings = settings if settings is not None else ServiceSettings()
    state = ServiceState(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state.limiter = anyio.CapacityLimiter(settings.ask_concurrency)
        if settings.warm_up_in_background:
            # /health answers at once; /ready and /ask say 503 until the load is done (or failed).
            threading.Thread(target=_load_quietly, args=(state, pipeline), name="qa-warm-up", daemon=True).start()
        else:
            await anyio.to_thread.run_sync(state.load, pipeline)
        yield

    app = FastAPI(
        title="Biomedical extractive QA",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by routes.docs instead, behind the API key like every endpoint but /health.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = state

    install_error_handlers(app)
    # Last added runs first: request id and log around everything, CORS headers even on 401 and 413, then the key
    # gate (before any body is read), then the size limit.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        ApiKeyMiddleware,
        api_key=lambda: settings.api_key,
        admin_key=lambda: admin_key(settings),
        header=API_KEY_HEADER,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", API_KEY_HEADER, REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER, ask.SERVER_TIMING],
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware)

    app.include_router(ask.router)
    app.include_router(documents.router)
    app.include_router(health.router)
    app.include_router(admin.router)
    app.include_router(docs.router)
    app.include_router(page.router)
    # Before /static, which would otherwise take these paths: Swagger UI's and ReDoc's files, from their package.
    app.mount(docs.ASSETS_URL, StaticFiles(directory=docs.ASSETS_DIR), name="docs-assets")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _load_quietly(state: ServiceState, pipeline: QAPipeline | None) -> None:
    """Background loading: the failure is kept in `state.error` (and logged) for /ready to report."""
    with contextlib.suppress(Exception):  # already logged and recorded by state.load
        state.load(pipeline)
