"""`qa serve`: registered into the `qa` CLI by `qa.cli`. Imports nothing heavy until the command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from index.embedder import EmbedderBackend


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
        """Serve the HTTP API (/docs) and the web page (/); builds the corpus's index first if there is none."""
        from pydantic import ValidationError

        from qa.settings import offline_by_default

        offline_by_default()
        import uvicorn

        from service.app import create_app
        from service.log import configure_logging, uvicorn_log_config
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
        configure_logging(settings.log_level)
        if settings.torch_threads > 0:
            # Set once, process-wide: torch otherwise gives every new worker thread one OpenMP thread per core, and
            # on a busy machine each question then waits at OpenMP barriers (measured: 700+ ms instead of 25 ms).
            import torch

            torch.set_num_threads(settings.torch_threads)
        shown = f"[{settings.host}]" if ":" in settings.host else settings.host
        typer.echo(
            f"qa serve: loading the index in {settings.index_dir} (built on first run), then serving "
            f"http://{shown}:{settings.port}/ (API docs at /docs)",
            err=True,
        )
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            access_log=False,
            log_config=uvicorn_log_config(settings.log_level),
            timeout_graceful_shutdown=10,
        )
