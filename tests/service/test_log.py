"""Every line `qa serve` writes is one JSON object: its own, uvicorn's, and the libraries' (logs, warnings, no
progress bars), from a first run that exports the ONNX model and builds the index to the shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.helpers import STRIDE

ROOT = Path(__file__).resolve().parents[2]


def child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The developer's QA_* settings left out; the repository importable from any working directory; nothing
    written outside `tmp_path` (the ONNX export goes to a fresh cache there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        QA_ONNX_CACHE_DIR=str(tmp_path / "onnx-cache"),
        **extra,
    )
    return env


def not_json_lines(text: str) -> list[str]:
    """The non-empty lines of `text` that are not one JSON object each."""
    bad = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            bad.append(line)
            continue
        if not isinstance(obj, dict):
            bad.append(line)
    return bad


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


LIBRARY_NOISE = """
import logging, sys, warnings
from service.log import configure_logging
configure_logging("info")
import bm25s
from tqdm import tqdm
from transformers.utils import logging as transformers_logging
logging.getLogger("bm25s").debug("bm25s debug line")
logging.getLogger("bm25s").warning("bm25s warning line")
logging.warning("root warning line")  # as onnxruntime's quantiser logs its advice
logging.getLogger("faiss.loader").info("library info line")
warnings.warn("python warning line", UserWarning)
transformers_logging.get_logger("transformers.modeling_utils").warning("transformers warning line")
logging.getLogger("huggingface_hub.file_download").warning("hub warning line")
for _ in tqdm(range(3), desc="plain tqdm bar"):
    pass
for _ in transformers_logging.tqdm(range(3), desc="Loading weights"):
    pass
logging.getLogger("service").info("service info line")
print("done", file=sys.stderr)
"""


def test_library_logs_warnings_and_progress_bars_come_out_as_json_or_not_at_all(tmp_path: Path) -> None:
    """In a fresh process, as `qa serve` sets it up: each library's way of writing to stderr."""
    proc = subprocess.run(
        [sys.executable, "-c", LIBRARY_NOISE],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=child_env(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[-1] == "done", proc.stderr
    err = "\n".join(lines[:-1])
    assert not_json_lines(err + proc.stdout) == [], err
    got = {(r["logger"], r["level"], r["msg"]) for r in records(err)}
    assert ("bm25s", "warning", "bm25s warning line") in got
    assert ("root", "warning", "root warning line") in got
    assert ("transformers.modeling_utils", "warning", "transformers warning line") in got
    assert ("huggingface_hub.file_download", "warning", "hub warning line") in got
    assert ("service", "info", "service info line") in got
    assert any(r["logger"] == "py.warnings" and "python warning line" in r["msg"] for r in records(err))
    # Below WARNING, libraries are silent whatever level their own logger was left at (bm25s sets DEBUG).
    assert "bm25s debug line" not in err and "library info line" not in err
    # Each record once: no library keeps a plain handler of its own beside the root's.
    assert len(records(err)) == len(got), err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.model
@pytest.mark.slow
def test_every_line_qa_serve_writes_is_one_json_object(tmp_path: Path) -> None:
    """`qa serve` from scratch in an empty working directory: it exports the embedding model (onnxruntime's
    quantiser logs there), builds the default index (bm25s, embedding batches), loads the reader (transformers'
    "Loading weights" bar), answers one question and shuts down on SIGTERM."""
    port = free_port()
    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    cmd = [sys.executable, "-m", "cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "info"]
    url = f"http://127.0.0.1:{port}"
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=tmp_path, env=child_env(tmp_path))
        try:
            deadline = time.monotonic() + 600
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"qa serve exited with {proc.returncode}:\n{err_path.read_text()[-4000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"qa serve was not ready after 600 s:\n{err_path.read_text()[-4000:]}")
                try:
                    if httpx.get(url + "/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            r = httpx.post(url + "/ask", json={"question": STRIDE}, timeout=120)
            assert r.status_code == 200, r.text
            assert r.json()["answers"][0]["text"] == "16.43 months"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    stdout, stderr = out_path.read_text(), err_path.read_text()
    # uvicorn shuts down cleanly, then re-raises the signal it caught: killed by SIGTERM is the clean exit.
    assert proc.returncode in (0, -signal.SIGTERM), stderr[-4000:]
    bad = not_json_lines(stdout + "\n" + stderr)
    assert bad == [], "lines that are not one JSON object:\n" + "\n".join(line[:300] for line in bad)

    logged = records(stderr)
    messages = [(r["logger"], r["msg"]) for r in logged]
    assert any(name == "service" and msg.startswith("exporting the embedding model") for name, msg in messages)
    assert any(name == "service" and msg.startswith("no index at var/index") for name, msg in messages)
    assert ("service", "ready") in messages
    assert ("uvicorn.error", "Application startup complete.") in messages
    assert ("uvicorn.error", "Application shutdown complete.") in messages
    asked = [r for r in logged if r["logger"] == "service.access" and r.get("path") == "/ask"]
    assert len(asked) == 1 and asked[0]["status"] == 200
    assert all("color_message" not in r for r in logged), "uvicorn's colour-coded copy of msg is left out"
    # The libraries' lines that do come through are warnings or worse, never their debug or info chatter.
    mine = ("service", "uvicorn", "py.warnings")
    chatter = [r for r in logged if not r["logger"].startswith(mine) and r["level"] in ("debug", "info")]
    assert chatter == []
