"""`qa serve`: registered into the `qa` program by `cli`. Imports nothing heavy until the command runs."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Annotated

import typer

from index.embedder import EmbedderBackend


def shown_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def port_problem(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on now (None when it can): bound for a moment and released, as
    uvicorn (asyncio's `create_server`) will bind it, to every address the host resolves to, with SO_REUSEADDR,
    so a port in use is reported before any model loads rather than after. Port 0 (any free one) always can."""
    if port == 0:
        return None
    where = shown_address(host, port)
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        return f"cannot listen on {where}: the host does not resolve ({err.strerror})"
    for family, kind, proto, _name, address in infos:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return (
                    f"cannot listen on {where}: the address is already in use (another `qa serve`?); "
                    "choose another port with --port or QA_PORT"
                )
            return f"cannot listen on {where}: {err.strerror or err}"
    return None


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: Annotated[
            str | None, typer.Option("--host", help="Interface to listen on (default: QA_HOST or 127.0.0.1).")
        ] = None,
        port: Annotated[
            int | None, typer.Option("--port", min=0, max=65535, help="TCP port (default: QA_PORT or 8000).")
        ] = None,
        index_dir: Annotated[
            Path | None, typer.Option("--index-dir", help="Index directory (default: QA_INDEX_DIR or var/index).")
        ] = None,
        log_level: Annotated[
            str | None, typer.Option("--log-level", help="critical, error, warning, info, debug.")
        ] = None,
        embedding_backend: Annotated[
            EmbedderBackend | None,
            typer.Option(
                "--embedding-backend", help="torch, onnx, onnx-int8 (default: QA_EMBEDDING_BACKEND); the index's own."
            ),
        ] = None,
    ) -> None:
        """Serve the HTTP API (/docs) and the web page (/); builds the corpus's index first if there is none in
        the default index directory (any other one must hold an index: `qa index --index-dir DIR`)."""
        from pydantic import ValidationError

        from qa.settings import offline_by_default

        offline_by_default()
        from service.settings import ServiceSettings

        overrides = {
            "host": host,
            "port": port,
            "index_dir": index_dir,
            "log_level": log_level,
            "embedding_backend": embedding_backend,
        }
        try:
            settings = ServiceSettings(**{k: v for k, v in overrides.items() if v is not None})
        except ValidationError as err:
            typer.echo(f"error: invalid settings: {err}", err=True)
            raise typer.Exit(2) from err
        # Both checks before anything loads: each would otherwise surface only after the models and the index.
        problem = port_problem(settings.host, settings.port)
        if problem is not None:
            typer.echo(f"error: {problem}", err=True)
            raise typer.Exit(2)
        from index.errors import IndexNotFoundError
        from qa.pipeline import check_index_dir

        try:
            check_index_dir(settings.index_dir)
        except IndexNotFoundError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from err

        import logging

        from service.log import LOGGER, configure_logging, uvicorn_log_config

        # First: from here on every line is one JSON object (libraries' logs and warnings included, their progress
        # bars off), so it comes before the imports that load model libraries.
        configure_logging(settings.log_level)
        import uvicorn

        from service.app import create_app

        if settings.torch_threads > 0:
            # Set once, process-wide: torch otherwise gives every new worker thread one OpenMP thread per core, and
            # on a busy machine each question then waits at OpenMP barriers (measured: 700+ ms instead of 25 ms).
            import torch

            torch.set_num_threads(settings.torch_threads)
        logging.getLogger(LOGGER).info(
            f"qa serve: loading the index in {settings.index_dir} (built on first run), then serving "
            f"http://{shown_address(settings.host, settings.port)}/ (API docs at /docs)",
            extra={"index_dir": str(settings.index_dir)},
        )
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            access_log=False,
            log_config=uvicorn_log_config(settings.log_level),
            timeout_graceful_shutdown=10,
        )
