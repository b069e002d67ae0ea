"""`qa serve` in a child process, for the latency benchmark and the load test: one launcher for both.

A child process has its own interpreter and GIL, so the clients measuring it do not compete with it for one.
The embedding backend is a setting now (`--embedding-backend`), so every backend runs the real `qa serve`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Served:
    url: str
    pid: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(
    log_path: Path,
    index_dir: Path | None = None,
    backend: str | None = None,
    env: Mapping[str, str] | None = None,
    api_key: str | None = None,
    start_timeout: float = 600,
) -> Iterator[Served]:
    """Start `qa serve` on a free loopback port (`backend`: its `--embedding-backend`; `env`: extra QA_*
    settings; `api_key`: sent as QA_API_KEY and used for the readiness check), yield once /ready says 200,
    then stop it. A server that exits or is not ready in time raises RuntimeError naming its log."""
    import httpx

    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    if index_dir is not None:
        cmd += ["--index-dir", str(index_dir)]
    if backend is not None:
        cmd += ["--embedding-backend", backend]
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    headers = {}
    if api_key is not None:
        full_env["QA_API_KEY"] = api_key
        headers["X-API-Key"] = api_key
    what = f"qa serve ({backend or 'configured backend'})"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{what} exited with {proc.returncode}; see {log_path}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{what} was not ready after {start_timeout:.0f} s; see {log_path}")
                try:
                    if httpx.get(url + "/ready", headers=headers, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.25)
            yield Served(url, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
