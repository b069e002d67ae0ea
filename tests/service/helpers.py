"""Shared test helpers for the service: questions, settings pinned against the environment, a live server."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from qa.pipeline import QAPipeline
from qa.settings import Settings
from service.settings import ServiceSettings

STRIDE = "What was the median overall survival with STRIDE?"
# Nothing in the built-in abstracts answers this; the pipeline should abstain (checked where it matters).
UNANSWERABLE = "What is the boiling point of tungsten at sea level?"
QUESTIONS = [
    STRIDE,
    "What is the overall survival hazard ratio for STRIDE versus sorafenib?",
    "Which kinases does lenvatinib inhibit?",
    "What is regorafenib approved for?",
    "What was the 36-month overall survival rate for STRIDE?",
    "Which drug is a deuterated sorafenib derivative?",
    "What are desmoid tumors?",
    UNANSWERABLE,
]


def service_settings(demo_settings: Settings, **overrides: Any) -> ServiceSettings:
    """The demo index, with the service's knobs pinned so a developer's QA_* environment cannot leak in."""
    base: dict[str, Any] = {
        "index_dir": demo_settings.index_dir,
        "api_key": None,
        "admin_api_key": None,
        "cors_origins": [],
        "warm_up_in_background": False,
        "_env_file": None,
    }
    return ServiceSettings(**{**base, **overrides})


def expected_json(pipeline: QAPipeline, question: str, **kwargs: Any) -> dict[str, Any]:
    """What /ask must return for `question`, computed in-process (timing aside)."""
    out = pipeline.run(question, **kwargs).to_dict()
    out.pop("took_ms")
    return out


def without_timing(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "took_ms"}


def json_difference(got: Any, want: Any, tol: float = 1e-5, at: str = "") -> str | None:
    """Where two JSON values differ (None when they agree), numbers to within `tol`. A batch is encoded in one
    call: with torch its vectors differ from one-by-one ones by float rounding, which z-score fusion carries into
    the 6th decimal of a score; everything else (texts, ids, offsets, order) must be equal."""
    if isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        return None if abs(got - want) <= tol else f"{at}: {got} != {want}"
    if isinstance(want, dict) and isinstance(got, dict):
        if set(got) != set(want):
            return f"{at}: keys {sorted(got)} != {sorted(want)}"
        return next((d for k in want if (d := json_difference(got[k], want[k], tol, f"{at}.{k}"))), None)
    if isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            return f"{at}: {len(got)} items != {len(want)}"
        return next(
            (
                d
                for i, (g, w) in enumerate(zip(got, want, strict=True))
                if (d := json_difference(g, w, tol, f"{at}[{i}]"))
            ),
            None,
        )
    return None if got == want else f"{at}: {got!r} != {want!r}"


class LiveServer:
    """uvicorn in a thread on a loopback socket bound to port 0 by us: a free port with no race."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.05)
        key = self.app.state.service.settings.api_key
        headers = {"X-API-Key": key.get_secret_value()} if key is not None else {}
        assert httpx.get(self.url + "/ready", headers=headers, timeout=10).status_code == 200
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
