"""POST /admin/reload and /admin/documents: switch to a new index, or change documents, without a restart.

Always behind a key (QA_ADMIN_API_KEY, else QA_API_KEY); with neither configured these endpoints answer 403.
Nothing here takes a path from the request: reload loads whatever CURRENT in the configured index directory names.
The new index is loaded and checked off to the side, then swapped in with one assignment; questions already
running finish on the index they started with (see `QAPipeline`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import anyio.to_thread
from fastapi import APIRouter, Depends, HTTPException

from common.errors import QAError
from index.documents import Document
from index.errors import CorpusError
from index.store import IndexConflictError, IndexWriteError
from index.updates import CorpusUpdate, UpdateError, UpdateResult, apply_update
from qa.pipeline import IndexSnapshot, QAPipeline
from service.deps import PipelineDep, StateDep, require_admin_key
from service.errors import FieldError, check_unicode
from service.log import LOGGER
from service.schemas import DocumentsUpdateRequest, DocumentsUpdateResponse, IndexChangeOut, error_responses

log = logging.getLogger(LOGGER)
T = TypeVar("T")

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin_key)],
    responses=error_responses(400, 401, 403, 409, 413, 422, 503),
)


@contextmanager
def one_change_at_a_time(state: StateDep) -> Iterator[None]:
    if not state.admin_lock.acquire(blocking=False):
        raise HTTPException(409, "another index change is in progress; retry when it is done", {"Retry-After": "2"})
    try:
        yield
    finally:
        state.admin_lock.release()


def _change(previous: IndexSnapshot | None, current: IndexSnapshot, t0: float) -> dict[str, object]:
    manifest = current.index.manifest
    return {
        "previous_fingerprint": previous.fingerprint if previous is not None else None,
        "fingerprint": current.fingerprint,
        "changed": previous is None or previous.index.path != current.index.path,
        "n_documents": manifest.corpus.n_documents,
        "n_chunks": manifest.corpus.n_chunks,
        "took_ms": round((time.perf_counter() - t0) * 1000, 3),
    }


async def _off_loop(fn: Callable[[], T]) -> T:
    """Loading or embedding is CPU work: a worker thread outside the question limiter, so questions go on."""
    return await anyio.to_thread.run_sync(fn)


def _reload(pipeline: QAPipeline) -> tuple[IndexSnapshot | None, IndexSnapshot]:
    try:
        return pipeline.reload_index()
    except QAError as err:
        log.error("reload failed", extra={"error": str(err)})
        raise HTTPException(
            503, f"cannot load the index CURRENT names ({err}); still serving {pipeline.snapshot.fingerprint}"
        ) from err


@router.post("/reload", summary="Serve the index CURRENT names now, without a restart")
async def reload(pipeline: PipelineDep, state: StateDep) -> IndexChangeOut:
    """After `qa index` (or any publish) into the service's index directory: load the new version, verify it, and
    swap it in. Unchanged (`changed: false`) when CURRENT still names the version being served."""
    t0 = time.perf_counter()
    with one_change_at_a_time(state):
        previous, current = await _off_loop(lambda: _reload(pipeline))
    out = _change(previous, current, t0)
    log.info("index reloaded", extra=out)
    return IndexChangeOut.model_validate(out)


def _documents(body: DocumentsUpdateRequest, limit: int) -> CorpusUpdate:
    """Checks that name the request field at fault, before any work."""
    if not body.upsert and not body.delete:
        raise FieldError(("body",), "nothing to do: give documents to `upsert` or ids to `delete`", "value_error")
    if len(body.upsert) + len(body.delete) > limit:
        raise FieldError(
            ("body",), f"{len(body.upsert) + len(body.delete)} documents; the limit is {limit} per call", "too_long"
        )
    for i, d in enumerate(body.upsert):
        if not d.text.strip():
            raise FieldError(("body", "upsert", i, "text"), "text is empty (only whitespace)", "string_too_short")
        if not d.id.strip():
            raise FieldError(("body", "upsert", i, "id"), "id is empty (only whitespace)", "string_too_short")
        check_unicode(d.id, ("body", "upsert", i, "id"), "id")
        check_unicode(d.text, ("body", "upsert", i, "text"), "text")
        if d.title is not None:
            check_unicode(d.title, ("body", "upsert", i, "title"), "title")
    for i, doc_id in enumerate(body.delete):
        check_unicode(doc_id, ("body", "delete", i), "id")
    return CorpusUpdate(upsert=[Document(d.id, d.text, d.title, d.meta) for d in body.upsert], delete=list(body.delete))


@router.post("/documents", summary="Add, replace or delete documents by id")
async def update_documents(
    body: DocumentsUpdateRequest, pipeline: PipelineDep, state: StateDep
) -> DocumentsUpdateResponse:
    """Only added or changed documents are chunked and embedded; the others keep their stored vectors. The result
    is published as a new index version (atomically, like `qa index`) and served at once."""
    update = _documents(body, state.settings.update_max_documents)
    t0 = time.perf_counter()

    def work() -> tuple[UpdateResult, IndexSnapshot | None, IndexSnapshot]:
        try:
            result = apply_update(
                Path(pipeline.settings.index_dir), update, pipeline.embedder, pipeline.settings.index_config()
            )
        except UpdateError as err:
            raise FieldError(("body", err.field) if err.field else ("body",), str(err), "value_error") from err
        except CorpusError as err:
            raise FieldError(("body", "upsert"), str(err), "value_error") from err
        except IndexConflictError as err:
            raise HTTPException(409, str(err)) from err
        except IndexWriteError as err:
            raise HTTPException(503, f"{err}; still serving {pipeline.snapshot.fingerprint}") from err
        previous, current = _reload(pipeline)
        return result, previous, current

    with one_change_at_a_time(state):
        result, previous, current = await _off_loop(work)
    out = {
        **_change(previous, current, t0),
        "added": result.added,
        "replaced": result.replaced,
        "deleted": result.deleted,
        "unchanged": result.unchanged,
        "embedded_chunks": result.embedded_chunks,
        "reused_chunks": result.reused_chunks,
    }
    log.info("documents updated", extra={k: v for k, v in out.items() if not isinstance(v, list)})
    return DocumentsUpdateResponse.model_validate(out)
