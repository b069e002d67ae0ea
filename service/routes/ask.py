"""POST /ask and /ask/batch: questions in, verbatim answers with their citations and evidence out."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends

from qa.cli import result_to_json
from qa.pipeline import IndexSnapshot, QAPipeline, QuestionError, ReaderUnavailableError
from service.deps import PipelineDep, StateDep, require_api_key
from service.errors import FieldError, Loc, check_unicode
from service.schemas import AskRequest, AskResponse, BatchAskRequest, BatchAskResponse, error_responses

router = APIRouter(
    tags=["ask"],
    dependencies=[Depends(require_api_key)],
    responses=error_responses(400, 401, 413, 422, 503),
)


def check_question(question: str, max_chars: int, loc: Loc) -> None:
    """The length limit is configurable, so it is checked here rather than in the static schema."""
    q = question.strip()
    if not q:
        raise FieldError(loc, "question is empty (only whitespace)", "string_too_short")
    if len(q) > max_chars:
        raise FieldError(loc, f"question is {len(q)} characters long; the limit is {max_chars}", "string_too_long")
    check_unicode(q, loc, "question")


def answer(pipeline: QAPipeline, req: AskRequest, loc: Loc, snapshot: IndexSnapshot | None = None) -> dict[str, Any]:
    """One question through the pipeline (in a worker thread) from one index snapshot; its errors name the
    request field at fault."""
    try:
        if req.reader is not None:
            try:
                pipeline.reader(req.reader)
            except ImportError as err:  # an optional reader whose code or dependencies are not installed
                raise ReaderUnavailableError(f"the {req.reader.value} reader is not installed on this service") from err
        result = pipeline.run(
            req.question,
            top_k=req.top_k,
            max_answers=req.max_answers,
            retriever=req.retriever,
            reader=req.reader,
            snapshot=snapshot,
        )
    except QuestionError as err:
        raise FieldError((*loc, "question"), str(err)) from err
    except ReaderUnavailableError as err:
        raise FieldError((*loc, "reader"), str(err), "reader_unavailable") from err
    return {**result_to_json(result), "index_fingerprint": result.index_fingerprint}


def answer_all(pipeline: QAPipeline, reqs: Sequence[AskRequest]) -> tuple[str, list[dict[str, Any]]]:
    """A batch is answered from one snapshot, even when the index is swapped half-way through it."""
    snapshot = pipeline.snapshot
    return snapshot.fingerprint, [answer(pipeline, r, ("body", "questions", i), snapshot) for i, r in enumerate(reqs)]


@router.post("/ask", summary="Answer one question")
async def ask(body: AskRequest, pipeline: PipelineDep, state: StateDep) -> AskResponse:
    """Extractive answers, best first, each a verbatim span of a document with its passage; `no_answer` is true
    (and `answers` empty) when nothing clears the threshold, with the ranked evidence still listed."""
    check_question(body.question, state.settings.question_max_chars, ("body", "question"))
    return AskResponse.model_validate(await state.run(answer, pipeline, body, ("body",)))


@router.post("/ask/batch", summary="Answer several questions in one call")
async def ask_batch(body: BatchAskRequest, pipeline: PipelineDep, state: StateDep) -> BatchAskResponse:
    """Answers in the order asked, each as /ask returns it; at most QA_BATCH_MAX questions. Every question is
    checked before any is answered, so a bad one costs no work."""
    limit = state.settings.batch_max
    if len(body.questions) > limit:
        raise FieldError(
            ("body", "questions"), f"{len(body.questions)} questions; the limit is {limit} per call", "too_long"
        )
    for i, item in enumerate(body.questions):
        check_question(item.question, state.settings.question_max_chars, ("body", "questions", i, "question"))
    t0 = time.perf_counter()
    fingerprint, results = await state.run(answer_all, pipeline, body.questions)
    return BatchAskResponse(
        results=[AskResponse.model_validate(r) for r in results],
        took_ms=round((time.perf_counter() - t0) * 1000, 3),
        index_fingerprint=fingerprint,
    )
