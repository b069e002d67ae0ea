"""`qa serve` is registered without heavy imports; ServiceSettings reads the QA_* environment."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cli import app
from service.settings import ServiceSettings


def test_serve_is_a_qa_command_with_host_port_and_index_dir() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    for flag in ("--host", "--port", "--index-dir"):
        assert flag in result.output


def test_serve_rejects_a_bad_port() -> None:
    result = CliRunner().invoke(app, ["serve", "--port", "70000"])
    assert result.exit_code == 2


def test_importing_the_cli_plugin_loads_no_web_stack_or_models() -> None:
    code = (
        "import sys, service.cli\n"
        "heavy = [m for m in ('fastapi', 'uvicorn', 'torch', 'sentence_transformers', 'service.app') if m in sys.modules]\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_service_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_API_KEY", "k-9f3e1c")
    monkeypatch.setenv("QA_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("QA_BATCH_MAX", "7")
    monkeypatch.setenv("QA_TOP_K", "9")
    s = ServiceSettings(_env_file=None)
    assert s.api_key is not None and s.api_key.get_secret_value() == "k-9f3e1c"
    assert "k-9f3e1c" not in repr(s)
    assert s.cors_origins == ["https://a.example", "https://b.example"]
    assert s.batch_max == 7
    assert s.top_k == 9  # inherited pipeline settings read the same environment
    monkeypatch.setenv("QA_CORS_ORIGINS", '["https://c.example"]')
    assert ServiceSettings(_env_file=None).cors_origins == ["https://c.example"]


def test_service_defaults_are_safe_for_a_local_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("QA_API_KEY", "QA_CORS_ORIGINS", "QA_HOST"):
        monkeypatch.delenv(var, raising=False)
    s = ServiceSettings(_env_file=None)
    assert s.host == "127.0.0.1"
    assert s.api_key is None
    assert s.cors_origins == []


@pytest.mark.parametrize(("var", "value"), [("QA_LOG_LEVEL", "loud"), ("QA_BATCH_MAX", "0"), ("QA_PORT", "-1")])
def test_bad_service_settings_are_refused(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError):
        ServiceSettings(_env_file=None)


def test_torch_threads_default_to_one_per_question(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QA_TORCH_THREADS", raising=False)
    assert ServiceSettings(_env_file=None).torch_threads == 1
    monkeypatch.setenv("QA_TORCH_THREADS", "0")
    assert ServiceSettings(_env_file=None).torch_threads == 0
