"""`qa serve` refuses, before loading anything, a port in use and an index directory that holds no index."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli import app
from index.embedder import Embedder
from index.errors import IndexNotFoundError
from service.app import create_app
from service.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another socket is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.fixture
def nothing_may_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a model or starting uvicorn fails the test: the checks must come first."""
    monkeypatch.setenv("QA_READER", "heuristic")

    def no(*_a: object, **_k: object) -> None:
        raise AssertionError("qa serve went on to load or serve")

    monkeypatch.setattr(Embedder, "warm_up", no)
    monkeypatch.setattr(uvicorn, "run", no)


def test_serve_fails_fast_on_a_port_in_use(busy_port: int, nothing_may_load: None) -> None:
    t0 = time.monotonic()
    result = CliRunner().invoke(app, ["serve", "--host", "127.0.0.1", "--port", str(busy_port)])
    assert time.monotonic() - t0 < 5
    assert result.exit_code == 2, result.output
    assert f"cannot listen on 127.0.0.1:{busy_port}: the address is already in use" in result.output
    assert "--port" in result.output


def test_serve_fails_fast_on_a_port_in_use_in_a_fresh_process(busy_port: int) -> None:
    """In a process of its own: it exits at once, with no model library even imported."""
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from cli import app\n"
        f"r = CliRunner().invoke(app, ['serve', '--host', '127.0.0.1', '--port', '{busy_port}'])\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers', 'onnxruntime', 'uvicorn')"
        " if m in sys.modules]\n"
        "print(json.dumps({'code': r.exit_code, 'output': r.output, 'heavy': heavy}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", QA_READER="heuristic")
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["code"] == 2 and f"127.0.0.1:{busy_port}" in got["output"] and "already in use" in got["output"]
    assert got["heavy"] == []
    assert elapsed < 30  # an interpreter start and light imports, on a busy 2-core machine


def test_serve_refuses_an_index_dir_holding_no_index(tmp_path: Path, nothing_may_load: None) -> None:
    typo = tmp_path / "idnex"
    result = CliRunner().invoke(app, ["serve", "--port", "0", "--index-dir", str(typo)])
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert f"the index directory {typo} does not exist" in out
    assert f"qa index --index-dir {typo} [--corpus PATH]" in out
    assert not typo.exists()


def test_the_lifespan_applies_the_same_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`create_app(settings)` with no pipeline (as `qa serve` calls it) builds only the default index directory."""
    monkeypatch.setenv("QA_READER", "heuristic")
    monkeypatch.setattr(Embedder, "warm_up", lambda *_a, **_k: pytest.fail("a model loaded before the check"))
    typo = tmp_path / "idnex"
    settings = ServiceSettings(
        index_dir=typo, api_key=None, admin_api_key=None, cors_origins=[], warm_up_in_background=False, _env_file=None
    )
    with pytest.raises(IndexNotFoundError, match="does not exist"), TestClient(create_app(settings)):
        pass
    assert not typo.exists()
