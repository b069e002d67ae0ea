"""Every failure becomes JSON with a message a client can act on; user input never reaches the 500 handler.

Shapes: 422 `{"detail": [{"loc": [...], "field": "top_k", "msg": "...", "type": "..."}]}` (FastAPI's list,
without echoing the input back); every other status `{"detail": "message"}`. Each carries the request id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from common.errors import QAError
from qa.pipeline import QuestionError, ReaderUnavailableError
from service.log import LOGGER
from service.middleware import REQUEST_ID_HEADER, request_id_of

log = logging.getLogger(LOGGER)

Loc = tuple[str | int, ...]


class FieldError(Exception):
    """A request field the schema accepted but the service cannot use; answered as a 422 on that field."""

    def __init__(self, loc: Loc, msg: str, type_: str = "value_error") -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg
        self.type = type_


def check_unicode(text: str, loc: Loc, what: str) -> None:
    """JSON may escape a lone surrogate (`"\\ud800"`): no tokenizer or UTF-8 response can take it, so refuse it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise FieldError(
            loc, f"{what} is not valid Unicode text (a lone surrogate at character {err.start})", "string_unicode"
        ) from err


def field_name(loc: Sequence[str | int]) -> str:
    """`("body", "questions", 2, "top_k")` -> `questions[2].top_k`, the name a client knows the field by."""
    parts = list(loc[1:] if loc and loc[0] in {"body", "query", "path", "header"} else loc)
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def _item(loc: Sequence[str | int], msg: str, type_: str) -> dict[str, Any]:
    return {"loc": list(loc), "field": field_name(loc), "msg": msg, "type": type_}


def _json(request: Request, status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    rid = request_id_of(request.scope)
    body: dict[str, Any] = {"detail": detail}
    if rid:
        body["request_id"] = rid
    return JSONResponse(body, status_code=status, headers=headers)


def _message(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", "invalid value"))
    if error.get("type") == "json_invalid":
        ctx = error.get("ctx") or {}
        loc = error.get("loc") or ()
        pos = loc[1] if len(loc) > 1 else "?"
        return f"malformed JSON at character {pos}: {ctx.get('error', msg)}"
    if error.get("type") == "model_attributes_type" or error.get("type") == "dict_type":
        return f"{msg} (send a JSON object with Content-Type: application/json)"
    if error.get("type") == "extra_forbidden":
        return "unknown field; see /docs for the fields this endpoint takes"
    return msg


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = [
        # A JSON syntax error has a character position, not a field: the position goes into the message.
        _item(("body",) if e.get("type") == "json_invalid" else e.get("loc", ()), _message(e), str(e.get("type")))
        for e in exc.errors()
    ]
    return _json(request, 422, items)


async def field_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FieldError)
    return _json(request, 422, [_item(exc.loc, exc.msg, exc.type)])


async def question_error(request: Request, exc: Exception) -> JSONResponse:
    return _json(request, 422, [_item(("body", "question"), str(exc), "value_error")])


async def reader_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return _json(request, 422, [_item(("body", "reader"), str(exc), "reader_unavailable")])


async def value_error(request: Request, exc: Exception) -> JSONResponse:
    """The pipeline's own checks (an enum it was handed as text, say); its messages list the choices."""
    return _json(request, 422, [_item(("body",), str(exc), "value_error")])


async def qa_error(request: Request, exc: Exception) -> JSONResponse:
    """A component failed to load or read (a reader's model, the index): the service, not the input, is at fault."""
    log.error("pipeline error", extra={"request_id": request_id_of(request.scope), "error": str(exc)})
    return _json(request, 503, f"the question service cannot answer now: {exc}")


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return _json(request, exc.status_code, exc.detail, headers=getattr(exc, "headers", None))


async def unhandled(request: Request, exc: Exception) -> JSONResponse:
    """Last resort: log the traceback under the request id, tell the client only that id."""
    rid = request_id_of(request.scope)
    log.error("unhandled error", exc_info=exc, extra={"request_id": rid, "path": request.url.path})
    headers = {REQUEST_ID_HEADER: rid} if rid else None
    return _json(request, 500, "internal server error; quote the request id when reporting it", headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(FieldError, field_error)
    app.add_exception_handler(QuestionError, question_error)
    app.add_exception_handler(ReaderUnavailableError, reader_unavailable)
    app.add_exception_handler(ValueError, value_error)
    app.add_exception_handler(QAError, qa_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unhandled)
