"""Property-based fuzzing of the whole HTTP API from its own OpenAPI schema (schemathesis on hypothesis).

Every operation gets schema-valid ("positive") and schema-violating ("negative") requests, with the right key and
without it, against the real app and pipeline (on a private copy of the demo index: the admin endpoints really
change it). Properties checked on every response:

- no 5xx, ever;
- every 4xx is JSON whose `detail` names the problem (a non-empty message, or items each with a field and a msg);
- every status is one the schema documents for that operation, and every 2xx body matches the documented schema;
- without the key, every operation but /health answers 401 (the admin ones too), before any body is parsed.

The CI run sends >= 1,000 requests; `QA_FUZZ_SCALE=10 pytest tests/reliability/test_fuzz_api.py` sends ten times
as many (the examples are derandomized, so a run is reproducible; a larger scale explores further).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from qa.pipeline import QAPipeline
from qa.settings import Settings
from service.app import create_app
from tests.service.helpers import service_settings

pytestmark = [pytest.mark.model, pytest.mark.slow]

KEY = "fuzz-reader-key"
ADMIN_KEY = "fuzz-admin-key"
SCALE = float(os.environ.get("QA_FUZZ_SCALE", "1"))
MIN_REQUESTS = 1000
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE

# Examples per (operation, mode) with the key; the cheap operations carry most of the count, the ones that run
# the models (ask, batch, document updates) get enough to explore their inputs within a CI-sized time.
BUDGET: dict[str, dict[GenerationMode, int]] = {
    "POST /ask": {POSITIVE: 120, NEGATIVE: 140},
    "POST /ask/batch": {POSITIVE: 50, NEGATIVE: 90},
    "GET /documents/{doc_id}": {POSITIVE: 220, NEGATIVE: 180},
    "GET /ready": {POSITIVE: 30, NEGATIVE: 30},
    "GET /health": {POSITIVE: 5, NEGATIVE: 5},
    "POST /admin/reload": {POSITIVE: 20, NEGATIVE: 30},
    "POST /admin/documents": {POSITIVE: 40, NEGATIVE: 120},
}
UNAUTHENTICATED = 25  # examples per (operation, mode) sent without a key (or with a wrong one)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_app(
    copy_demo_index: Callable[[str], Path], make_pipeline: Callable[..., QAPipeline], demo_settings: Settings
) -> FastAPI:
    index_dir = copy_demo_index("fuzz")
    # A shorter question limit and small batch and update caps keep each answered request cheap; the limits are
    # still fuzzed (requests over them must be a named 422).
    limits: dict[str, Any] = {"question_max_chars": 300, "expand_documents": 1}
    pipeline = make_pipeline(index_dir, **limits)
    settings = service_settings(
        demo_settings,
        index_dir=index_dir,
        api_key=KEY,
        admin_api_key=ADMIN_KEY,
        batch_max=4,
        update_max_documents=4,
        **limits,
    )
    return create_app(settings, pipeline=pipeline)


def names_the_problem(body: Any) -> bool:
    """`{"detail": "message"}` or `{"detail": [{"field": ..., "msg": ...}, ...]}` with nothing left empty."""
    if not isinstance(body, dict):
        return False
    detail = body.get("detail")
    if isinstance(detail, str):
        return bool(detail.strip())
    if isinstance(detail, list) and detail:
        return all(isinstance(d, dict) and str(d.get("msg", "")).strip() and str(d.get("field", "")) for d in detail)
    return False


def run_cases(operation: Any, mode: GenerationMode, examples: int, key: str | None) -> Iterator[tuple[int, str | None]]:
    """Send `examples` generated requests; yields (status, problem or None) for each."""
    results: list[tuple[int, str | None]] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case: Any) -> None:
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "x-api-key"}
        if key is not None:
            headers["X-API-Key"] = key
        case.headers = headers
        response = case.call()
        problem = None
        try:
            if key in (KEY, ADMIN_KEY):
                case.validate_response(response, checks=CHECKS)
            elif response.status_code >= 500:
                problem = "server error"
        except Exception as err:  # a failed check: keep going, report them all
            problem = f"{type(err).__name__}: {str(err)[:300]}"
        if 400 <= response.status_code < 500:
            try:
                body = response.json()
            except ValueError:
                body = None
            if not names_the_problem(body):
                problem = f"{response.status_code} without a detail: {response.text[:200]!r}"
        if problem is not None:
            problem = (
                f"{operation.label} [{mode.value}] {response.status_code}: {problem} (body {str(case.body)[:200]})"
            )
        results.append((response.status_code, problem))

    with contextlib.suppress(Unsatisfiable):  # an operation without inputs has no schema-violating request
        send()
    yield from results


def test_fuzzing_the_whole_api_finds_no_5xx_and_only_named_4xx(fuzz_app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app, headers={"X-API-Key": KEY})
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} == set(BUDGET), "every endpoint of the schema is fuzzed"

    statuses: Counter[tuple[str, int]] = Counter()
    problems: list[str] = []
    t0 = time.perf_counter()
    for op in operations:
        key = ADMIN_KEY if op.path.startswith("/admin") else KEY
        for mode, n in BUDGET[op.label].items():
            for status, problem in run_cases(op, mode, max(1, round(n * SCALE)), key):
                statuses[(op.label, status)] += 1
                if problem:
                    problems.append(problem)
    authenticated = sum(statuses.values())

    # Without the key, or with a wrong one (the reader key on admin endpoints): 401 everywhere but /health.
    for op in operations:
        for key in (None, KEY if op.path.startswith("/admin") else "not-the-key"):
            for mode in (POSITIVE, NEGATIVE):
                for status, problem in run_cases(op, mode, max(1, round(UNAUTHENTICATED * SCALE / 2)), key):
                    statuses[(f"{op.label} keyless", status)] += 1
                    if problem:
                        problems.append(problem)
                    if op.path != "/health" and status != 401:
                        problems.append(f"{op.label} with key {key!r} answered {status}, not 401")
    total = sum(statuses.values())
    took = time.perf_counter() - t0
    print(f"\nfuzzed {total} requests ({authenticated} with the key) in {took:.0f} s")
    for (label, status), n in sorted(statuses.items()):
        print(f"  {label}: {status} x {n}")

    assert problems == [], "\n".join(problems[:20])
    assert authenticated >= MIN_REQUESTS * min(SCALE, 1.0)
    assert not [s for (_, s) in statuses if s >= 500]
    # The fuzzing reached the models, not only the validators.
    assert statuses[("POST /ask", 200)] > 0
    assert statuses[("POST /ask/batch", 200)] > 0
    assert statuses[("POST /admin/documents", 200)] > 0
