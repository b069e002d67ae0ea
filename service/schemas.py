"""Request and response models: the API's contract, kept apart from the pipeline's internal types.

Requests are strict where a silent coercion would hide a client bug (`"top_k": "5"` or `true` is refused) and
forbid unknown fields (a typo like `topk` is reported, not ignored). The answer shape is the CLI's `--json`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from index.retriever import RetrievalMode
from qa.readers.base import ReaderKind
from qa.settings import DEFAULT_TOP_K

STRIDE_QUESTION = "What was the median overall survival with STRIDE?"


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"question": STRIDE_QUESTION}]})

    question: Annotated[
        StrictStr,
        Field(
            min_length=1,
            description="The question; 1 to QA_QUESTION_MAX_CHARS (default 2000) characters after trimming.",
        ),
    ]
    top_k: Annotated[
        StrictInt | None, Field(ge=1, le=50, description=f"Passages to retrieve (default {DEFAULT_TOP_K}).")
    ] = None
    max_answers: Annotated[StrictInt | None, Field(ge=1, le=20, description="Most answers returned (default 3).")] = (
        None
    )
    retriever: RetrievalMode | None = Field(None, description="Retrieval mode; the service's default when left out.")
    reader: ReaderKind | None = Field(None, description="Reader; the service's default when left out.")


class BatchAskRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"questions": [{"question": STRIDE_QUESTION}, {"question": "What is HCC?"}]}]},
    )

    questions: list[AskRequest] = Field(
        min_length=1, description="1 to QA_BATCH_MAX (default 32) questions, answered in order."
    )


class Span(BaseModel):
    start: int
    end: int


class PassageRef(BaseModel):
    """The passage an answer was read from; `start`/`end` are offsets into the document."""

    chunk_id: str
    text: str
    start: int
    end: int


class CitationOut(BaseModel):
    """The cited document's title, and its PMID, journal and year where the corpus gives them (else null)."""

    model_config = ConfigDict(extra="forbid")
    title: str | None
    pmid: str | None
    journal: str | None
    year: str | None


class AnswerOut(BaseModel):
    """`qa.answers.Answer.to_dict()`, field for field (extra fields are refused, so the two cannot drift)."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="Verbatim: the document's text[start:end].")
    score: float
    doc_id: str
    start: int
    end: int
    passage: PassageRef
    span_in_passage: Span = Field(description="The answer's offsets inside passage.text.")
    citation: CitationOut
    answer_type: str | None = Field(None, description="The expected answer type the reader matched, if any.")
    reader: str = Field(description="The reader that found the answer (transformers, heuristic, combined).")


class PassageOut(BaseModel):
    """Ranked evidence, listed even when no answer clears the threshold."""

    chunk_id: str
    doc_id: str
    start: int
    end: int
    text: str
    score: float
    rank: int


class AskResponse(BaseModel):
    """`qa.answers.QAResult.to_dict()`, as is."""

    model_config = ConfigDict(extra="forbid")
    question: str
    answers: list[AnswerOut]
    passages: list[PassageOut]
    no_answer: bool = Field(description="True when no answer cleared the threshold; `answers` is then empty.")
    took_ms: float = Field(description="Time spent retrieving and reading, in milliseconds.")
    index_fingerprint: str = Field(
        description="The index this answer came from (as /ready's `fingerprint`); it changes after a reload."
    )
    partial: bool = Field(False, description="True when shards of a sharded index did not answer in time.")
    missing_shards: list[int] = Field(
        default_factory=list, description="With `partial`: the shards the answer went without (else empty)."
    )


class BatchAskResponse(BaseModel):
    results: list[AskResponse]
    took_ms: float
    index_fingerprint: str = Field(description="The one index every answer of the batch came from.")


class DocumentOut(BaseModel):
    id: str
    title: str | None
    text: str = Field(description="The citable text: every answer's start/end index into it.")
    meta: dict[str, Any]


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ModelOut(BaseModel):
    name: str
    dimension: int
    fingerprint: str


class CorpusOut(BaseModel):
    n_documents: int
    n_chunks: int
    fingerprint: str


class DefaultsOut(BaseModel):
    """What a request gets for the fields it leaves out, and the limits it must keep to."""

    top_k: int
    max_answers: int
    retriever: RetrievalMode
    reader: ReaderKind
    question_max_chars: int
    batch_max: int


class ShardOut(BaseModel):
    shard: int
    n_documents: int
    n_chunks: int
    ready: bool = Field(description="Whether the shard answered a ping within the shard timeout.")


class ReadyResponse(BaseModel):
    status: Literal["ready"] = "ready"
    fingerprint: str = Field(description="Identity of the index: model, chunking, index kinds and corpus.")
    created_at: str
    model: ModelOut
    corpus: CorpusOut
    defaults: DefaultsOut
    retrievers: list[RetrievalMode]
    readers: list[ReaderKind]
    api_key_required: bool
    shards: list[ShardOut] | None = Field(None, description="A sharded index's shards, and whether each answers now.")


class NotReadyResponse(BaseModel):
    status: Literal["loading", "failed"]
    detail: str


class ErrorItem(BaseModel):
    loc: list[str | int]
    field: str
    msg: str
    type: str


class ErrorResponse(BaseModel):
    detail: str | list[ErrorItem]
    request_id: str | None = None


class DocumentIn(BaseModel):
    """A document to add, or to replace the one with the same id."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[StrictStr, Field(min_length=1, max_length=200, description="The document's id (1-200 chars).")]
    text: Annotated[StrictStr, Field(min_length=1, description="The citable text; answers index into it.")]
    title: StrictStr | None = None
    meta: dict[str, Any] = Field(default_factory=dict, description="Free-form JSON metadata, returned as given.")


class DocumentsUpdateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"upsert": [{"id": "new-1", "text": "Sorafenib inhibits RAF kinases."}], "delete": ["abs-20"]}]
        },
    )

    upsert: list[DocumentIn] = Field(
        default_factory=list, description="Documents to add, or to replace by id; only these are embedded."
    )
    delete: list[Annotated[StrictStr, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, description="Ids of documents to remove; each must exist."
    )


class IndexChangeOut(BaseModel):
    previous_fingerprint: str | None = Field(description="The index served before the change.")
    fingerprint: str = Field(description="The index served from now on.")
    changed: bool
    n_documents: int
    n_chunks: int
    took_ms: float


class DocumentsUpdateResponse(IndexChangeOut):
    added: list[str]
    replaced: list[str]
    deleted: list[str]
    unchanged: list[str] = Field(description="Upserted documents identical to the stored ones (nothing to do).")
    embedded_chunks: int = Field(description="Chunks embedded by this update (those of added or changed text).")
    reused_chunks: int = Field(description="Chunks whose stored vectors were reused.")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses an operation can return, each with the shared error body."""
    meaning = {
        400: "The body cannot be parsed at all (e.g. nested too deep), or Content-Length is not a number.",
        401: "API key missing or wrong (only when one is configured; always for /admin).",
        403: "No admin key is configured: the admin endpoints are disabled.",
        404: "No such document.",
        409: "Another index change is running, or the index changed meanwhile; retry.",
        413: "Request body over QA_MAX_BODY_BYTES.",
        422: "A field is invalid; `detail[].field` names it.",
        503: "Still loading, or a component (or a new index) failed to load or be written.",
    }
    return {s: {"model": ErrorResponse, "description": meaning[s]} for s in statuses}
