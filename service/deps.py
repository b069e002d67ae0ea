"""Request dependencies: the loaded pipeline, the settings, the API-key check, and running CPU work off the loop."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader
from pydantic import SecretStr

from qa.pipeline import DEFAULT_DIR_ONLY, QAPipeline
from service.log import LOGGER
from service.middleware import key_matches
from service.settings import ServiceSettings

T = TypeVar("T")
log = logging.getLogger(LOGGER)

API_KEY_HEADER = "X-API-Key"


def pipeline_is_warm(pipeline: QAPipeline) -> bool:
    """`QAPipeline.index` raises until `warm_up` has run: a warmed pipeline handed in is used as it is."""
    try:
        pipeline.index  # noqa: B018
    except RuntimeError:
        return False
    return True


@dataclass
class ServiceState:
    """What the app holds between requests: one pipeline, loaded once, shared by every request thread."""

    settings: ServiceSettings
    pipeline: QAPipeline | None = None
    error: str | None = None
    limiter: anyio.CapacityLimiter | None = field(default=None, repr=False)
    # One index change (reload or update) at a time; a second one is told to retry rather than queued.
    admin_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def load(self, pipeline: QAPipeline | None = None) -> None:
        """Warm the given pipeline (or a new one from the settings), building the index if there is none: a
        pipeline of the settings' own only in the default index directory (as `qa serve` does), so a mistyped
        QA_INDEX_DIR fails the start-up instead of serving a fresh demo index; a handed-in one wherever it points."""
        try:
            build: bool | Literal["default-dir"] = True if pipeline is not None else DEFAULT_DIR_ONLY
            p = pipeline if pipeline is not None else QAPipeline(self.settings)
            if not pipeline_is_warm(p):
                log.info("loading models and index", extra={"index_dir": str(self.settings.index_dir)})
                p.warm_up(build_if_missing=build, say=lambda m: log.info(m))
            self.pipeline = p
            manifest = p.index.manifest
            log.info(
                "ready",
                extra={
                    "fingerprint": manifest.fingerprint,
                    "documents": manifest.corpus.n_documents,
                    "chunks": manifest.corpus.n_chunks,
                },
            )
        except Exception as err:
            self.error = f"{type(err).__name__}: {err}"
            log.error("cannot load the pipeline", exc_info=err, extra={"error": self.error})
            raise

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run CPU-bound `fn` in a worker thread, at most `ask_concurrency` at once, keeping the loop free."""
        return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=self.limiter)


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


StateDep = Annotated[ServiceState, Depends(get_state)]


def get_settings(state: StateDep) -> ServiceSettings:
    return state.settings


SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]


def get_pipeline(state: StateDep) -> QAPipeline:
    if state.pipeline is None:
        detail = (
            f"the pipeline failed to load: {state.error}" if state.error else "the index and models are still loading"
        )
        raise HTTPException(503, detail, headers={"Retry-After": "5"})
    return state.pipeline


PipelineDep = Annotated[QAPipeline, Depends(get_pipeline)]

_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="Needed by every endpoint but /health when the service sets QA_API_KEY; always by /admin.",
)


def require_api_key(settings: SettingsDep, key: Annotated[str | None, Security(_api_key_header)]) -> None:
    """Off unless QA_API_KEY is set; compared in constant time so the key cannot be guessed byte by byte."""
    if settings.api_key is None:
        return
    if not key_matches(key, settings.api_key):
        raise HTTPException(401, f"missing or wrong API key: send it in the {API_KEY_HEADER} header")


def admin_key(settings: ServiceSettings) -> SecretStr | None:
    return settings.admin_api_key if settings.admin_api_key is not None else settings.api_key


def require_admin_key(settings: SettingsDep, key: Annotated[str | None, Security(_api_key_header)]) -> None:
    """Admin endpoints always need a key: with none configured they are disabled, never open."""
    expected = admin_key(settings)
    if expected is None:
        raise HTTPException(403, "admin endpoints are disabled: set QA_ADMIN_API_KEY (or QA_API_KEY) to enable them")
    if not key_matches(key, expected):
        raise HTTPException(401, f"missing or wrong admin key: send it in the {API_KEY_HEADER} header")
