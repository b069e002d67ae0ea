"""`qa serve` with a chosen embedding backend, for the latency benchmark of the ONNX paths.

Until the settings carry a backend (`QA_EMBEDDING_BACKEND`), this is the same start-up as `service.cli.serve`
with the pipeline's embedder replaced before warm-up: same app, same settings, same thread limits.

    python -m eval.bench.server --backend onnx-int8 --index-dir var/bench/indexes/builtin-onnx-int8 --port 8011
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--index-dir", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--onnx-cache-dir", default=None)
    args = ap.parse_args()

    from qa.settings import offline_by_default

    offline_by_default()
    import torch
    import uvicorn

    from index.embedder import Embedder
    from qa.pipeline import QAPipeline
    from service.app import create_app
    from service.log import configure_logging, uvicorn_log_config
    from service.settings import ServiceSettings

    settings = ServiceSettings(index_dir=args.index_dir, port=args.port, host="127.0.0.1", log_level="warning")
    configure_logging(settings.log_level)
    if settings.torch_threads > 0:
        torch.set_num_threads(settings.torch_threads)
    pipeline = QAPipeline(settings)
    pipeline.embedder = Embedder(
        settings.embedding_model,
        settings.embedding_batch_size,
        backend=args.backend,
        onnx_cache_dir=args.onnx_cache_dir,
    )
    uvicorn.run(
        create_app(settings, pipeline),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=uvicorn_log_config(settings.log_level),
    )


if __name__ == "__main__":
    main()
