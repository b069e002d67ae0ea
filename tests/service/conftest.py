"""Service fixtures: apps built around the session's warmed demo pipeline, so no test loads a model twice."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from qa.pipeline import QAPipeline
from qa.settings import Settings
from service.app import create_app
from tests.service.helpers import LiveServer, service_settings


@pytest.fixture(scope="session")
def make_client(demo_pipeline: QAPipeline, demo_settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """`make_client(api_key=..., ...)`: a started TestClient over the shared pipeline with those settings."""
    with ExitStack() as stack:

        def make(raise_server_exceptions: bool = True, app: FastAPI | None = None, **overrides: Any) -> TestClient:
            app = app or create_app(service_settings(demo_settings, **overrides), pipeline=demo_pipeline)
            return stack.enter_context(TestClient(app, raise_server_exceptions=raise_server_exceptions))

        yield make


@pytest.fixture(scope="session")
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture(scope="session")
def live_server(demo_pipeline: QAPipeline, demo_settings: Settings) -> Iterator[LiveServer]:
    app = create_app(service_settings(demo_settings, ask_concurrency=4), pipeline=demo_pipeline)
    with LiveServer(app) as server:
        yield server
