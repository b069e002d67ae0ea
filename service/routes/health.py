"""GET /health (the process answers) and GET /ready (the index and models are loaded, and which ones).

/health is the one endpoint open even when an API key is configured: it says nothing but "the process runs".
/ready names the model, corpus size and index fingerprint, so it needs the key like the data endpoints.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from index.retriever import RetrievalMode
from service.deps import StateDep, require_api_key
from service.schemas import (
    CorpusOut,
    DefaultsOut,
    HealthResponse,
    ModelOut,
    NotReadyResponse,
    ReadyResponse,
    ShardOut,
    error_responses,
)

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness")
async def health() -> HealthResponse:
    """200 whenever the process serves requests, loaded or not: restart it only when this fails."""
    return HealthResponse()


@router.get(
    "/ready",
    summary="Readiness, with the loaded index's manifest",
    response_model=ReadyResponse,
    dependencies=[Depends(require_api_key)],
    responses={
        **error_responses(401),
        503: {"model": NotReadyResponse, "description": "Still loading, or loading failed."},
    },
)
async def ready(state: StateDep) -> ReadyResponse | JSONResponse:
    """200 once the pipeline can answer; says which model, corpus and index fingerprint it answers from."""
    pipeline = state.pipeline
    if pipeline is None:
        body = (
            NotReadyResponse(status="failed", detail=state.error)
            if state.error
            else NotReadyResponse(status="loading", detail="the index and models are still loading")
        )
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "5"})
    manifest = pipeline.index.manifest
    s = pipeline.settings
    shards = None
    if hasattr(pipeline.index, "shard_status"):  # a sharded index (index/shards): ping every shard
        up = await run_in_threadpool(pipeline.index.shard_status)
        shards = [
            ShardOut(shard=i.shard, n_documents=i.n_documents, n_chunks=i.n_chunks, ready=up[i.shard])
            for i in manifest.shards
        ]
    return ReadyResponse(
        shards=shards,
        fingerprint=manifest.fingerprint,
        created_at=manifest.created_at,
        model=ModelOut(
            name=manifest.model.name, dimension=manifest.model.dimension, fingerprint=manifest.model.fingerprint
        ),
        corpus=CorpusOut(
            n_documents=manifest.corpus.n_documents,
            n_chunks=manifest.corpus.n_chunks,
            fingerprint=manifest.corpus.fingerprint,
        ),
        defaults=DefaultsOut(
            top_k=s.top_k,
            max_answers=s.max_answers,
            retriever=s.retriever,
            reader=s.reader,
            question_max_chars=state.settings.question_max_chars,
            batch_max=state.settings.batch_max,
        ),
        retrievers=list(RetrievalMode),
        readers=pipeline.available_readers(),
        api_key_required=state.settings.api_key is not None,
    )
