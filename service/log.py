"""JSON log lines: one object per line, so a log shipper or `jq` can read them without parsing prose."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from typing import Any

from common.progress import quiet_libraries

ACCESS_LOGGER = "service.access"
LOGGER = "service"

# Attributes every LogRecord has; anything else was passed through `extra=` and belongs in the JSON object.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
# uvicorn's `color_message` repeats `msg` with terminal colour codes.
_SKIPPED = _STANDARD | {"color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in _SKIPPED and not k.startswith("_")})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


LIBRARY_LEVEL = logging.WARNING
"""The least severe line a library (anything but the service's and uvicorn's loggers) may write while serving."""


def _json_handler(level: int = logging.NOTSET) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(level)
    return handler


def _replace_handlers(logger: logging.Logger, handler: logging.Handler) -> None:
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)


# Libraries that give their loggers a plain-text stderr handler of their own when imported (transformers also
# stops propagation): their lines would bypass the root logger's JSON handler, or be written twice.
_OWN_HANDLER_LIBRARIES = ("transformers", "huggingface_hub")


def _library_loggers_to_root() -> None:
    """Import transformers' logging (and with it huggingface_hub) now, while nothing else runs, so that their own
    handlers exist and can be taken away; both are loaded for serving anyway (the reader, the embedder)."""
    with contextlib.suppress(ImportError):  # not installed: nothing of theirs will write
        import transformers.utils.logging  # noqa: F401  (sets up the library loggers' handlers)
    quiet_libraries()
    for name in _OWN_HANDLER_LIBRARIES:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True


def configure_logging(level: str = "info") -> None:
    """Every line the process logs goes to stderr as one JSON object; called by `qa serve`, not on import (tests
    use caplog). The service's loggers at `level`; everything else through the root logger at LIBRARY_LEVEL or
    above: onnxruntime's quantisation advice (logged on the root logger, which would otherwise get a plain-text
    `basicConfig` handler), bm25s (which sets its own logger to DEBUG when imported, so the level is held by the
    handler, not the logger) and Python warnings (`logging.captureWarnings`)."""
    quiet_libraries()  # before anything below imports a library that reads its switch on import
    service = logging.getLogger(LOGGER)
    _replace_handlers(service, _json_handler())
    service.setLevel(level.upper())
    service.propagate = False

    library_level = max(LIBRARY_LEVEL, logging.getLevelName(level.upper()))
    root = logging.getLogger()
    _replace_handlers(root, _json_handler(library_level))
    root.setLevel(library_level)
    logging.getLogger("bm25s").setLevel(LIBRARY_LEVEL)  # until bm25s is imported; the handler holds it after
    logging.captureWarnings(True)
    _library_loggers_to_root()


def uvicorn_log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's own lines (start-up, shutdown, errors) in the same JSON form; its access log is replaced by ours."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
        },
    }
