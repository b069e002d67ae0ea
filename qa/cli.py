"""The `qa` command: index, ask (and serve, eval, train-reader, bench, registered from their packages).

This is an edge of the system: it reads settings, builds components, prints. Commands from `service` and
`eval` are registered here by import, so `qa` stays the single entry point while those packages keep their
dependency on `qa` one-way at library level.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from index.embedder import EmbedderBackend
from index.errors import QAError
from index.ingest import CorpusFormat, InvalidRecordPolicy
from index.retriever import RetrievalMode
from qa.readers.base import ReaderKind
from qa.readers.transformers_reader import ReaderBackend
from qa.settings import Settings, offline_by_default

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Extractive question answering over biomedical abstracts."
)
console = Console()
err_console = Console(stderr=True)

IndexDirOpt = Annotated[
    Path | None, typer.Option("--index-dir", help="Index directory (default: QA_INDEX_DIR or var/index).")
]
CorpusOpt = Annotated[
    Path | None, typer.Option("--corpus", help="Corpus file or folder (default: the built-in abstracts).")
]
EmbeddingBackendOpt = Annotated[
    EmbedderBackend | None,
    typer.Option(
        "--embedding-backend", help="Embedding backend (default: QA_EMBEDDING_BACKEND); must be the index's own."
    ),
]


def load_settings(**overrides: Any) -> Settings:
    """Settings from file and environment, then CLI flags that were actually given."""
    offline_by_default()
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


@app.command("index")
def index_command(
    corpus: CorpusOpt = None,
    index_dir: IndexDirOpt = None,
    fmt: Annotated[CorpusFormat, typer.Option("--format", help="Corpus format.")] = CorpusFormat.AUTO,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Skip and count bad records instead of stopping.")
    ] = False,
    embedding_model: Annotated[str | None, typer.Option("--embedding-model")] = None,
    embedding_backend: EmbeddingBackendOpt = None,
) -> None:
    """Ingest a corpus, chunk, embed and index it; the new index replaces the old one atomically."""
    from index.ingest import load_corpus
    from index.store import build_index
    from qa.pipeline import build_embedder

    settings = load_settings(
        corpus_path=corpus, index_dir=index_dir, embedding_model=embedding_model, embedding_backend=embedding_backend
    )
    try:
        policy = InvalidRecordPolicy.SKIP if skip_invalid else InvalidRecordPolicy.RAISE
        result = load_corpus(settings.corpus_path, fmt, policy)
        for rec in result.skipped:
            err_console.print(f"[yellow]skipped[/] {escape(rec.location)}: {escape(rec.reason)}")
        embedder = build_embedder(settings)
        embedder.warm_up(say=lambda m: err_console.print(escape(m)))
        manifest = build_index(
            result.documents,
            embedder,
            settings.index_dir,
            settings.index_config(),
            source=str(settings.corpus_path),
            show_progress=True,
            on_stage=lambda m: err_console.print(escape(m)),
        )
    except QAError as err:
        fail(str(err))
    console.print(
        f"indexed {manifest.corpus.n_documents} documents ({len(result.skipped)} skipped) as "
        f"{manifest.corpus.n_chunks} chunks in {settings.index_dir} (fingerprint {manifest.fingerprint})"
    )


def highlight(passage: str, start: int, end: int) -> str:
    return f"{escape(passage[:start])}[bold black on yellow]{escape(passage[start:end])}[/]{escape(passage[end:])}"


@app.command("ask")
def ask_command(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    top_k: Annotated[int | None, typer.Option("--top-k", min=1, max=50, help="Passages to retrieve.")] = None,
    max_answers: Annotated[int | None, typer.Option("--max-answers", min=1, max=20)] = None,
    retriever: Annotated[RetrievalMode | None, typer.Option("--retriever")] = None,
    reader: Annotated[ReaderKind | None, typer.Option("--reader")] = None,
    reader_model: Annotated[
        str | None, typer.Option("--reader-model", help="QA checkpoint for --reader transformers.")
    ] = None,
    reader_backend: Annotated[
        ReaderBackend | None,
        typer.Option("--reader-backend", help="Reader model backend (default: QA_READER_BACKEND, torch)."),
    ] = None,
    index_dir: IndexDirOpt = None,
    embedding_backend: EmbeddingBackendOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the stable JSON form (see README).")] = False,
) -> None:
    """Answer a question with verbatim spans of the corpus, each with its citation."""
    from qa.pipeline import DEFAULT_DIR_ONLY, QAPipeline

    settings = load_settings(
        index_dir=index_dir,
        reader=reader,
        reader_model=reader_model,
        reader_backend=reader_backend,
        embedding_backend=embedding_backend,
    )
    pipeline = QAPipeline(settings)
    try:
        # Only the default index directory is built on first run: a mistyped --index-dir is an error.
        pipeline.warm_up(build_if_missing=DEFAULT_DIR_ONLY, say=lambda m: err_console.print(escape(m)))
        result = pipeline.run(question, top_k=top_k, max_answers=max_answers, retriever=retriever, reader=reader)
    except (QAError, ValueError) as err:
        fail(str(err))
    if as_json:
        json.dump(result_to_json(result), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return
    if result.no_answer:
        console.print("[bold]No answer found in the corpus.[/] Closest evidence:")
        for p in result.passages[:3]:
            console.print(
                f"  [cyan]{p.chunk.doc_id}[/] chars {p.chunk.start}-{p.chunk.end}: {escape(p.chunk.text[:200])}…"
            )
        return
    for i, a in enumerate(result.answers, start=1):
        console.print(f"[bold]{i}. {escape(a.text)}[/]  score {a.score:.3f}")
        console.print(f"   cites [cyan]{a.doc_id}[/], characters {a.start}-{a.end}")
        console.print("   " + highlight(a.passage.text, a.span_in_passage.start, a.span_in_passage.end))


def result_to_json(result: Any) -> dict[str, Any]:
    """The `--json` form; the HTTP API returns the same shape."""
    return {
        "question": result.question,
        "no_answer": result.no_answer,
        "answers": [
            {
                "text": a.text,
                "score": round(a.score, 6),
                "doc_id": a.doc_id,
                "start": a.start,
                "end": a.end,
                "passage": {
                    "chunk_id": a.passage.chunk_id,
                    "text": a.passage.text,
                    "start": a.passage.start,
                    "end": a.passage.end,
                },
                "span_in_passage": {"start": a.span_in_passage.start, "end": a.span_in_passage.end},
                "answer_type": a.answer_type,
            }
            for a in result.answers
        ],
        "passages": [
            {
                "chunk_id": p.chunk.id,
                "doc_id": p.chunk.doc_id,
                "start": p.chunk.start,
                "end": p.chunk.end,
                "text": p.chunk.text,
                "score": round(p.score, 6),
                "rank": p.rank,
            }
            for p in result.passages
        ],
        "took_ms": round(result.timings_ms.get("total", 0.0), 3),
    }


def _register_plugins() -> None:
    """Commands owned by other packages; each module's `register(app)` must import nothing heavy."""
    import importlib

    for module in ("service.cli", "eval.cli", "eval.calibrate_cli", "qa.training_cli", "eval.bench_cli"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name == module:
                continue
            raise
        mod.register(app)


_register_plugins()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
