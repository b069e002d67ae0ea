"""GET /documents/{id}: a cited document's full text, so a client can show an answer in its context."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi import Path as PathParam  # a URL path parameter, not a file path

from service.deps import PipelineDep, require_api_key
from service.schemas import DocumentOut, error_responses

router = APIRouter(tags=["documents"], dependencies=[Depends(require_api_key)])


@router.get(
    "/documents/{doc_id:path}",
    summary="A document's text and metadata",
    responses=error_responses(401, 404, 503),
)
async def get_document(
    doc_id: Annotated[str, PathParam(examples=["abs-02"], description="A document id, as answers cite it.")],
    pipeline: PipelineDep,
) -> DocumentOut:
    """`text[start:end]` of the returned text is exactly an answer's `text` for the answer's `start`/`end`."""
    doc = pipeline.index.documents.get(doc_id)
    if doc is None:
        shown = doc_id if len(doc_id) <= 100 else doc_id[:100] + "…"
        raise HTTPException(404, f"unknown document id {shown!r}")
    return DocumentOut(id=doc.id, title=doc.title, text=doc.text, meta=doc.meta)
