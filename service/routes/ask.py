"""POST /ask and /ask/batch: questions in, verbatim answers with their citations and evidence out.

Each response carries a `Server-Timing` header (the W3C standard a browser's network panel shows) with where the
time went: `embed` (the question's vector), `search` (FAISS + BM25 + fusion), `read` (document expansion,
reader, ranking), `serialise` (the response model built and dumped to JSON) and `total`. A batch reports the
sums over its questions. The body is unchanged: timings are diagnostics, not part of the answer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel

from qa.answers import QAResult
from qa.pipeline import Ask, BatchItemError, QAPipeline, QuestionError, ReaderUnavailableError, validate_question
from service.deps import PipelineDep, StateDep, require_api_key
from service.errors import FieldError, Loc, check_unicode
from service.schemas import AskRequest, AskResponse, BatchAskRequest, BatchAskResponse, error_responses

SERVER_TIMING = "Server-Timing"
STAGES = ("embed", "search", "read", "serialise")

router = APIRouter(
    tags=["ask"],
    dependencies=[Depends(require_api_key)],
    responses=error_responses(400, 401, 413, 422, 503),
)


def check_question(question: str, max_chars: int, loc: Loc) -> None:
    """The pipeline's own check (the length limit is configurable, so not in the static schema), run before any
    work is queued, plus the text's encodability."""
    try:
        q = validate_question(question, max_chars)
    except QuestionError as err:
        raise FieldError(loc, str(err), err.code) from err
    check_unicode(q, loc, "question")


def check_reader(pipeline: QAPipeline, req: AskRequest, loc: Loc) -> None:
    """The reader this question will use is loaded and usable; otherwise a 422 on its `reader` field."""
    kind = req.reader or pipeline.settings.reader
    try:
        if req.reader is not None and req.reader not in pipeline.available_readers():
            raise ReaderUnavailableError(
                f"the {req.reader.value} reader is not available on this service (no model folder at "
                f"{pipeline.settings.reader_model}); choose one of: {', '.join(pipeline.available_readers())}"
            )
        try:
            pipeline.reader(kind)
        except ImportError as err:  # an optional reader whose code or dependencies are not installed
            raise ReaderUnavailableError(f"the {kind.value} reader is not installed on this service") from err
    except ReaderUnavailableError as err:
        raise FieldError((*loc, "reader"), str(err), "reader_unavailable") from err


def server_timing(stages: Mapping[str, float]) -> str:
    """`embed;dur=3.112, search;dur=0.514, ...` in milliseconds, as the Server-Timing header spells it."""
    return ", ".join(f"{name};dur={max(0.0, ms):.3f}" for name, ms in stages.items())


def stage_sums(results: Sequence[QAResult], serialise_ms: float) -> dict[str, float]:
    stages = {s: sum(r.timings_ms.get(s, 0.0) for r in results) for s in STAGES[:-1]}
    stages["serialise"] = serialise_ms
    stages["total"] = sum(r.timings_ms.get("total", 0.0) for r in results) + serialise_ms
    return stages


def response_of(result: QAResult) -> AskResponse:
    return AskResponse.model_validate(result.to_dict())


def json_response(model: BaseModel, results: Sequence[QAResult], started: float) -> Response:
    """The model as JSON (what FastAPI would send for it) with the Server-Timing header; `started` is when
    serialisation began (building the response models counts as serialising)."""
    body = model.model_dump_json()
    stages = stage_sums(results, (time.perf_counter() - started) * 1000)
    return Response(body, media_type="application/json", headers={SERVER_TIMING: server_timing(stages)})


def answer(pipeline: QAPipeline, req: AskRequest, loc: Loc) -> Response:
    """One question through the pipeline and into JSON, in a worker thread; its errors name the request field
    at fault."""
    check_reader(pipeline, req, loc)
    try:
        result = pipeline.run(
            req.question, top_k=req.top_k, max_answers=req.max_answers, retriever=req.retriever, reader=req.reader
        )
    except QuestionError as err:
        raise FieldError((*loc, "question"), str(err)) from err
    except ReaderUnavailableError as err:
        raise FieldError((*loc, "reader"), str(err), "reader_unavailable") from err
    t0 = time.perf_counter()
    return json_response(response_of(result), [result], t0)


def answer_all(pipeline: QAPipeline, reqs: Sequence[AskRequest]) -> tuple[str, list[QAResult]]:
    """A batch is answered from one snapshot, even when the index is swapped half-way through it, with its
    retrieval batched (one encoder call, one FAISS search); every answer is what /ask would give."""
    snapshot = pipeline.snapshot
    for i, r in enumerate(reqs):
        check_reader(pipeline, r, ("body", "questions", i))
    asks = [Ask(r.question, r.top_k, r.max_answers, r.retriever, r.reader) for r in reqs]
    try:
        return snapshot.fingerprint, pipeline.run_batch(asks, snapshot)
    except BatchItemError as err:
        raise FieldError(("body", "questions", err.item, "question"), str(err.error)) from err


@router.post("/ask", summary="Answer one question", response_model=AskResponse)
async def ask(body: AskRequest, pipeline: PipelineDep, state: StateDep) -> Any:
    """Extractive answers, best first, each a verbatim span of a document with its passage; `no_answer` is true
    (and `answers` empty) when nothing clears the threshold, with the ranked evidence still listed. The
    `Server-Timing` header splits the time into embed, search, read and serialise."""
    check_question(body.question, state.settings.question_max_chars, ("body", "question"))
    return await state.run(answer, pipeline, body, ("body",))


@router.post("/ask/batch", summary="Answer several questions in one call", response_model=BatchAskResponse)
async def ask_batch(body: BatchAskRequest, pipeline: PipelineDep, state: StateDep) -> Any:
    """Answers in the order asked, each as /ask returns it; at most QA_BATCH_MAX questions. Every question is
    checked before any is answered, so a bad one costs no work. `Server-Timing` sums the stages over the batch."""
    limit = state.settings.batch_max
    if len(body.questions) > limit:
        raise FieldError(
            ("body", "questions"), f"{len(body.questions)} questions; the limit is {limit} per call", "too_long"
        )
    for i, item in enumerate(body.questions):
        check_question(item.question, state.settings.question_max_chars, ("body", "questions", i, "question"))
    t0 = time.perf_counter()
    fingerprint, results = await state.run(answer_all, pipeline, body.questions)
    t1 = time.perf_counter()
    model = BatchAskResponse(
        results=[response_of(r) for r in results],
        took_ms=round((t1 - t0) * 1000, 3),
        index_fingerprint=fingerprint,
    )
    return json_response(model, results, t1)
